#include "core_worker/actor_submitter.h"

#include <algorithm>
#include <optional>

#include "common/logging.h"
#include "core_worker/task_deps.h"

namespace lumen::core {
absl::Status ActorSubmitter::Submit(const ActorId& id, rpc::TaskSpec spec,
                                    const ObjectId& handle) {
  auto call = std::make_shared<Call>();
  call->spec = std::move(spec);
  Actions actions;
  {
    MutexLock lock(&mutex_);
    if (auto dead = forgotten_.find(id); dead != forgotten_.end()) {
      return absl::FailedPreconditionError("the actor " + id.Hex() + " is dead: " +
                                           dead->second);
    }
    Actor& actor = actors_[id];
    if (actor.dead) {
      return absl::FailedPreconditionError("the actor " + id.Hex() +
                                           " is dead: " + actor.info.death_cause());
    }
    if (shutdown_) return absl::CancelledError("lumen is shutting down");
    call->seq = actor.next_seq++;
    actor.pending[call->seq] = call;
    if (!actor.polling) Poll(id, actor, &actions);
  }
  RunAll(actions);
  if (deps_.events != nullptr) deps_.events->Submitted(call->spec);
  Call* raw = call.get();
  if (!handle.IsNil()) {
    deps_.refs->AddTaskUse(handle);
    raw->task_uses.push_back(handle);
  }
  ResolveOwnedArgs(&raw->spec, deps_.self_endpoint, deps_.store, deps_.refs, &raw->task_uses,
                   &raw->has_nested,
                   [this, id, call](ObjectPtr failed) { OnResolved(id, call, failed); });
  return absl::OkStatus();
}

void ActorSubmitter::OnResolved(const ActorId& id, const CallPtr& call, ObjectPtr failed) {
  Actions actions;
  {
    MutexLock lock(&mutex_);
    call->resolved = true;
    call->failed = std::move(failed);
    Pump(id, actors_[id], &actions);  // (known while the call waits)
    ForgetIfDone(id);
  }
  RunAll(actions);
}

void ActorSubmitter::Pump(const ActorId& id, Actor& actor, Actions* actions) {
  if (shutdown_) {
    return FailWaiting(actor, StoredObject::MakeError(ErrorKind::kInternal,
                                                      "lumen is shutting down"),
                       actions);
  }
  if (actor.dead) return FailWaiting(actor, DeathError(id, actor), actions);
  if (actor.info.state() != rpc::ActorInfo::ALIVE ||
      actor.info.incarnation() < actor.min_incarnation) {
    return;
  }
  if (actor.info.incarnation() != actor.sent_incarnation) {
    // A new incarnation (a fresh process): a new connection, push numbers from 0. Calls
    // still out with the old one may come back for resending, and must keep their place
    // ahead of later calls: nothing goes to the new one until they are all answered.
    if (actor.pushes_in_flight > 0) return;  // OnPushReply pumps again
    actor.sent_incarnation = actor.info.incarnation();
    actor.next_push_seq = 0;
    actor.unanswered.clear();
    actor.client = Connect(actor.info);
  }
  // One call per push where calls must be answered one by one: threaded actors (calls
  // of one push would run one after another) and actors whose calls may be resent (a
  // batch that dies half done must not resend the calls that finished).
  bool one_by_one = actor.info.max_concurrency() > 1 || actor.info.max_task_retries() != 0;
  int depth = one_by_one ? std::max(kOneByOnePushesInFlight, actor.info.max_concurrency())
                         : kMinPushesInFlight;
  size_t limit = one_by_one ? 1 : size_t(kMaxBatch);
  while (actor.pushes_in_flight < depth && !actor.pending.empty()) {
    std::vector<CallPtr> batch;
    size_t bytes = 0;
    while (!actor.pending.empty() && batch.size() < limit) {
      auto front = actor.pending.begin();
      CallPtr call = front->second;
      if (!call->resolved) break;  // later calls wait for it: calls leave in order
      size_t size = call->failed ? 0 : call->spec.ByteSizeLong();
      if (!batch.empty() && bytes + size > kMaxBatchBytes) break;
      bytes += size;
      actor.pending.erase(front);
      if (call->failed) {
        actions->push_back([this, call] { Finish(call, nullptr, call->failed); });
        continue;
      }
      batch.push_back(std::move(call));
    }
    if (batch.empty()) break;
    ++actor.pushes_in_flight;
    Push push{actor.sent_incarnation, actor.next_push_seq++, actor.client, std::move(batch)};
    actor.unanswered.insert(push.seq);
    Send(id, actor, std::move(push), actions);
  }
}

std::shared_ptr<WorkerClient> ActorSubmitter::Connect(const rpc::ActorInfo& info) const {
  // Its Unix endpoint on this node, TCP from another (frames both).
  bool local = deps_.self_node == nullptr || info.address().empty() ||
               info.node_id() == deps_.self_node->Binary();
  return local ? deps_.connect_worker(info.endpoint(), "")
               : deps_.connect_worker(info.address(), info.frame_address());
}

void ActorSubmitter::Send(const ActorId& id, const Actor& actor, Push push, Actions* actions) {
  rpc::PushTasksRequest request;
  request.set_caller_id(deps_.caller_id);
  request.set_push_seq(push.seq);
  request.set_acked_push_seq(*actor.unanswered.begin());
  for (const CallPtr& call : push.batch) {
    *request.add_tasks() = call->spec;
    if (deps_.events != nullptr) {
      deps_.events->Record(call->spec, rpc::SUBMITTED_TO_WORKER, actor.info.node_id(),
                           actor.info.worker_id());
    }
  }
  rpcs_.Begin();
  actions->push_back([this, id, push = std::move(push), request = std::move(request)]() mutable {
    std::shared_ptr<WorkerClient> client = push.client;
    client->PushTasks(std::move(request), [this, id, push = std::move(push)](
                                              absl::Status status,
                                              rpc::PushTasksReply&& reply) mutable {
      OnPushReply(id, std::move(push), status, std::move(reply));
      rpcs_.End();
    });
  });
}

bool ActorSubmitter::StillLost(const Actor& actor, const Push& push) {
  for (const CallPtr& call : push.batch) {
    auto it = actor.lost.find(call->seq);
    if (it == actor.lost.end() || it->second.call != call ||
        it->second.incarnation != push.incarnation) {
      return false;
    }
  }
  return true;
}

void ActorSubmitter::ResendLater(const ActorId& id, Push push) {
  int delay_ms = std::min(1000, deps_.resend_after_ms << std::min(push.attempt, 6));
  rpcs_.Begin();
  deps_.timers->RunAfter(std::chrono::milliseconds(delay_ms), [this, id,
                                                                push = std::move(push)]() mutable {
    auto wanted = [&](const Actor& actor) {
      return !shutdown_ && !actor.dead && push.incarnation == actor.sent_incarnation &&
             StillLost(actor, push) && actor.unanswered.count(push.seq) > 0;
    };
    // A broken connection is made again, unlocked (the worker may be fine: the GCS says
    // it is alive).
    std::optional<rpc::ActorInfo> reconnect;
    {
      MutexLock lock(&mutex_);
      auto found = actors_.find(id);
      if (found != actors_.end() && wanted(found->second) &&
          found->second.client == push.client && push.client->Broken()) {
        reconnect = found->second.info;
      }
    }
    std::shared_ptr<WorkerClient> fresh = reconnect ? Connect(*reconnect) : nullptr;
    Actions actions;
    {
      MutexLock lock(&mutex_);
      auto found = actors_.find(id);
      if (found != actors_.end() && wanted(found->second)) {
        Actor& actor = found->second;
        if (fresh && actor.client == push.client) actor.client = std::move(fresh);
        push.client = actor.client;
        ++push.attempt;
        Send(id, actor, std::move(push), &actions);
      }
    }
    RunAll(actions);
    rpcs_.End();
  });
}

void ActorSubmitter::OnPushReply(const ActorId& id, Push push, absl::Status status,
                                 rpc::PushTasksReply reply) {
  Actions actions;
  const std::vector<CallPtr>& batch = push.batch;
  bool answered = status.ok() && reply.results_size() == int(batch.size());
  bool lost = false;
  bool stopping = false;
  bool settled = false;
  {
    MutexLock lock(&mutex_);
    stopping = shutdown_;
    auto found = actors_.find(id);
    // Sent again, but its calls were settled meanwhile (the actor restarted or died, or
    // they timed out): this reply is not theirs any more. (A first send's actor is known
    // while the push is out.)
    settled = found == actors_.end() || (push.attempt > 0 && !StillLost(found->second, push));
    if (found != actors_.end()) {
      Actor& actor = found->second;
      bool current = push.incarnation == actor.sent_incarnation;
      if (push.attempt == 0 && current) --actor.pushes_in_flight;
      if (!settled) {
        if (push.attempt > 0 && (answered || !IsConnectionLoss(status))) {
          for (const CallPtr& call : batch) actor.lost.erase(call->seq);
        }
        lost = !answered && IsConnectionLoss(status) && !shutdown_;
        if (current && !lost) actor.unanswered.erase(push.seq);
        if (lost) OnLost(id, actor, push, status, &actions);
      }
      Pump(id, actor, &actions);
      ForgetIfDone(id);
    }
  }
  if (settled) return RunAll(actions);
  if (answered) {
    for (size_t i = 0; i < batch.size(); ++i) Finish(batch[i], &reply.results(int(i)), nullptr);
  } else if (!lost) {
    if (!status.ok() && !stopping && push.attempt == 0) {
      // The push may never have reached the worker (refused by the client, e.g. too
      // large), and the worker runs this caller's pushes strictly in order: fill its
      // place with an empty push, or every later call would wait behind it forever. A
      // worker that did receive it answers the copy with the first one's reply.
      rpc::PushTasksRequest filler;
      filler.set_caller_id(deps_.caller_id);
      filler.set_push_seq(push.seq);
      rpcs_.Begin();
      push.client->PushTasks(std::move(filler),
                             [this](absl::Status, rpc::PushTasksReply&&) { rpcs_.End(); });
    }
    ObjectPtr error = StoredObject::MakeError(
        ErrorKind::kInternal, "cannot send the call to actor " + id.Hex() + ": " +
                                  (status.ok() ? "malformed reply" : status.ToString()));
    for (const CallPtr& call : batch) Finish(call, nullptr, error);
  }
  RunAll(actions);
}

void ActorSubmitter::OnLost(const ActorId& id, Actor& actor, const Push& push,
                            const absl::Status& status, Actions* actions) {
  bool current = push.incarnation == actor.sent_incarnation;
  if (push.attempt > 0) {
    for (const CallPtr& call : push.batch) {
      actor.lost[call->seq].delivered |= !NotDelivered(status);
    }
    if (!actor.dead && current) ResendLater(id, push);
    return;
  }
  // The connection broke: the worker died (the GCS will say), or only the connection
  // did (then sending it again gets the reply).
  bool delivered = !NotDelivered(status);
  for (const CallPtr& call : push.batch) {
    actor.lost[call->seq] = Lost{call, push.incarnation, delivered};
  }
  if (!actor.polling && !actor.dead) Poll(id, actor, actions);  // the GCS decides
  ResolveLost(actor, actions);
  if (!actor.dead && current && StillLost(actor, push)) ResendLater(id, push);
  deps_.timers->RunAfter(std::chrono::milliseconds(kLostCallTimeoutMs), [this, id, push] {
    Actions late;
    {
      MutexLock lock(&mutex_);
      auto found = actors_.find(id);
      // Still lost from this push (not answered, resolved, or lost again since)?
      if (found != actors_.end() && StillLost(found->second, push)) {
        Actor& a = found->second;
        if (push.incarnation == a.sent_incarnation) a.unanswered.erase(push.seq);
        for (const CallPtr& call : push.batch) {
          a.lost.erase(call->seq);
          late.push_back([this, call, id] {
            Finish(call, nullptr,
                   StoredObject::MakeError(
                       ErrorKind::kActorDied,
                       "lost the connection to actor " + id.Hex() +
                           " while it ran this call, and the GCS reports no failure"));
          });
        }
        ForgetIfDone(id);
      }
    }
    RunAll(late);
  });
}

void ActorSubmitter::ForgetIfDone(const ActorId& id) {
  auto it = actors_.find(id);
  if (it == actors_.end()) return;
  const Actor& actor = it->second;
  if (!actor.dead || HasWork(actor) || actor.polling) return;
  if (forgotten_.emplace(id, actor.info.death_cause()).second) forgotten_order_.push_back(id);
  while (forgotten_order_.size() > kMaxForgotten) {
    forgotten_.erase(forgotten_order_.front());
    forgotten_order_.pop_front();
  }
  actors_.erase(it);
}

size_t ActorSubmitter::NumActors() {
  MutexLock lock(&mutex_);
  return actors_.size();
}

void ActorSubmitter::ResolveLost(Actor& actor, Actions* actions) {
  for (auto it = actor.lost.begin(); it != actor.lost.end();) {
    CallPtr call = it->second.call;
    if (actor.dead) {
      ObjectPtr error = StoredObject::MakeError(
          ErrorKind::kActorDied, "the actor died while running this call: " +
                                     actor.info.death_cause());
      actions->push_back([this, call, error] { Finish(call, nullptr, error); });
    } else if (actor.info.incarnation() > it->second.incarnation) {
      int max = actor.info.max_task_retries();
      if (!it->second.delivered) {
        actor.pending[call->seq] = call;  // it never ran: not a retry
      } else if (max < 0 || call->retries_used < max) {
        ++call->retries_used;
        NextAttempt(deps_.events, &call->spec,
                    "ActorDiedError: the actor restarted while running this call (" +
                        actor.info.death_cause() + "); retrying");
        actor.pending[call->seq] = call;  // keeps its place in the caller's order
      } else {
        ObjectPtr error = StoredObject::MakeError(
            ErrorKind::kActorDied,
            "the actor's worker died while running this call (" + actor.info.death_cause() +
                "); the actor restarted, but the call is not resent: max_task_retries=" +
                std::to_string(max) + (max == 0 ? "" : " used up"));
        actions->push_back([this, call, error] { Finish(call, nullptr, error); });
      }
    } else {
      ++it;  // the GCS has not seen the death yet
      continue;
    }
    it = actor.lost.erase(it);
  }
}

void ActorSubmitter::Poll(const ActorId& id, Actor& actor, Actions* actions) {
  actor.polling = true;
  uint64_t generation = ++actor.poll_generation;
  rpc::GetActorInfoRequest request;
  request.set_actor_id(id.Binary());
  request.set_known_version(actor.info.version());
  request.set_wait_ms(kPollWaitMs);
  rpcs_.Begin();
  actions->push_back([this, id, generation, request = std::move(request)]() mutable {
    auto cancel = deps_.gcs->GetActorInfo(
        std::move(request), [this, id](absl::Status status, rpc::GetActorInfoReply&& reply) {
          OnInfo(id, status, std::move(reply));
          rpcs_.End();
        });
    {
      MutexLock lock(&mutex_);
      if (!shutdown_) {
        // (Not for a poll that already finished and was followed by another.)
        auto found = actors_.find(id);
        if (found != actors_.end() && found->second.poll_generation == generation &&
            found->second.polling) {
          found->second.cancel_poll = std::move(cancel);
        }
        return;
      }
    }
    cancel();  // outside the lock: a cancelled poll's callback takes it
  });
}

void ActorSubmitter::OnInfo(const ActorId& id, absl::Status status,
                            rpc::GetActorInfoReply reply) {
  Actions actions;
  {
    MutexLock lock(&mutex_);
    Actor& actor = actors_[id];  // (known while its poll is out)
    actor.polling = false;
    actor.cancel_poll = nullptr;
    if (shutdown_) return;
    if (!status.ok() && actor.dead) {
      ForgetIfDone(id);  // (its poll was cancelled: nothing more to learn)
      return;
    }
    if (!status.ok()) {
      LUMEN_LOG_DEBUG("actor {}: GCS poll failed: {}; retrying", id.Hex(), status.ToString());
      actor.polling = true;  // the retry below is the poll in flight
      rpcs_.Begin();
      deps_.timers->RunAfter(std::chrono::milliseconds(500), [this, id] {
        Actions later;
        {
          MutexLock lock(&mutex_);
          Actor& a = actors_[id];  // (known while polling)
          a.polling = false;
          if (!shutdown_ && !a.dead && HasWork(a)) Poll(id, a, &later);
          ForgetIfDone(id);
        }
        RunAll(later);
        rpcs_.End();
      });
      return;
    }
    bool was_dead = actor.dead;
    if (actor.dead) {
      // Known dead here already (MarkDead): keep the cause this process recorded.
    } else if (!reply.found()) {
      actor.dead = true;
      actor.info.set_state(rpc::ActorInfo::DEAD);
      actor.info.set_death_cause("the GCS knows no actor with this id");
    } else if (reply.info().version() > actor.info.version()) {
      actor.info = reply.info();
      if (actor.info.state() == rpc::ActorInfo::DEAD) actor.dead = true;
    }
    if (actor.dead && !was_dead && deps_.on_dead) {
      actions.push_back([this, id] { deps_.on_dead(id); });
    }
    ResolveLost(actor, &actions);
    Pump(id, actor, &actions);
    // An actor with nothing out is not followed: its next call polls again.
    if (!actor.dead && HasWork(actor)) Poll(id, actor, &actions);
    ForgetIfDone(id);
  }
  RunAll(actions);
}

void ActorSubmitter::MarkDead(const ActorId& id, const std::string& cause) {
  Actions actions;
  std::function<void()> cancel_poll;
  {
    MutexLock lock(&mutex_);
    Actor& actor = actors_[id];
    if (!actor.dead) {
      actor.dead = true;
      actor.info.set_state(rpc::ActorInfo::DEAD);
      actor.info.set_death_cause(cause);
      if (deps_.on_dead) actions.push_back([this, id] { deps_.on_dead(id); });
    }
    ResolveLost(actor, &actions);
    Pump(id, actor, &actions);
    cancel_poll = std::move(actor.cancel_poll);  // nothing more to learn from the GCS
    ForgetIfDone(id);
  }
  RunAll(actions);
  if (cancel_poll) cancel_poll();  // unlocked: its callback takes the lock
}

void ActorSubmitter::MarkRestarting(const ActorId& id, int32_t killed) {
  MutexLock lock(&mutex_);
  Actor& actor = actors_[id];
  actor.min_incarnation = std::max(actor.min_incarnation, killed + 1);
}

void ActorSubmitter::FailWaiting(Actor& actor, ObjectPtr error, Actions* actions) {
  for (auto it = actor.pending.begin(); it != actor.pending.end();) {
    CallPtr call = it->second;
    if (!call->resolved) {
      ++it;  // fails when its arguments are in (OnResolved pumps again)
      continue;
    }
    actions->push_back(
        [this, call, error] { Finish(call, nullptr, call->failed ? call->failed : error); });
    it = actor.pending.erase(it);
  }
}

ObjectPtr ActorSubmitter::DeathError(const ActorId& id, const Actor& actor) const {
  return StoredObject::MakeError(ErrorKind::kActorDied,
                                 "the actor " + id.Hex() + " is dead: " +
                                     actor.info.death_cause());
}

void ActorSubmitter::Finish(const CallPtr& call, const rpc::TaskResult* result,
                            ObjectPtr error) {
  if (deps_.events != nullptr) deps_.events->Ended(call->spec, result, error);
  StoreTaskReturns(call->spec, result, std::move(error), call->task_uses, deps_.store,
                   deps_.refs, deps_.free_stored);
}

void ActorSubmitter::Shutdown() {
  Actions actions;
  std::vector<std::function<void()>> cancels;
  {
    MutexLock lock(&mutex_);
    if (shutdown_) return;
    shutdown_ = true;
    ObjectPtr error = StoredObject::MakeError(ErrorKind::kInternal, "lumen is shutting down");
    for (auto& [id, actor] : actors_) {
      if (actor.cancel_poll) cancels.push_back(std::move(actor.cancel_poll));
      for (auto& [seq, call] : actor.pending) {
        if (!call->resolved) continue;  // fails when resolved (Pump after shutdown)
        actions.push_back([this, call = call, error] { Finish(call, nullptr, error); });
      }
      std::erase_if(actor.pending, [](const auto& entry) { return entry.second->resolved; });
      for (auto& [seq, lost] : actor.lost) {
        actions.push_back([this, call = lost.call, error] { Finish(call, nullptr, error); });
      }
      actor.lost.clear();
    }
  }
  for (auto& cancel : cancels) cancel();
  RunAll(actions);
}

}  // namespace lumen::core
