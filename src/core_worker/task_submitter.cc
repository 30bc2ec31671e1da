#include "core_worker/task_submitter.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>

#include "common/clock.h"
#include "common/logging.h"
#include "common/resources.h"
#include "core_worker/task_deps.h"

namespace lumen::core {
namespace {

// ", node <hex>" for a lease's node, to name it in errors; empty when unknown.
std::string WorkerNode(const std::string& node_id) {
  return node_id.size() == NodeId::Size() ? ", node " + NodeId::FromBinary(node_id).Hex() : "";
}

// Tasks share leases when they demand the same resources under the same strategy.
std::string KeyOf(const rpc::TaskSpec& spec) {
  std::map<std::string, double> sorted(spec.resources().begin(), spec.resources().end());
  std::string key = ResourceSet::FromMap(sorted).ToString();
  const rpc::SchedulingStrategy& strategy = spec.scheduling();
  if (strategy.kind() == rpc::SchedulingStrategy::SPREAD) key += " spread";
  if (strategy.kind() == rpc::SchedulingStrategy::NODE_AFFINITY) {
    key += " on node " + NodeId::FromBinary(strategy.node_id()).Hex() +
           (strategy.soft() ? " (soft)" : "");
  }
  return key;
}

}  // namespace

void TaskSubmitter::Submit(rpc::TaskSpec spec, int max_retries, bool retry_exceptions) {
  auto task = std::make_shared<Task>();
  task->retries_left = max_retries;
  task->retry_exceptions = retry_exceptions;
  task->spec = std::move(spec);
  {
    MutexLock lock(&mutex_);
    pending_[TaskId::FromBinary(task->spec.task_id())] = task;
  }
  if (deps_.events != nullptr) {
    task->waits_for_args = TaskEvents::HasRefArgs(task->spec);
    deps_.events->Submitted(task->spec);
  }

  // Pin every by-reference argument; wait for the ones owned here and inline them.
  Task* raw = task.get();
  ResolveOwnedArgs(&raw->spec, deps_.self_endpoint, deps_.store, deps_.refs, &raw->task_uses,
                   &raw->isolate, [this, task](ObjectPtr failed) {
                     if (!failed) return Enqueue(task);
                     bool cancelled;
                     {
                       MutexLock lock(&mutex_);
                       cancelled = task->cancelled;
                     }
                     Finish(task, nullptr, cancelled ? CancelledError(task) : failed);
                   });
}

std::string TaskSubmitter::PreferredNode(const rpc::TaskSpec& spec) const {
  std::map<std::string, uint64_t> bytes;  // by node: argument bytes in its store
  for (const rpc::TaskArg& arg : spec.args()) {
    if (!arg.has_ref() || arg.ref().owner() != deps_.self_endpoint) continue;
    ObjectPtr object = deps_.store->GetIfReady(ObjectId::FromBinary(arg.ref().id()));
    if (object != nullptr && object->in_store && !object->store_node.empty()) {
      bytes[object->store_node] += object->store_size;
    }
  }
  std::string best;
  uint64_t most = 0;
  for (const auto& [node, total] : bytes) {
    if (total > most) {
      best = node;
      most = total;
    }
  }
  return most >= kLocalityMinBytes && best != deps_.node_id ? best : "";
}

void TaskSubmitter::Enqueue(TaskPtr task) {
  if (deps_.events != nullptr && task->waits_for_args) {
    // Its arguments are ready (the owned ones inlined by now).
    deps_.events->Record(task->spec, rpc::PENDING_NODE_ASSIGNMENT);
  }
  if (task->spec.scheduling().kind() == rpc::SchedulingStrategy::DEFAULT) {
    // Data locality: where most of its argument bytes are, when that node has room (a
    // soft affinity: elsewhere, by the hybrid policy, when it is full or gone).
    std::string node = PreferredNode(task->spec);
    if (!node.empty()) {
      rpc::SchedulingStrategy* where = task->spec.mutable_scheduling();
      where->set_kind(rpc::SchedulingStrategy::NODE_AFFINITY);
      where->set_node_id(node);
      where->set_soft(true);
    }
  }
  Actions actions;
  {
    MutexLock lock(&mutex_);
    if (task->cancelled) {
      actions.push_back([this, task] { Finish(task, nullptr, CancelledError(task)); });
    } else if (shutdown_) {
      actions.push_back([this, task] {
        Finish(task, nullptr,
               StoredObject::MakeError(ErrorKind::kInternal, "lumen is shutting down"));
      });
    } else {
      std::string key = KeyOf(task->spec);
      task->key = key;
      KeyState& state = keys_[key];
      if (state.description.empty()) {
        state.resources = task->spec.resources();
        state.scheduling = task->spec.scheduling();
        state.description = key;
      }
      state.queue.push_back(std::move(task));
      Pump(key, state, &actions);
    }
  }
  RunAll(actions);
}

void TaskSubmitter::Pump(const std::string& key, KeyState& state, Actions* actions) {
  if (shutdown_) return;
  for (auto& [id, lease] : state.leases) {
    if (state.queue.empty()) break;
    size_t workers = state.leases.size() + size_t(state.pending_lease_requests);
    size_t batch_size =
        std::clamp<size_t>(state.queue.size() / std::max<size_t>(workers, 1), 1, kMaxBatch);
    // A second batch in flight hides the round trip, but only when there is enough work
    // that it does not starve leases about to be granted.
    int depth = state.queue.size() > workers && !lease->worker_blocked ? 2 : 1;
    while (lease->in_flight < depth && !state.queue.empty()) {
      bool once = state.queue.front()->retries_left == 0;
      if (lease->in_flight > 0 && (once || lease->at_most_once_in_flight > 0)) break;
      std::vector<TaskPtr> batch;
      size_t bytes = 0;
      while (batch.size() < batch_size && !state.queue.empty()) {
        const TaskPtr& next = state.queue.front();
        size_t size = next->spec.ByteSizeLong();
        bool alone = next->isolate || next->retries_left == 0 ||
                     (!batch.empty() && batch.front()->isolate);
        if (!batch.empty() && (alone || bytes + size > kMaxBatchBytes)) break;
        bytes += size;
        batch.push_back(std::move(state.queue.front()));
        state.queue.pop_front();
      }
      PushBatch(key, lease, std::move(batch), actions);
    }
  }
  size_t wanted = std::min<size_t>(state.queue.size(), kMaxPendingLeaseRequests);
  while (size_t(state.pending_lease_requests) < wanted) RequestLease(key, state, actions);
  if (HasIdleParkedRequests(state) && !state.cancel_timer_armed) {
    // Nothing queued or running: a request still parked at the raylet would be granted
    // a worker that sits idle while other owners wait for it. If the owner stays idle
    // for kLeaseIdleMs (a loop of batches comes back sooner), cancel them; the answers
    // come back `canceled`, and Pump asks again if tasks came meanwhile.
    state.cancel_timer_armed = true;
    deps_.timers->RunAfter(std::chrono::milliseconds(kLeaseIdleMs), [this, key] {
      Actions later;
      {
        MutexLock lock(&mutex_);
        KeyState& s = keys_[key];
        s.cancel_timer_armed = false;
        if (!shutdown_ && HasIdleParkedRequests(s)) CancelLeaseRequests(key, s, &later);
      }
      RunAll(later);
    });
  }
  for (auto& [id, lease] : state.leases) MaybeScheduleIdleReturn(key, lease, actions);
}

void TaskSubmitter::RequestLease(const std::string& key, KeyState& state, Actions* actions,
                                 std::shared_ptr<RayletClient> remote) {
  ++state.pending_lease_requests;
  rpc::RequestWorkerLeaseRequest request;
  request.set_job_id(deps_.job_id);
  *request.mutable_resources() = state.resources;
  request.set_requester_worker_id(deps_.worker_id.Binary());
  request.set_requester_address(deps_.self_endpoint);
  // Ours to choose: a request whose reply is lost is given back by this id (else its
  // grant would hold a worker nobody uses).
  LeaseId lease_id = LeaseId::FromRandom();
  request.set_lease_id(lease_id.Binary());
  *request.mutable_scheduling() = state.scheduling;
  const rpc::SchedulingStrategy& where = state.scheduling;
  if (remote == nullptr && where.kind() == rpc::SchedulingStrategy::NODE_AFFINITY &&
      where.soft() && state.affinity_declined_ms >= 0 &&
      NowMs() - state.affinity_declined_ms < kAffinityDeclinedMs) {
    // Its node had no room a moment ago: wherever the hybrid policy finds room.
    request.mutable_scheduling()->set_kind(rpc::SchedulingStrategy::DEFAULT);
  }
  if (remote != nullptr) {
    ++remote_requests_[remote];
    request.set_grant_or_reject(true);
    *request.mutable_launch() = deps_.launch;
  }
  rpcs_.Begin();
  actions->push_back([this, key, remote, lease_id, request = std::move(request)]() mutable {
    bool stopped;
    {
      MutexLock lock(&mutex_);
      stopped = shutdown_;
    }
    if (stopped) {  // Shutdown's cancels may have gone out already: never send it
      OnLeaseReply(key, absl::CancelledError("shutting down"), {}, remote);
      rpcs_.End();
      return;
    }
    RayletClient* raylet = remote ? remote.get() : deps_.raylet;
    raylet->RequestWorkerLease(
        std::move(request), [this, key, remote, lease_id](
                                absl::Status status, rpc::RequestWorkerLeaseReply&& reply) {
          if (!status.ok()) GiveBackRequest(lease_id, remote);
          OnLeaseReply(key, status, std::move(reply), remote);
          rpcs_.End();
        });
  });
}

void TaskSubmitter::GiveBackRequest(const LeaseId& lease_id,
                                    const std::shared_ptr<RayletClient>& remote) {
  rpc::ReturnWorkerLeaseRequest request;
  request.set_lease_id(lease_id.Binary());
  rpcs_.Begin();
  RayletClient* raylet = remote ? remote.get() : deps_.raylet;
  raylet->ReturnWorkerLease(std::move(request),
                            [this, remote](absl::Status, rpc::ReturnWorkerLeaseReply&&) {
                              rpcs_.End();  // (remote kept alive until it answers)
                            });
}

bool TaskSubmitter::HasIdleParkedRequests(const KeyState& state) {
  bool running = std::any_of(state.leases.begin(), state.leases.end(),
                             [](const auto& entry) { return entry.second->in_flight > 0; });
  return state.queue.empty() && !running && !state.cancel_in_flight &&
         state.pending_lease_requests > state.delayed_lease_requests;
}

void TaskSubmitter::CancelLeaseRequests(const std::string& key, KeyState& state,
                                        Actions* actions) {
  state.cancel_in_flight = true;
  rpc::CancelWorkerLeasesRequest request;
  request.set_requester_worker_id(deps_.worker_id.Binary());
  *request.mutable_resources() = state.resources;
  rpcs_.Begin();
  actions->push_back([this, key, request = std::move(request)]() mutable {
    deps_.raylet->CancelWorkerLeases(
        std::move(request), [this, key](absl::Status, rpc::CancelWorkerLeasesReply&&) {
          // A failed cancel changes nothing: the requests are granted or fail as before.
          {
            MutexLock lock(&mutex_);
            keys_[key].cancel_in_flight = false;
            ForgetIfIdle(key);
          }
          rpcs_.End();
        });
  });
}

void TaskSubmitter::CancelAllLeaseRequests(std::shared_ptr<RayletClient> remote,
                                           Actions* actions) {
  rpc::CancelWorkerLeasesRequest request;
  request.set_requester_worker_id(deps_.worker_id.Binary());
  request.set_every_demand(true);
  rpcs_.Begin();
  actions->push_back([this, remote, request = std::move(request)]() mutable {
    RayletClient* raylet = remote ? remote.get() : deps_.raylet;
    raylet->CancelWorkerLeases(std::move(request),
                               [this, remote](absl::Status, rpc::CancelWorkerLeasesReply&&) {
                                 rpcs_.End();  // the canceled requests answer by themselves
                               });
  });
}

void TaskSubmitter::OnLeaseReply(const std::string& key, absl::Status status,
                                 rpc::RequestWorkerLeaseReply reply,
                                 std::shared_ptr<RayletClient> remote) {
  Actions actions;
  {
    MutexLock lock(&mutex_);
    KeyState& state = keys_[key];
    --state.pending_lease_requests;
    if (remote != nullptr && --remote_requests_[remote] == 0) remote_requests_.erase(remote);
    if (shutdown_) {
      if (reply.granted()) {
        auto lease = std::make_shared<Lease>();
        lease->id = LeaseId::FromBinary(reply.lease_id());
        lease->raylet = remote;
        ReturnLease(lease, false, &actions);
      }
    } else if (status.ok() && !reply.spillback_address().empty() && deps_.connect_raylet &&
               !state.queue.empty()) {
      // The local raylet is busy; that node had room: ask it (grant or reject).
      RequestLease(key, state, &actions, deps_.connect_raylet(reply.spillback_address()));
    } else if (status.ok() && (reply.rejected() || !reply.spillback_address().empty())) {
      // No room there after all (or nothing left to run): back to the local raylet.
      const rpc::SchedulingStrategy& where = state.scheduling;
      if (reply.rejected() && where.kind() == rpc::SchedulingStrategy::NODE_AFFINITY &&
          where.soft()) {
        state.affinity_declined_ms = NowMs();
      }
      if (!state.queue.empty()) PumpLater(key, state, std::chrono::milliseconds(50));
    } else if (!status.ok() && remote != nullptr) {
      LUMEN_LOG_WARN("lease request to another node failed: {}; asking again here",
                     status.ToString());
      PumpLater(key, state, std::chrono::milliseconds(200));
    } else if (!status.ok() && state.queue.empty()) {
      // Nothing waits for this lease any more (typically: the raylet is stopping).
    } else if (!status.ok()) {
      if (status.code() == absl::StatusCode::kInvalidArgument ||
          status.code() == absl::StatusCode::kFailedPrecondition) {
        FailQueue(state,
                  StoredObject::MakeError(ErrorKind::kInternal,
                                          "the raylet refused the task: " +
                                              std::string(status.message())),
                  &actions);
      } else {
        LUMEN_LOG_WARN("lease request failed: {}; retrying", status.ToString());
        PumpLater(key, state, std::chrono::milliseconds(500));
      }
    } else if (reply.infeasible() &&
               state.scheduling.kind() == rpc::SchedulingStrategy::PLACEMENT_GROUP) {
      // Its bundle is not placed (yet, or again after its node died; the group's Wait
      // says why), or the group was removed.
      CheckPlacementGroup(key, state.scheduling.placement_group_id());
      PumpLater(key, state, std::chrono::milliseconds(200));
    } else if (reply.infeasible()) {
      int64_t now = NowMs();
      if (state.infeasible_since_ms < 0) state.infeasible_since_ms = now;
      // Not at the first answer: a node that just joined may be missing from the
      // raylet's view of the cluster for a moment.
      bool waited = now - state.infeasible_since_ms >= kInfeasibleGraceMs;
      if (waited && (state.last_infeasible_warning_ms < 0 ||
                     now - state.last_infeasible_warning_ms >= kInfeasibleWarningMs)) {
        state.last_infeasible_warning_ms = now;
        std::string label = state.queue.empty() ? "a task" : TaskLabel(state.queue.front()->spec);
        std::string demand = state.description;
        size_t waiting = state.queue.size();
        // Asking the GCS for the capacity blocks: do it on the timer thread, unlocked.
        deps_.timers->Post([this, label, demand, waiting] {
          std::fprintf(stderr,
                       "lumen: warning: task '%s' demands %s but no node can ever fit it; "
                       "cluster capacity: %s. %zu task(s) wait until a node that fits "
                       "joins.\n",
                       label.c_str(), demand.c_str(), deps_.cluster_capacity().c_str(),
                       waiting);
        });
      }
      PumpLater(key, state, std::chrono::milliseconds(1000));
    } else if (reply.canceled()) {
      Pump(key, state, &actions);  // asks again if tasks came after the cancel
    } else if (!reply.failure().empty()) {
      FailQueue(state, StoredObject::MakeError(ErrorKind::kWorkerCrashed, reply.failure()),
                &actions);
    } else if (reply.granted() && state.queue.empty()) {
      // Other leases took the work meanwhile: give the worker back at once.
      auto lease = std::make_shared<Lease>();
      lease->id = LeaseId::FromBinary(reply.lease_id());
      lease->raylet = remote;
      ReturnLease(lease, false, &actions);
      Pump(key, state, &actions);
    } else if (reply.granted()) {
      state.infeasible_since_ms = -1;
      auto lease = std::make_shared<Lease>();
      lease->id = LeaseId::FromBinary(reply.lease_id());
      lease->raylet = remote;
      lease->pid = reply.worker_pid();
      lease->node_id = reply.node_id();
      lease->worker_id = reply.worker_id();
      // This node's workers over their Unix sockets, another's over TCP (frames both).
      bool local = remote == nullptr || reply.worker_address().empty();
      lease->endpoint = local ? reply.worker_endpoint() : reply.worker_address();
      lease->client = local ? deps_.connect_worker(lease->endpoint, "")
                            : deps_.connect_worker(lease->endpoint, reply.worker_frame_address());
      lease->gpu_ids.assign(reply.gpu_ids().begin(), reply.gpu_ids().end());
      state.leases[lease->id] = lease;
      Pump(key, state, &actions);
    }
    ForgetIfIdle(key);
  }
  RunAll(actions);
}

void TaskSubmitter::PumpLater(const std::string& key, KeyState& state,
                              std::chrono::milliseconds delay) {
  // Counts as a lease request in flight, so that Pump does not ask again meanwhile.
  ++state.pending_lease_requests;
  ++state.delayed_lease_requests;
  deps_.timers->RunAfter(delay, [this, key] {
    Actions actions;
    {
      MutexLock lock(&mutex_);
      KeyState& s = keys_[key];
      --s.pending_lease_requests;
      --s.delayed_lease_requests;
      Pump(key, s, &actions);
    }
    RunAll(actions);
  });
}

void TaskSubmitter::PushBatch(const std::string& key, const LeasePtr& lease,
                              std::vector<TaskPtr> batch, Actions* actions) {
  ++lease->in_flight;
  bool once = batch.size() == 1 && batch[0]->retries_left == 0;
  if (once) ++lease->at_most_once_in_flight;
  ++lease->idle_generation;
  uint64_t seq = lease->next_seq++;
  lease->in_flight_seqs.insert(seq);
  rpc::PushTasksRequest request;
  request.set_lease_id(lease->id.Binary());
  for (int gpu : lease->gpu_ids) request.add_gpu_ids(gpu);
  for (const TaskPtr& task : batch) {
    *request.add_tasks() = task->spec;
    task->lease = lease;
    if (deps_.events != nullptr) {
      deps_.events->Record(task->spec, rpc::SUBMITTED_TO_WORKER, lease->node_id,
                           lease->worker_id);
    }
  }
  rpcs_.Begin();
  actions->push_back([this, key, lease, seq, once, batch = std::move(batch),
                      request = std::move(request)]() mutable {
    lease->client->PushTasks(
        std::move(request), [this, key, lease, seq, once, batch = std::move(batch)](
                                absl::Status status, rpc::PushTasksReply&& reply) mutable {
          OnPushReply(key, lease, seq, once, std::move(batch), status, std::move(reply));
          rpcs_.End();
        });
  });
}

void TaskSubmitter::OnPushReply(const std::string& key, const LeasePtr& lease, uint64_t seq,
                                bool once, std::vector<TaskPtr> batch, absl::Status status,
                                rpc::PushTasksReply reply) {
  Actions actions;
  std::vector<std::pair<TaskPtr, int>> finished;  // task, index into reply (-1: error)
  ObjectPtr batch_error;
  {
    MutexLock lock(&mutex_);
    KeyState& state = keys_[key];
    for (const TaskPtr& task : batch) task->lease = nullptr;
    --lease->in_flight;
    if (once) --lease->at_most_once_in_flight;
    if (!lease->failed_at_seq && !status.ok() && !lease->in_flight_seqs.empty()) {
      lease->failed_at_seq = *lease->in_flight_seqs.begin();
    }
    lease->in_flight_seqs.erase(seq);
    if (status.ok() && reply.rejected()) {
      // The worker blocked on an earlier task and handed these back unstarted.
      lease->worker_blocked = true;
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) Requeue(state, *it, &actions);
    } else if (status.ok() && reply.results_size() == int(batch.size())) {
      lease->worker_blocked = false;
      for (size_t i = 0; i < batch.size(); ++i) {
        TaskPtr& task = batch[i];
        const rpc::TaskResult& result = reply.results(int(i));
        if (result.is_application_error() && task->retry_exceptions &&
            task->retries_left != 0 && !shutdown_ && !task->cancelled) {
          if (task->retries_left > 0) --task->retries_left;
          NextAttempt(deps_.events, &task->spec,
                      result.returns_size() > 0
                          ? DescribeError(ErrorKind(result.returns(0).error().kind()),
                                          result.returns(0).error().type_name(),
                                          result.returns(0).error().message()) +
                                " (retrying)"
                          : "TaskError (retrying)");
          state.queue.push_back(task);
        } else {
          finished.emplace_back(task, int(i));
        }
      }
    } else if (IsConnectionLoss(status) || status.ok()) {
      // The worker died (or answered nonsense): drop the lease, retry what it carried.
      // Only a task that ran alone in the batch that was running is charged an attempt;
      // the others are re-run one by one until the one that kills workers is found.
      // A worker killed by Cancel(force) charges nobody: the cancelled task ends, the
      // others run again.
      if (lease->failure.empty()) lease->failure = std::string(status.message());
      if (state.leases.erase(lease->id) > 0) ReturnLease(lease, true, &actions);
      std::vector<TaskPtr> dying;
      // A task without retries left that may have started is not run again (at most
      // once), even when it is not known to be the one that killed the worker.
      bool may_have_run = !NotDelivered(status);
      bool charged = may_have_run && batch.size() == 1 && lease->failed_at_seq == seq &&
                     !lease->killed_by_cancel;
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
        TaskPtr& task = *it;
        if (task->cancelled) {
          Requeue(state, task, &actions);  // ends it
          continue;
        }
        if (may_have_run && (task->retries_left == 0 || shutdown_)) {
          dying.push_back(task);
          continue;
        }
        if (charged && task->retries_left > 0) --task->retries_left;
        if (charged) {
          NextAttempt(deps_.events, &task->spec,
                      "WorkerCrashedError: " + lease->failure + " (retrying)");
        }
        task->isolate = true;
        Requeue(state, task, &actions);
      }
      // Their error says how the worker ended, once its raylet has said.
      if (lease->returned_failed && !lease->exit) {
        lease->dying.insert(lease->dying.end(), dying.begin(), dying.end());
      } else {
        for (const TaskPtr& task : dying) {
          actions.push_back([this, lease, task] {
            Finish(task, nullptr, CrashedError(*lease, task));
          });
        }
      }
    } else {
      // The push itself failed (too large, malformed): the worker is fine, the tasks are
      // not runnable as sent. Fail them with the reason; keep the lease.
      batch_error = StoredObject::MakeError(
          ErrorKind::kInternal,
          "cannot send the task to its worker: " + status.ToString());
      for (TaskPtr& task : batch) finished.emplace_back(task, -1);
    }
    if (lease->in_flight_seqs.empty()) lease->failed_at_seq.reset();
    Pump(key, state, &actions);
  }
  for (auto& [task, index] : finished) {
    if (index >= 0) {
      Finish(task, &reply.results(index), nullptr);
    } else {
      Finish(task, nullptr, batch_error);
    }
  }
  RunAll(actions);
}

