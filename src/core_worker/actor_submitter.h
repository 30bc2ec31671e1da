// The caller's side of actor calls: queue them per actor, send them straight to the
// actor's worker in the order they were made, follow the actor's lifecycle in the GCS.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/event_loop.h"
#include "common/ids.h"
#include "common/mutex.h"
#include "core_worker/clients.h"
#include "core_worker/task_events.h"
#include "core_worker/memory_store.h"
#include "core_worker/reference_counter.h"
#include "core_worker/rpc_tracker.h"
#include "core_worker/task_deps.h"

namespace lumen::core {

struct ActorSubmitterDeps {
  std::string self_endpoint;
  std::string caller_id;  // binary WorkerId of this process
  MemoryStore* store;
  ReferenceCounter* refs;
  EventLoop* timers;
  GcsActorClient* gcs;
  WorkerClientFactory connect_worker;
  FreeStored free_stored;  // frees unwanted call results in the node store
  /// This process's node (known once it registered); nullptr: every actor is local.
  const NodeId* self_node = nullptr;
  /// Runs (unlocked) once this process learns that an actor it calls is dead for good.
  std::function<void(const ActorId&)> on_dead;
  /// A lost push is first sent again after this long (doubling to 1 s).
  int resend_after_ms = 20;
  /// Where the calls' state changes are recorded (null: nowhere).
  TaskEvents* events = nullptr;
};

/// Per actor this process calls:
///   - calls get a sequence number at Submit; their owned ObjectRef arguments are waited
///     for and inlined; calls leave only in sequence order, once everything before them
///     has left (so a call whose argument is ready early waits for earlier calls);
///   - while the actor is not ALIVE (pending, restarting) calls wait here;
///   - calls go out in pushes of up to kMaxBatch calls / kMaxBatchBytes (one call per
///     push for actors with max_concurrency > 1 or max_task_retries != 0), several pushes
///     in flight, numbered per incarnation; the actor's worker runs them in push order
///     whatever order they arrive in;
///   - a push whose connection fails is sent again to the same incarnation while the
///     GCS says it is alive (the worker runs each push once, and answers a push it ran
///     with the reply it kept until the caller acknowledges it), so a lost request or
///     reply neither loses a call nor runs it twice;
///   - a push that fails because the worker died waits for the GCS to say what happened:
///     dead -> ActorDiedError with the cause; restarted -> resent if the actor's
///     max_task_retries allows, else ActorDiedError.
/// The actor's state comes from a GetActorInfo long poll per actor, while calls to it wait
/// or are out (an idle actor is not polled; its next call polls again). A dead actor is
/// forgotten once nothing waits on it. Thread-safe.
class ActorSubmitter {
 public:
  static constexpr int kMaxBatch = 100;
  static constexpr size_t kMaxBatchBytes = 16 << 20;
  static constexpr int kMinPushesInFlight = 2;
  static constexpr int kOneByOnePushesInFlight = 16;
  static constexpr int64_t kPollWaitMs = 30000;
  /// A call whose connection broke while the GCS still says the actor is alive fails
  /// after this long.
  static constexpr int64_t kLostCallTimeoutMs = 30000;

  explicit ActorSubmitter(ActorSubmitterDeps deps) : deps_(std::move(deps)) {}

  /// Takes a method call whose return object is registered with the reference counter.
  /// FailedPrecondition (with the death cause) when the actor is known to be dead; the
  /// call is not taken then. `handle` (nil: none) is held as a task use until it ends.
  absl::Status Submit(const ActorId& actor, rpc::TaskSpec spec,
                      const ObjectId& handle = ObjectId::Nil());
  /// This process killed the actor for good: fail what waits, refuse later calls.
  void MarkDead(const ActorId& actor, const std::string& cause);
  /// This process killed incarnation `killed` to restart it: send nothing more to it.
  void MarkRestarting(const ActorId& actor, int32_t killed);
  /// Fails every waiting call and stops polling.
  void Shutdown();
  bool WaitForCallbacks(std::chrono::milliseconds timeout) { return rpcs_.WaitIdle(timeout); }
  /// Actors this process keeps state for: those alive it called, and dead ones with calls
  /// still settling (for tests).
  size_t NumActors();

