#include "gcs/actor_manager.h"

#include <cstdio>

#include "common/ids.h"
#include "common/logging.h"

namespace lumen::gcs {
namespace {

// core::ErrorKind::kActorDied, as it travels in rpc::ErrorInfo::kind.
constexpr int kActorDiedKind = 6;

std::string Label(const rpc::ActorSpec& spec) {
  std::string id = ActorId::FromBinary(spec.actor_id()).Hex();
  return spec.name().empty() ? "actor " + id : "actor '" + spec.name() + "' (" + id + ")";
}

// The error a factory threw, from the creation task's result.
std::string FactoryError(const rpc::PushTasksReply& reply) {
  if (reply.results_size() != 1 || reply.results(0).returns_size() == 0) {
    return "the worker returned no result for the factory call";
  }
  const rpc::ReturnObject& ret = reply.results(0).returns(0);
  if (!ret.is_error()) return "";
  const rpc::ErrorInfo& error = ret.error();
  return error.type_name().empty() ? error.message()
                                   : error.type_name() + ": " + error.message();
}

// The factory called ExitActor: the actor ends, as from a method, without a restart.
bool ExitedInFactory(const rpc::PushTasksReply& reply) {
  return reply.results_size() == 1 && reply.results(0).returns_size() > 0 &&
         reply.results(0).returns(0).error().kind() == kActorDiedKind;
}

}  // namespace

ActorManager::Actor* ActorManager::Find(const std::string& actor_id) {
  auto it = actors_.find(actor_id);
  return it == actors_.end() ? nullptr : &it->second;
}

std::string ActorManager::NamespaceOf(const rpc::ActorSpec& spec) const {
  return spec.namespace_().empty() ? deps_.namespace_of(spec.job_id()) : spec.namespace_();
}

absl::Status ActorManager::Register(const rpc::ActorSpec& spec) {
  if (spec.actor_id().size() != ActorId::Size()) {
    return absl::InvalidArgumentError("RegisterActor: the actor id must be 16 bytes");
  }
  if (actors_.count(spec.actor_id())) return absl::OkStatus();  // a retried request
  std::string ns = NamespaceOf(spec);
  if (!spec.name().empty()) {
    auto [it, added] = names_.try_emplace({ns, spec.name()}, spec.actor_id());
    if (!added) {
      return absl::AlreadyExistsError("an actor named '" + spec.name() +
                                      "' already exists in namespace '" + ns +
                                      "'; pick another name or GetActor it");
    }
  }
  Actor& actor = actors_[spec.actor_id()];
  actor.spec = spec;
  actor.info.set_actor_id(spec.actor_id());
  actor.info.set_state(rpc::ActorInfo::PENDING);
  actor.info.set_max_task_retries(spec.max_task_retries());
  actor.info.set_name(spec.name());
  actor.info.set_namespace_(ns);
  actor.info.set_class_name(spec.class_name());
  actor.info.set_max_concurrency(spec.max_concurrency());
  actor.info.set_version(1);
  LUMEN_LOG_INFO("gcs: (1) {} registered", Label(spec));
  return absl::OkStatus();
}

absl::Status ActorManager::Create(const std::string& actor_id, const rpc::TaskSpec& creation) {
  Actor* actor = Find(actor_id);
  if (actor == nullptr) return absl::NotFoundError("CreateActor: unknown actor");
  if (actor->creation_known || actor->info.state() == rpc::ActorInfo::DEAD) {
    return absl::OkStatus();  // a retried request, or it died meanwhile
  }
  actor->creation = creation;
  actor->creation_known = true;
  Schedule(*actor);
  return absl::OkStatus();
}

void ActorManager::Schedule(Actor& actor) {
  if (stopped_ || actor.lease_in_flight || actor.info.state() == rpc::ActorInfo::DEAD) return;
  actor.lease_in_flight = true;
  std::string id = actor.spec.actor_id();
  int32_t incarnation = actor.info.incarnation();
  deps_.lease_worker(actor.spec, [this, id, incarnation](absl::Status status,
                                                         rpc::RequestWorkerLeaseReply reply,
                                                         std::string raylet) {
    deps_.post([this, id, incarnation, status, reply = std::move(reply), raylet] {
      OnLeaseReply(id, incarnation, status, reply, raylet);
    });
  });
}

void ActorManager::OnLeaseReply(const std::string& actor_id, int32_t incarnation,
                                absl::Status status, const rpc::RequestWorkerLeaseReply& reply,
                                const std::string& raylet) {
  Actor* actor = Find(actor_id);
  if (actor == nullptr) return;
  actor->lease_in_flight = false;
  ActorLease lease{raylet,
                   reply.lease_id(),
                   reply.worker_id(),
                   reply.worker_endpoint(),
                   reply.worker_pid(),
                   {reply.gpu_ids().begin(), reply.gpu_ids().end()},
                   reply.worker_address(),
                   reply.node_id(),
                   reply.worker_frame_address()};
  if (actor->info.state() == rpc::ActorInfo::DEAD || incarnation != actor->info.incarnation() ||
      stopped_) {
    if (status.ok() && reply.granted()) deps_.kill_worker(lease);
    return;
  }
  if (!status.ok() || reply.infeasible()) {
    if (reply.infeasible()) {
      std::fprintf(stderr,
                   "lumen: warning: %s demands resources no node has; it stays pending "
                   "until a node that fits joins\n",
                   Label(actor->spec).c_str());
    } else {
      LUMEN_LOG_WARN("gcs: leasing a worker for {} failed: {}; retrying", Label(actor->spec),
                     status.ToString());
    }
    std::string id = actor_id;
    deps_.run_after(std::chrono::milliseconds(reply.infeasible() ? 5000 : 500),
                    [this, id] {
                      if (Actor* a = Find(id)) Schedule(*a);
                    });
    return;
  }
  if (!reply.failure().empty()) {
    return Die(*actor, "its worker could not start: " + reply.failure(), false);
  }
  actor->lease = std::make_unique<ActorLease>(lease);
  actor->lease_in_flight = true;
  rpc::TaskSpec creation = actor->creation;
  rpc::ActorCreationSpec* create = creation.mutable_actor_creation();
  create->set_actor_id(actor_id);
  create->set_max_concurrency(actor->spec.max_concurrency());
  create->set_incarnation(incarnation);
  creation.set_attempt(incarnation);
  deps_.push_creation(lease, creation, [this, actor_id, incarnation](
                                           absl::Status status, rpc::PushTasksReply reply) {
    deps_.post([this, actor_id, incarnation, status, reply = std::move(reply)] {
      OnCreationReply(actor_id, incarnation, status, reply);
    });
  });
}

void ActorManager::OnCreationReply(const std::string& actor_id, int32_t incarnation,
                                   absl::Status status, const rpc::PushTasksReply& reply) {
  Actor* actor = Find(actor_id);
  if (actor == nullptr || incarnation != actor->info.incarnation()) return;
  actor->lease_in_flight = false;
  if (actor->info.state() == rpc::ActorInfo::DEAD || !actor->lease) return;
  if (!status.ok()) {
    // The worker died (or cannot be reached) while creating: make sure it is gone; its
    // death report moves the actor on (3)/(4) with the exit status. Should that report
    // have come before this reply (it then matched no lease) or never come, move on
    // without it.
    deps_.kill_worker(*actor->lease);
    std::string worker = actor->lease->worker_id;
    std::string cause = "its worker died while running the factory: " + status.ToString();
    deps_.run_after(std::chrono::milliseconds(kDeathReportWaitMs),
                    [this, actor_id, incarnation, worker, cause] {
                      Actor* a = Find(actor_id);
                      if (a == nullptr || a->info.incarnation() != incarnation || !a->lease ||
                          a->lease->worker_id != worker ||
                          a->info.state() == rpc::ActorInfo::DEAD) {
                        return;
                      }
                      a->lease.reset();
                      RestartOrDie(*a, cause);
                    });
    return;
  }
  std::string error = FactoryError(reply);
  if (!error.empty()) {
    deps_.kill_worker(*actor->lease);
    actor->lease.reset();
    if (ExitedInFactory(reply)) return Die(*actor, "it exited: " + error, false);
    return RestartOrDie(*actor, "its factory failed: " + error);
  }
  actor->info.set_state(rpc::ActorInfo::ALIVE);
  actor->info.set_endpoint(actor->lease->endpoint);
  actor->info.set_address(actor->lease->address);
  actor->info.set_frame_address(actor->lease->frame_address);
  actor->info.set_node_id(actor->lease->node_id);
  actor->info.set_worker_id(actor->lease->worker_id);
  actor->info.set_pid(actor->lease->pid);
  LUMEN_LOG_INFO("gcs: (2) {} alive in worker pid {} (incarnation {})", Label(actor->spec),
                 actor->lease->pid, incarnation);
  Publish(*actor);
}

void ActorManager::RestartOrDie(Actor& actor, const std::string& cause) {
  int32_t restarts = actor.info.incarnation();
  int32_t max = actor.spec.max_restarts();
  if (max >= 0 && restarts >= max) {
    std::string limit = max == 0 ? "" : "; restarted " + std::to_string(restarts) +
                                            " time(s), max_restarts=" + std::to_string(max);
    return Die(actor, cause + limit, /*stop_worker=*/true);
  }
  actor.info.set_state(rpc::ActorInfo::RESTARTING);
  actor.info.set_incarnation(restarts + 1);
  actor.info.set_death_cause(cause);
  actor.info.clear_endpoint();
  actor.info.clear_address();
  actor.info.clear_worker_id();
  actor.info.set_pid(0);
  actor.lease.reset();
  actor.lease_in_flight = false;
  LUMEN_LOG_INFO("gcs: (3) {} restarting (restart {}): {}", Label(actor.spec), restarts + 1,
                 cause);
  Publish(actor);
  if (actor.creation_known) Schedule(actor);
}

void ActorManager::Die(Actor& actor, const std::string& cause, bool stop_worker) {
  if (actor.info.state() == rpc::ActorInfo::DEAD) return;
  if (stop_worker && actor.lease) deps_.kill_worker(*actor.lease);
  actor.lease.reset();
  actor.info.set_state(rpc::ActorInfo::DEAD);
  actor.info.set_death_cause(cause);
  actor.info.clear_endpoint();
  actor.info.clear_address();
  actor.info.clear_worker_id();
  actor.info.set_pid(0);
  actor.creation.Clear();
  if (!actor.spec.name().empty()) {
    auto it = names_.find({actor.info.namespace_(), actor.spec.name()});
    if (it != names_.end() && it->second == actor.spec.actor_id()) names_.erase(it);
  }
  LUMEN_LOG_INFO("gcs: (4) {} dead: {}", Label(actor.spec), cause);
  Publish(actor);
}

void ActorManager::Publish(Actor& actor) {
  actor.info.set_version(actor.info.version() + 1);
  AnswerPolls(actor);
}

void ActorManager::AnswerPolls(Actor& actor) {
  std::vector<Poll> polls;
  polls.swap(actor.polls);
  for (Poll& poll : polls) Answer(poll, actor);
}

void ActorManager::Answer(Poll& poll, const Actor& actor) {
  poll.reply->set_found(true);
  *poll.reply->mutable_info() = actor.info;
  poll.done(absl::OkStatus());
}

void ActorManager::GetInfo(const rpc::GetActorInfoRequest& request,
                           rpc::GetActorInfoReply* reply, rpc::Done done) {
  Actor* actor = Find(request.actor_id());
  if (actor == nullptr) {
    reply->set_found(false);
    return done(absl::OkStatus());
  }
  if (actor->info.version() > request.known_version() || request.wait_ms() <= 0 || stopped_) {
    reply->set_found(true);
    *reply->mutable_info() = actor->info;
    return done(absl::OkStatus());
  }
  uint64_t token = next_poll_token_++;
  actor->polls.push_back(Poll{token, reply, std::move(done)});
  std::string id = request.actor_id();
  int64_t wait = std::min(request.wait_ms(), kMaxWaitMs);
  deps_.run_after(std::chrono::milliseconds(wait), [this, id, token] {
    Actor* a = Find(id);
    if (a == nullptr) return;
    for (auto it = a->polls.begin(); it != a->polls.end(); ++it) {
      if (it->token != token) continue;
      Poll poll = std::move(*it);
      a->polls.erase(it);
      Answer(poll, *a);
      return;
    }
  });
}

bool ActorManager::GetNamed(const std::string& name, const std::string& ns,
                            const std::string& job_id, rpc::ActorInfo* out) const {
  std::string resolved = ns.empty() ? deps_.namespace_of(job_id) : ns;
  auto it = names_.find({resolved, name});
  if (it == names_.end()) return false;
  *out = actors_.at(it->second).info;
  return true;
}

absl::Status ActorManager::Kill(const std::string& actor_id, bool no_restart,
                                int32_t* killed_incarnation) {
  *killed_incarnation = -1;
  Actor* actor = Find(actor_id);
  if (actor == nullptr) return absl::NotFoundError("no actor with this id");
  if (no_restart) {
    Die(*actor, "it was killed by Kill()", /*stop_worker=*/true);
  } else if (actor->lease && actor->info.state() == rpc::ActorInfo::ALIVE) {
    // Like a crash: the death report restarts it (or ends it with no restarts left).
    actor->pending_kill_cause = "it was killed by Kill(no_restart=false)";
    *killed_incarnation = actor->info.incarnation();
    deps_.kill_worker(*actor->lease);
  }
  return absl::OkStatus();
}

absl::Status ActorManager::OutOfScope(const std::string& actor_id) {
  Actor* actor = Find(actor_id);
  if (actor == nullptr) return absl::NotFoundError("no actor with this id");
  if (actor->spec.detached() || !actor->spec.name().empty()) {
    return absl::InvalidArgumentError("a named or detached actor lives until it is killed");
  }
  Die(*actor, "every handle to it is gone (it went out of scope)", /*stop_worker=*/true);
  return absl::OkStatus();
}

void ActorManager::OnActorExit(const std::string& actor_id, const std::string& worker_id) {
  Actor* actor = Find(actor_id);
  if (actor == nullptr || !actor->lease || actor->lease->worker_id != worker_id) return;
  Die(*actor, "it exited by calling ExitActor()", /*stop_worker=*/false);
}

void ActorManager::OnWorkerDeath(const std::string& worker_id, int pid, const std::string& how) {
  std::vector<std::string> owned;
  for (auto& [id, actor] : actors_) {
    if (actor.info.state() == rpc::ActorInfo::DEAD) continue;
    if (actor.lease && actor.lease->worker_id == worker_id) {
      std::string cause = actor.pending_kill_cause.empty()
                              ? "its worker process (pid " + std::to_string(pid) + ") " + how
                              : actor.pending_kill_cause;
      actor.pending_kill_cause.clear();
      actor.lease.reset();
      RestartOrDie(actor, cause);
    } else if (!actor.spec.detached() && actor.spec.owner_worker_id() == worker_id) {
      owned.push_back(id);
    }
  }
  for (const std::string& id : owned) {
    Die(actors_.at(id),
        "its owner (the worker process pid " + std::to_string(pid) +
            " that created it) died; create it with ActorLifetime::kDetached to outlive "
            "its creator",
        /*stop_worker=*/true);
  }
}

void ActorManager::OnNodeDeath(const std::string& node_id, const std::string& cause) {
  for (auto& [id, actor] : actors_) {
    if (actor.info.state() == rpc::ActorInfo::DEAD || !actor.lease ||
        actor.lease->node_id != node_id) {
      continue;
    }
    actor.lease.reset();  // nothing there to stop or give back
    actor.pending_kill_cause.clear();
    RestartOrDie(actor, cause);
  }
}

void ActorManager::OnPlacementGroupRemoved(const std::string& group_id,
                                           const std::string& cause) {
  for (auto& [id, actor] : actors_) {
    const rpc::SchedulingStrategy& where = actor.spec.scheduling();
    if (where.kind() == rpc::SchedulingStrategy::PLACEMENT_GROUP &&
        where.placement_group_id() == group_id) {
      Die(actor, cause, /*stop_worker=*/true);
    }
  }
}

void ActorManager::Stop() {
  stopped_ = true;
  for (auto& [id, actor] : actors_) AnswerPolls(actor);
}

}  // namespace lumen::gcs