void TaskSubmitter::MaybeScheduleIdleReturn(const std::string& key, const LeasePtr& lease,
                                            Actions*) {
  if (lease->in_flight > 0) return;
  uint64_t generation = ++lease->idle_generation;
  deps_.timers->RunAfter(std::chrono::milliseconds(kLeaseIdleMs), [this, key, lease,
                                                                   generation] {
    Actions actions;
    {
      MutexLock lock(&mutex_);
      KeyState& state = keys_[key];
      if (lease->idle_generation != generation || lease->in_flight > 0 ||
          !state.leases.count(lease->id)) {
        return;
      }
      state.leases.erase(lease->id);
      ReturnLease(lease, false, &actions);
      ForgetIfIdle(key);
    }
    RunAll(actions);
  });
}

void TaskSubmitter::ForgetIfIdle(const std::string& key) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return;
  const KeyState& state = it->second;
  if (state.queue.empty() && state.leases.empty() && state.pending_lease_requests == 0 &&
      !state.cancel_in_flight && !state.cancel_timer_armed) {
    keys_.erase(it);
  }
}

size_t TaskSubmitter::NumKeys() {
  MutexLock lock(&mutex_);
  return keys_.size();
}

void TaskSubmitter::ReturnLease(const LeasePtr& lease, bool worker_failed, Actions* actions) {
  rpc::ReturnWorkerLeaseRequest request;
  request.set_lease_id(lease->id.Binary());
  request.set_worker_failed(worker_failed);
  if (worker_failed) lease->returned_failed = true;
  rpcs_.Begin();
  actions->push_back([this, lease, worker_failed, request = std::move(request)]() mutable {
    RayletOf(lease)->ReturnWorkerLease(
        std::move(request), [this, lease, worker_failed](absl::Status status,
                                                         rpc::ReturnWorkerLeaseReply&& reply) {
          std::vector<TaskPtr> dying;
          if (worker_failed) {
            MutexLock lock(&mutex_);
            lease->exit = status.ok() ? reply.worker_exit() : "";
            dying.swap(lease->dying);
          }
          for (const TaskPtr& task : dying) Finish(task, nullptr, CrashedError(*lease, task));
          rpcs_.End();
        });
  });
}

