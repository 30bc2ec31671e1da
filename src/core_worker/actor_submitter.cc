#include "core_worker/actor_submitter.h"

#include <algorithm>

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
    Pump(id, actors_[id], &actions);
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
    // Its Unix endpoint on this node, TCP from another (frames both).
    bool local = deps_.self_node == nullptr || actor.info.address().empty() ||
                 actor.info.node_id() == deps_.self_node->Binary();
    actor.client = local ? deps_.connect_worker(actor.info.endpoint(), "")
                         : deps_.connect_worker(actor.info.address(), actor.info.frame_address());
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
    rpc::PushTasksRequest request;
    request.set_caller_id(deps_.caller_id);
    request.set_push_seq(actor.next_push_seq++);
    for (const CallPtr& call : batch) *request.add_tasks() = call->spec;
    ++actor.pushes_in_flight;
    int32_t incarnation = actor.sent_incarnation;
    rpcs_.Begin();
    int64_t push_seq = request.push_seq();
    actions->push_back([this, id, incarnation, push_seq, client = actor.client,
                        batch = std::move(batch), request = std::move(request)]() mutable {
      client->PushTasks(std::move(request),
                        [this, id, incarnation, push_seq, client, batch = std::move(batch)](
                            absl::Status status, rpc::PushTasksReply&& reply) mutable {
                          OnPushReply(id, incarnation, push_seq, client, std::move(batch),
                                      status, std::move(reply));
                          rpcs_.End();
                        });
    });
  }
}

void ActorSubmitter::OnPushReply(const ActorId& id, int32_t incarnation, int64_t push_seq,
                                 const std::shared_ptr<WorkerClient>& client,
                                 std::vector<CallPtr> batch, absl::Status status,
                                 rpc::PushTasksReply reply) {
  Actions actions;
  bool answered = status.ok() && reply.results_size() == int(batch.size());
  bool lost = false;
  bool stopping = false;
  {
    MutexLock lock(&mutex_);
    stopping = shutdown_;
    Actor& actor = actors_[id];
    if (incarnation == actor.sent_incarnation) --actor.pushes_in_flight;
    lost = !answered && IsConnectionLoss(status) && !shutdown_;
    if (lost) {
      // The worker died (or is exiting): what happened decides, from the GCS.
      bool delivered = !NotDelivered(status);
      for (const CallPtr& call : batch) {
        actor.lost[call->seq] = Lost{call, incarnation, delivered};
      }
      if (!actor.polling && !actor.dead) Poll(id, actor, &actions);  // the GCS decides
      ResolveLost(actor, &actions);
      deps_.timers->RunAfter(std::chrono::milliseconds(kLostCallTimeoutMs), [this, id,
                                                                             incarnation,
                                                                             batch] {
        Actions late;
        {
          MutexLock lock(&mutex_);
          Actor& a = actors_[id];
          for (const CallPtr& call : batch) {
            // Only if still lost from this push (not resent and lost again since).
            auto it = a.lost.find(call->seq);
            if (it == a.lost.end() || it->second.incarnation != incarnation ||
                it->second.call != call) {
              continue;
            }
            a.lost.erase(it);
            late.push_back([this, call, id] {
              Finish(call, nullptr,
                     StoredObject::MakeError(
                         ErrorKind::kActorDied,
                         "lost the connection to actor " + id.Hex() +
                             " while it ran this call, and the GCS reports no failure"));
            });
          }
        }
        RunAll(late);
      });
    }
    Pump(id, actor, &actions);
  }
  if (answered) {
    for (size_t i = 0; i < batch.size(); ++i) Finish(batch[i], &reply.results(int(i)), nullptr);
  } else if (!lost) {
    if (!status.ok() && !stopping) {
      // The push may never have reached the worker (refused by the client, e.g. too
      // large), and the worker runs this caller's pushes strictly in order: fill its
      // place with an empty push, or every later call would wait behind it forever. A
      // worker that did receive it drops the duplicate.
      rpc::PushTasksRequest filler;
      filler.set_caller_id(deps_.caller_id);
      filler.set_push_seq(push_seq);
      rpcs_.Begin();
      client->PushTasks(std::move(filler),
                        [this](absl::Status, rpc::PushTasksReply&&) { rpcs_.End(); });
    }
    ObjectPtr error = StoredObject::MakeError(
        ErrorKind::kInternal, "cannot send the call to actor " + id.Hex() + ": " +
                                  (status.ok() ? "malformed reply" : status.ToString()));
    for (const CallPtr& call : batch) Finish(call, nullptr, error);
  }
  RunAll(actions);
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
        call->spec.set_attempt(call->spec.attempt() + 1);
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
      Actor& actor = actors_[id];
      if (!shutdown_) {
        // (Not for a poll that already finished and was followed by another.)
        if (actor.poll_generation == generation && actor.polling) {
          actor.cancel_poll = std::move(cancel);
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
    Actor& actor = actors_[id];
    actor.polling = false;
    actor.cancel_poll = nullptr;
    if (shutdown_) return;
    if (!status.ok()) {
      LUMEN_LOG_DEBUG("actor {}: GCS poll failed: {}; retrying", id.Hex(), status.ToString());
      actor.polling = true;  // the retry below is the poll in flight
      rpcs_.Begin();
      deps_.timers->RunAfter(std::chrono::milliseconds(500), [this, id] {
        Actions later;
        {
          MutexLock lock(&mutex_);
          Actor& a = actors_[id];
          a.polling = false;
          if (!shutdown_ && !a.dead && HasWork(a)) Poll(id, a, &later);
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
  }
  RunAll(actions);
}

void ActorSubmitter::MarkDead(const ActorId& id, const std::string& cause) {
  Actions actions;
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
  }
  RunAll(actions);
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
