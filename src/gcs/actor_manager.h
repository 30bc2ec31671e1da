// The GCS actor manager: the actor directory (ids, names in namespaces) and each actor's
// lifecycle. Loop-only: every method runs on the GCS event loop.
//
// Lifecycle (the numbers appear in the GCS log):
//
//            (1) RegisterActor               (2) factory returned
//   [new] ─────────────────────► PENDING ───────────────────────► ALIVE
//                                   │  ▲                            │
//               (3) worker died /   │  │ (2) factory returned       │ (3) worker died
//               factory threw,      ▼  │                            │     (crash, signal,
//               restarts left     RESTARTING ◄──────────────────────┘     Kill(false))
//                                   │
//   (4) from any state: Kill(), ExitActor(), owner died, worker died or factory threw
//       with no restarts left, workers cannot start  ──────────────► DEAD (final)
//
// (1) reserves the name. (2) publishes the worker's endpoint; callers send calls straight
// to it. (3) re-leases a worker and re-runs the factory with the same arguments,
// incarnation + 1. (4) releases the name, stops the worker, and records why in
// death_cause; later GetActorInfo answers carry it to every caller.
// Every change bumps the actor's version and answers the long polls parked on it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common.pb.h"
#include "core_worker.pb.h"
#include "gcs.pb.h"
#include "raylet.pb.h"
#include "rpc/rpc.h"

namespace lumen::gcs {

/// A worker a raylet leased to the GCS for one actor incarnation.
struct ActorLease {
  std::string raylet_endpoint;
  std::string lease_id;   // binary
  std::string worker_id;  // binary
  std::string endpoint;   // unix:, for callers on its node
  int pid = 0;
  std::vector<int> gpu_ids;
  std::string address;    // TCP, for the GCS and callers on other nodes
  std::string node_id;    // binary
  std::string frame_address;  // TCP, where callers on other nodes push calls
};

/// The manager's peers, as functions: gRPC in the GCS, fakes in tests. Each callback
/// may run on any thread; the manager posts it to its loop itself.
struct ActorManagerDeps {
  /// Runs `fn` on the GCS loop later.
  std::function<void(std::function<void()>)> post;
  std::function<void(std::chrono::milliseconds, std::function<void()>)> run_after;
  /// Asks a raylet that fits `spec` for a dedicated worker.
  std::function<void(const rpc::ActorSpec& spec,
                     std::function<void(absl::Status, rpc::RequestWorkerLeaseReply,
                                        std::string raylet_endpoint)>)>
      lease_worker;
  /// Runs the factory call on the leased worker.
  std::function<void(const ActorLease& lease, const rpc::TaskSpec& creation,
                     std::function<void(absl::Status, rpc::PushTasksReply)>)>
      push_creation;
  /// Returns the lease and stops the worker (SIGKILL).
  std::function<void(const ActorLease& lease)> kill_worker;
  /// The namespace of a job (named actors registered without one live there).
  std::function<std::string(const std::string& job_id)> namespace_of;
};

class ActorManager {
 public:
  /// How long a GetActorInfo long poll waits at most.
  static constexpr int64_t kMaxWaitMs = 30000;
  /// After a failed creation push, how long to wait for the worker's death report.
  static constexpr int64_t kDeathReportWaitMs = 2000;

  explicit ActorManager(ActorManagerDeps deps) : deps_(std::move(deps)) {}

  /// (1). AlreadyExists when the name is taken in its namespace.
  absl::Status Register(const rpc::ActorSpec& spec);
  /// The factory call, with the arguments its creator owns resolved: schedule it.
  absl::Status Create(const std::string& actor_id, const rpc::TaskSpec& creation);
  /// Answers at once when the actor changed after known_version, else when it changes
  /// or wait_ms passes.
  void GetInfo(const rpc::GetActorInfoRequest& request, rpc::GetActorInfoReply* reply,
               rpc::Done done);
  /// A live actor by name; `ns` empty means the namespace of `job_id`.
  bool GetNamed(const std::string& name, const std::string& ns, const std::string& job_id,
                rpc::ActorInfo* out) const;
  /// Sets *killed_incarnation to the incarnation stopped for a restart (-1: none).
  absl::Status Kill(const std::string& actor_id, bool no_restart, int32_t* killed_incarnation);
  /// Its owner says every handle to it is gone: it ends for good (unnamed, non-detached
  /// actors only; InvalidArgument for others).
  absl::Status OutOfScope(const std::string& actor_id);
  /// ExitActor() in the actor's worker: (4) without stopping the (exiting) worker.
  void OnActorExit(const std::string& actor_id, const std::string& worker_id);
  /// A raylet reaped a worker: actors running on it crash (3)/(4); non-detached actors
  /// it owned die (4).
  void OnWorkerDeath(const std::string& worker_id, int pid, const std::string& how);
  /// A node was declared dead: actors on it restart elsewhere or die with `cause` (their
  /// workers went with the node).
  void OnNodeDeath(const std::string& node_id, const std::string& cause);
  /// Its placement group was removed: the actors placed in it die (no restart).
  void OnPlacementGroupRemoved(const std::string& group_id, const std::string& cause);
  /// Answers every parked long poll (the server is stopping).
  void Stop();
  /// Every actor, dead or alive, by binary actor id: f(spec, info).
  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& [id, actor] : actors_) f(actor.spec, actor.info);
  }

 private:
  struct Poll {
    uint64_t token;
    rpc::GetActorInfoReply* reply;
    rpc::Done done;
  };
  struct Actor {
    rpc::ActorSpec spec;
    rpc::ActorInfo info;
    rpc::TaskSpec creation;          // kept for restarts
    bool creation_known = false;
    bool lease_in_flight = false;    // a lease request or creation push is outstanding
    std::unique_ptr<ActorLease> lease;
    std::string pending_kill_cause;  // Kill(no_restart=false) in progress
    std::vector<Poll> polls;
  };

  void Schedule(Actor& actor);
  void OnLeaseReply(const std::string& actor_id, int32_t incarnation, absl::Status status,
                    const rpc::RequestWorkerLeaseReply& reply, const std::string& raylet);
  void OnCreationReply(const std::string& actor_id, int32_t incarnation, absl::Status status,
                       const rpc::PushTasksReply& reply);
  /// (3) or (4), depending on the restarts left.
  void RestartOrDie(Actor& actor, const std::string& cause);
  void Die(Actor& actor, const std::string& cause, bool stop_worker);
  /// Bumps the version and answers the polls parked on the actor.
  void Publish(Actor& actor);
  void AnswerPolls(Actor& actor);
  static void Answer(Poll& poll, const Actor& actor);
  std::string NamespaceOf(const rpc::ActorSpec& spec) const;
  Actor* Find(const std::string& actor_id);

  ActorManagerDeps deps_;
  std::map<std::string, Actor> actors_;                       // by binary actor id
  std::map<std::pair<std::string, std::string>, std::string> names_;  // (ns, name) -> id
  uint64_t next_poll_token_ = 1;
  bool stopped_ = false;
};

}  // namespace lumen::gcs