ObjectPtr TaskSubmitter::CrashedError(const Lease& lease, const TaskPtr& task) const {
  // `exit` and `failure` are written before the tasks are handed here.
  std::string how = lease.exit && !lease.exit->empty() ? *lease.exit : lease.failure;
  return StoredObject::MakeError(
      ErrorKind::kWorkerCrashed,
      "the worker (pid " + std::to_string(lease.pid) + WorkerNode(lease.node_id) +
          ") running task '" + TaskLabel(task->spec) + "' died: " + how +
          "; no retries left (attempts: " + std::to_string(task->spec.attempt() + 1) + ")");
}

void TaskSubmitter::CheckPlacementGroup(const std::string& key, const std::string& group_id) {
  if (!deps_.placement_group_removed) return;
  deps_.timers->Post([this, key, group_id] {
    std::string cause = deps_.placement_group_removed(group_id);
    if (cause.empty()) return;
    Actions actions;
    {
      MutexLock lock(&mutex_);
      auto it = keys_.find(key);
      if (it == keys_.end()) return;
      FailQueue(it->second,
                StoredObject::MakeError(ErrorKind::kTaskCancelled,
                                        "the task's placement group was removed (" + cause +
                                            ")"),
                &actions);
      ForgetIfIdle(key);
    }
    RunAll(actions);
  });
}