 private:
  struct Call {
    rpc::TaskSpec spec;
    uint64_t seq = 0;
    bool resolved = false;
    ObjectPtr failed;  // an argument failed: the call fails with it, unsent
    std::vector<ObjectId> task_uses;
    bool has_nested = false;
    int retries_used = 0;
  };
  using CallPtr = std::shared_ptr<Call>;
  struct Lost {
    CallPtr call;
    int32_t incarnation;
    bool delivered;  // false: surely never reached the worker; resending is safe
  };
  // One push of calls to one incarnation, as sent (and sent again, unchanged).
  struct Push {
    int32_t incarnation = 0;
    int64_t seq = 0;
    std::shared_ptr<WorkerClient> client;
    std::vector<CallPtr> batch;
    int attempt = 0;  // 0: the first send; then how often it was sent again
  };
  struct Actor {
    rpc::ActorInfo info;  // version 0: not heard from the GCS yet
    bool dead = false;
    bool polling = false;
    uint64_t poll_generation = 0;
    std::function<void()> cancel_poll;
    uint64_t next_seq = 0;
    std::map<uint64_t, CallPtr> pending;  // not sent yet, by seq
    std::map<uint64_t, Lost> lost;        // sent, the connection broke; by seq
    int32_t sent_incarnation = -1;
    int32_t min_incarnation = 0;          // older ones were killed by this process
    int64_t next_push_seq = 0;
    int pushes_in_flight = 0;             // to sent_incarnation (first sends)
    std::set<int64_t> unanswered;         // pushes to sent_incarnation without a reply
    std::shared_ptr<WorkerClient> client;
  };
  using Actions = std::vector<std::function<void()>>;

  void OnResolved(const ActorId& id, const CallPtr& call, ObjectPtr failed);
  void Pump(const ActorId& id, Actor& actor, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Poll(const ActorId& id, Actor& actor, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void OnInfo(const ActorId& id, absl::Status status, rpc::GetActorInfoReply reply);
  /// A client to the worker of the actor `info` describes (may block to connect).
  std::shared_ptr<WorkerClient> Connect(const rpc::ActorInfo& info) const;
  /// Sends `push` (its seq is in actor.unanswered).
  void Send(const ActorId& id, const Actor& actor, Push push, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void OnPushReply(const ActorId& id, Push push, absl::Status status,
                   rpc::PushTasksReply reply);
  /// `push` was lost while the GCS still says its incarnation is alive: sends it again
  /// after a backoff, until answered or its calls are settled otherwise (the GCS reports
  /// a restart or death, or kLostCallTimeoutMs). The worker runs a push once: if it ran
  /// it, it answers with the reply it kept.
  void ResendLater(const ActorId& id, Push push) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// Every call of `push` still waits in actor.lost for it.
  static bool StillLost(const Actor& actor, const Push& push);
  /// A push's connection broke: its calls wait in actor.lost for the GCS's verdict, and
  /// it is sent again meanwhile.
  void OnLost(const ActorId& id, Actor& actor, const Push& push, const absl::Status& status,
              Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// Forgets a dead actor with nothing left waiting (a later call asks the GCS again).
  void ForgetIfDone(const ActorId& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  /// Calls wait, are out, or were lost: the actor's state must be followed.
  static bool HasWork(const Actor& actor) {
    return !actor.pending.empty() || !actor.lost.empty() || actor.pushes_in_flight > 0;
  }
  /// Decides the fate of lost calls once the GCS says the actor died or restarted.
  void ResolveLost(Actor& actor, Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void FailWaiting(Actor& actor, ObjectPtr error, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  ObjectPtr DeathError(const ActorId& id, const Actor& actor) const;
  void Finish(const CallPtr& call, const rpc::TaskResult* result, ObjectPtr error);

  ActorSubmitterDeps deps_;
  RpcTracker rpcs_;
  Mutex mutex_;
  std::map<ActorId, Actor> actors_ ABSL_GUARDED_BY(mutex_);
  // Dead actors forgotten, with their death cause (the last kMaxForgotten): calls to
  // them are refused at once.
  static constexpr size_t kMaxForgotten = 10000;
  std::map<ActorId, std::string> forgotten_ ABSL_GUARDED_BY(mutex_);
  std::deque<ActorId> forgotten_order_ ABSL_GUARDED_BY(mutex_);
  bool shutdown_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace lumen::core