void TaskSubmitter::FailQueue(KeyState& state, ObjectPtr error, Actions* actions) {
  for (TaskPtr& task : state.queue) {
    actions->push_back([this, task, error] { Finish(task, nullptr, error); });
  }
  state.queue.clear();
}

void TaskSubmitter::Requeue(KeyState& state, const TaskPtr& task, Actions* actions) {
  if (task->cancelled) {
    actions->push_back([this, task] { Finish(task, nullptr, CancelledError(task)); });
  } else {
    state.queue.push_front(task);
  }
}

ObjectPtr TaskSubmitter::CancelledError(const TaskPtr& task) const {
  return StoredObject::MakeError(ErrorKind::kTaskCancelled,
                                 "task '" + TaskLabel(task->spec) + "' was cancelled");
}

absl::Status TaskSubmitter::Cancel(const TaskId& id, bool force) {
  Actions actions;
  TaskPtr waiting;  // for its arguments: its Get fails now, the task ends once they come
  {
    MutexLock lock(&mutex_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return absl::NotFoundError("no such task is pending here");
    TaskPtr task = it->second;
    if (task->lease != nullptr) {
      // Sent to a worker. It skips the task if it has not started it, and answers it as
      // cancelled; a task that started runs on, unless forced: then its worker is killed
      // (and OnPushReply ends the task when the push fails). A task whose worker dies
      // before it runs is not run again either.
      bool asked = task->cancelled;
      task->cancelled = true;
      LeasePtr lease = task->lease;
      if (force && !lease->killed_by_cancel) {
        lease->killed_by_cancel = true;
        if (keys_[task->key].leases.erase(lease->id) > 0) ReturnLease(lease, true, &actions);
      } else if (!force && !asked && deps_.cancel_on_worker) {
        actions.push_back([this, endpoint = lease->endpoint, id, task] {
          deps_.cancel_on_worker(endpoint, id, [this, task] { StoreCancelled(task); });
        });
      }
    } else if (task->cancelled) {
      return absl::OkStatus();
    } else if (!task->key.empty()) {
      std::deque<TaskPtr>& queue = keys_[task->key].queue;
      auto queued = std::find(queue.begin(), queue.end(), task);
      if (queued == queue.end()) return absl::OkStatus();  // finishing right now
      queue.erase(queued);
      task->cancelled = true;
      Requeue(keys_[task->key], task, &actions);  // ends it
    } else {
      task->cancelled = true;
      waiting = task;
    }
  }
  if (waiting != nullptr) StoreCancelled(waiting);
  RunAll(actions);
  return absl::OkStatus();
}

void TaskSubmitter::StoreCancelled(const TaskPtr& task) {
  rpc::TaskSpec returns;
  returns.set_task_id(task->spec.task_id());
  returns.set_num_returns(task->spec.num_returns());
  StoreTaskReturns(returns, nullptr, CancelledError(task), {}, deps_.store, deps_.refs,
                   deps_.free_stored);
}

void TaskSubmitter::Finish(const TaskPtr& task, const rpc::TaskResult* result,
                           ObjectPtr error) {
  {
    MutexLock lock(&mutex_);
    pending_.erase(TaskId::FromBinary(task->spec.task_id()));
  }
  if (deps_.lineage != nullptr) {
    // Kept before the results are stored: a free right after finds the entry.
    int stored = 0;
    for (int i = 0; !error && result != nullptr && i < result->returns_size(); ++i) {
      const rpc::ReturnObject& ret = result->returns(i);
      ObjectId id = ObjectId::ForTaskReturn(TaskId::FromBinary(task->spec.task_id()), i + 1);
      if (ret.in_store() && !ret.is_error() && deps_.refs->IsOwnedAndLive(id)) ++stored;
    }
    deps_.lineage->Keep(task->spec, task->retries_left, task->retry_exceptions, stored);
  }
  if (deps_.events != nullptr) deps_.events->Ended(task->spec, result, error);
  StoreTaskReturns(task->spec, result, std::move(error), task->task_uses, deps_.store,
                   deps_.refs, deps_.free_stored);
}

void TaskSubmitter::Shutdown() {
  Actions actions;
  {
    MutexLock lock(&mutex_);
    if (shutdown_) return;
    shutdown_ = true;
    bool parked_here = false;
    for (auto& [key, state] : keys_) {
      parked_here = parked_here || state.pending_lease_requests > 0;
      for (auto& [id, lease] : state.leases) ReturnLease(lease, false, &actions);
      state.leases.clear();
      FailQueue(state,
                StoredObject::MakeError(ErrorKind::kInternal, "lumen is shutting down"),
                &actions);
    }
    // Parked requests would be granted later to nobody (a worker leased for nothing), and
    // their answers would come after this submitter is gone.
    if (parked_here) CancelAllLeaseRequests(nullptr, &actions);
    for (const auto& [raylet, count] : remote_requests_) CancelAllLeaseRequests(raylet, &actions);
  }
  RunAll(actions);
}

}  // namespace lumen::core
