// The GCS actor manager's lifecycle (PENDING -> ALIVE -> RESTARTING -> DEAD) against
// fake raylets and workers: leases, creation pushes, deaths and kills, without processes
// or sockets. Every assertion reads what GetInfo answers, as callers see it.
#include "gcs/actor_manager.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>

#include "common/ids.h"

namespace lumen::gcs {
namespace {

using LeaseCallback =
    std::function<void(absl::Status, rpc::RequestWorkerLeaseReply, std::string)>;
using CreationCallback = std::function<void(absl::Status, rpc::PushTasksReply)>;

/// A long poll parked on an actor: its reply and whether it was answered.
struct Parked {
  rpc::GetActorInfoReply reply;
  bool answered = false;
  int answers = 0;
  absl::Status status;
};

/// A worker a fake raylet granted.
struct Granted {
  std::string worker_id;
  std::string lease_id;
  std::string endpoint;
  int pid = 0;
};

class ActorManagerTest : public ::testing::Test {
 protected:
  struct LeaseRequest {
    rpc::ActorSpec spec;
    LeaseCallback callback;
  };
  struct CreationPush {
    ActorLease lease;
    rpc::TaskSpec creation;
    CreationCallback callback;
  };
  struct Timer {
    std::chrono::milliseconds delay;
    std::function<void()> fn;
  };

  void SetUp() override {
    manager_ = std::make_unique<ActorManager>(ActorManagerDeps{
        [this](std::function<void()> fn) { posted_.push_back(std::move(fn)); },
        [this](std::chrono::milliseconds delay, std::function<void()> fn) {
          timers_.push_back(Timer{delay, std::move(fn)});
        },
        [this](const rpc::ActorSpec& spec, LeaseCallback callback) {
          leases_.push_back(LeaseRequest{spec, std::move(callback)});
        },
        [this](const ActorLease& lease, const rpc::TaskSpec& creation,
               CreationCallback callback) {
          pushes_.push_back(CreationPush{lease, creation, std::move(callback)});
        },
        [this](const ActorLease& lease) { killed_.push_back(lease); },
        [this](const std::string& job_id) {
          return std::string(job_id == job_.Binary() ? "job-ns" : "other-job-ns");
        }});
  }

  /// Runs what the manager posted to its "loop", including what that posts.
  void Drain() {
    while (!posted_.empty()) {
      std::function<void()> fn = std::move(posted_.front());
      posted_.pop_front();
      fn();
    }
  }

  rpc::ActorSpec Spec(int max_restarts = 0, const std::string& name = "",
                      const std::string& ns = "", bool detached = false) {
    rpc::ActorSpec spec;
    spec.set_actor_id(ActorId::FromRandom().Binary());
    spec.set_job_id(job_.Binary());
    spec.set_owner_worker_id(owner_.Binary());
    spec.set_owner_endpoint("unix:/owner");
    spec.set_name(name);
    spec.set_namespace_(ns);
    spec.set_detached(detached);
    spec.set_max_restarts(max_restarts);
    spec.set_max_task_retries(0);
    spec.set_max_concurrency(3);
    (*spec.mutable_resources())["CPU"] = 1;
    spec.set_class_name("Counter");
    return spec;
  }

  rpc::TaskSpec Creation(const rpc::ActorSpec& spec) {
    rpc::TaskSpec creation;
    creation.set_task_id(TaskId::FromRandom().Binary());
    creation.set_job_id(spec.job_id());
    creation.set_function_name("Counter::Create");
    creation.set_num_returns(1);
    creation.add_args()->set_value("init-arg");
    return creation;
  }

  /// Registers and creates an actor: one lease request goes out.
  std::string RegisterAndCreate(const rpc::ActorSpec& spec) {
    EXPECT_TRUE(manager_->Register(spec).ok());
    EXPECT_TRUE(manager_->Create(spec.actor_id(), Creation(spec)).ok());
    Drain();
    return spec.actor_id();
  }

  /// Grants the oldest lease request with a fresh worker.
  Granted Grant() {
    Granted worker;
    EXPECT_FALSE(leases_.empty());
    if (leases_.empty()) return worker;
    LeaseCallback callback = std::move(leases_.front().callback);
    leases_.pop_front();
    int n = ++workers_started_;
    worker.worker_id = WorkerId::FromRandom().Binary();
    worker.lease_id = LeaseId::FromRandom().Binary();
    worker.endpoint = "unix:/worker-" + std::to_string(n);
    worker.pid = 1000 + n;
    rpc::RequestWorkerLeaseReply reply;
    reply.set_granted(true);
    reply.set_worker_id(worker.worker_id);
    reply.set_worker_endpoint(worker.endpoint);
    reply.set_lease_id(worker.lease_id);
    reply.set_worker_pid(worker.pid);
    callback(absl::OkStatus(), std::move(reply), "unix:/raylet");
    Drain();
    return worker;
  }

  /// Answers the oldest creation push: the factory returned.
  void CreationSucceeds() { AnswerCreation(OkResult(), absl::OkStatus()); }
  /// Answers the oldest creation push: the factory threw.
  void CreationThrows(const std::string& type_name, const std::string& message) {
    rpc::PushTasksReply reply;
    rpc::TaskResult* result = reply.add_results();
    result->set_task_id(pushes_.empty() ? "" : pushes_.front().creation.task_id());
    result->set_is_application_error(true);
    rpc::ReturnObject* ret = result->add_returns();
    ret->set_is_error(true);
    ret->mutable_error()->set_kind(1);
    ret->mutable_error()->set_type_name(type_name);
    ret->mutable_error()->set_message(message);
    AnswerCreation(reply, absl::OkStatus());
  }
  /// Answers the oldest creation push: the RPC failed (the worker died).
  void CreationFails() { AnswerCreation({}, absl::UnavailableError("socket closed")); }

  rpc::PushTasksReply OkResult() {
    rpc::PushTasksReply reply;
    rpc::TaskResult* result = reply.add_results();
    result->set_task_id(pushes_.empty() ? "" : pushes_.front().creation.task_id());
    result->add_returns()->set_data("actor-handle");
    return reply;
  }
  void AnswerCreation(rpc::PushTasksReply reply, absl::Status status) {
    ASSERT_FALSE(pushes_.empty());
    CreationCallback callback = std::move(pushes_.front().callback);
    pushes_.pop_front();
    callback(status, std::move(reply));
    Drain();
  }

  /// Brings an actor to ALIVE; returns its worker.
  Granted MakeAlive(const std::string& actor_id) {
    Granted worker = Grant();
    CreationSucceeds();
    EXPECT_EQ(Info(actor_id).state(), rpc::ActorInfo::ALIVE);
    return worker;
  }

  /// The current state (wait_ms=0 answers at once).
  rpc::ActorInfo Info(const std::string& actor_id) {
    rpc::GetActorInfoRequest request;
    request.set_actor_id(actor_id);
    request.set_wait_ms(0);
    rpc::GetActorInfoReply reply;
    bool answered = false;
    manager_->GetInfo(request, &reply, [&](absl::Status status) {
      EXPECT_TRUE(status.ok());
      answered = true;
    });
    EXPECT_TRUE(answered);
    EXPECT_TRUE(reply.found());
    return reply.info();
  }

  /// A long poll that knows the current version: parked until the next change.
  std::unique_ptr<Parked> Park(const std::string& actor_id) {
    auto parked = std::make_unique<Parked>();
    rpc::GetActorInfoRequest request;
    request.set_actor_id(actor_id);
    request.set_known_version(Info(actor_id).version());
    request.set_wait_ms(10000);
    Parked* raw = parked.get();
    manager_->GetInfo(request, &raw->reply, [raw](absl::Status status) {
      raw->answered = true;
      ++raw->answers;
      raw->status = status;
    });
    EXPECT_FALSE(parked->answered) << "a poll that knows the current version must wait";
    return parked;
  }

  static bool Contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }

  bool WasKilled(const std::string& worker_id) const {
    for (const ActorLease& lease : killed_) {
      if (lease.worker_id == worker_id) return true;
    }
    return false;
  }

  JobId job_ = JobId::FromInt(1);
  WorkerId owner_ = WorkerId::FromRandom();
  std::deque<std::function<void()>> posted_;
  std::vector<Timer> timers_;
  std::deque<LeaseRequest> leases_;
  std::deque<CreationPush> pushes_;
  std::vector<ActorLease> killed_;
  int workers_started_ = 0;
  std::unique_ptr<ActorManager> manager_;
};

TEST_F(ActorManagerTest, RegisterCreateGrantAndFactoryReturnMakeItAlive) {
  rpc::ActorSpec spec = Spec();
  ASSERT_TRUE(manager_->Register(spec).ok());
  rpc::ActorInfo pending = Info(spec.actor_id());
  EXPECT_EQ(pending.state(), rpc::ActorInfo::PENDING);
  EXPECT_EQ(pending.actor_id(), spec.actor_id());
  EXPECT_EQ(pending.class_name(), "Counter");
  EXPECT_EQ(pending.max_concurrency(), 3);
  EXPECT_EQ(pending.incarnation(), 0);
  EXPECT_TRUE(leases_.empty()) << "no lease before the factory call is known";

  ASSERT_TRUE(manager_->Create(spec.actor_id(), Creation(spec)).ok());
  Drain();
  ASSERT_EQ(leases_.size(), 1u);
  EXPECT_EQ(leases_.front().spec.actor_id(), spec.actor_id());
  // A retried CreateActor does not lease a second worker.
  ASSERT_TRUE(manager_->Create(spec.actor_id(), Creation(spec)).ok());
  Drain();
  EXPECT_EQ(leases_.size(), 1u);

  auto parked = Park(spec.actor_id());
  Granted worker = Grant();
  ASSERT_EQ(pushes_.size(), 1u);
  const CreationPush& push = pushes_.front();
  EXPECT_EQ(push.lease.worker_id, worker.worker_id);
  EXPECT_EQ(push.lease.lease_id, worker.lease_id);
  EXPECT_EQ(push.lease.endpoint, worker.endpoint);
  EXPECT_EQ(push.lease.pid, worker.pid);
  EXPECT_EQ(push.lease.raylet_endpoint, "unix:/raylet");
  ASSERT_TRUE(push.creation.has_actor_creation());
  EXPECT_EQ(push.creation.actor_creation().actor_id(), spec.actor_id());
  EXPECT_EQ(push.creation.actor_creation().max_concurrency(), 3);
  EXPECT_EQ(push.creation.actor_creation().incarnation(), 0);
  EXPECT_EQ(push.creation.function_name(), "Counter::Create");
  ASSERT_EQ(push.creation.args_size(), 1);
  EXPECT_EQ(push.creation.args(0).value(), "init-arg");
  EXPECT_EQ(Info(spec.actor_id()).state(), rpc::ActorInfo::PENDING);
  EXPECT_FALSE(parked->answered);

  CreationSucceeds();
  rpc::ActorInfo alive = Info(spec.actor_id());
  EXPECT_EQ(alive.state(), rpc::ActorInfo::ALIVE);
  EXPECT_EQ(alive.endpoint(), worker.endpoint);
  EXPECT_EQ(alive.worker_id(), worker.worker_id);
  EXPECT_EQ(alive.pid(), worker.pid);
  EXPECT_EQ(alive.incarnation(), 0);
  EXPECT_GT(alive.version(), pending.version());
  ASSERT_TRUE(parked->answered);
  EXPECT_TRUE(parked->status.ok());
  EXPECT_TRUE(parked->reply.found());
  EXPECT_EQ(parked->reply.info().state(), rpc::ActorInfo::ALIVE);
  EXPECT_EQ(parked->reply.info().endpoint(), worker.endpoint);
  EXPECT_TRUE(killed_.empty());
}

TEST_F(ActorManagerTest, NamesAreUniquePerNamespaceAndFreedOnDeath) {
  rpc::ActorSpec first = Spec(0, "counter");
  ASSERT_TRUE(manager_->Register(first).ok());
  EXPECT_EQ(Info(first.actor_id()).namespace_(), "job-ns");

  // The same name in the same namespace (the job's, implicitly or explicitly) is taken.
  absl::Status taken = manager_->Register(Spec(0, "counter"));
  EXPECT_EQ(taken.code(), absl::StatusCode::kAlreadyExists) << taken;
  absl::Status taken_explicit = manager_->Register(Spec(0, "counter", "job-ns"));
  EXPECT_EQ(taken_explicit.code(), absl::StatusCode::kAlreadyExists) << taken_explicit;
  // A retried RegisterActor of the same actor is fine.
  EXPECT_TRUE(manager_->Register(first).ok());

  rpc::ActorSpec other = Spec(0, "counter", "other");
  ASSERT_TRUE(manager_->Register(other).ok());

  rpc::ActorInfo found;
  ASSERT_TRUE(manager_->GetNamed("counter", "", job_.Binary(), &found));
  EXPECT_EQ(found.actor_id(), first.actor_id());
  ASSERT_TRUE(manager_->GetNamed("counter", "job-ns", "", &found));
  EXPECT_EQ(found.actor_id(), first.actor_id());
  ASSERT_TRUE(manager_->GetNamed("counter", "other", "", &found));
  EXPECT_EQ(found.actor_id(), other.actor_id());
  EXPECT_FALSE(manager_->GetNamed("nobody", "", job_.Binary(), &found));

  auto parked = Park(first.actor_id());
  int32_t killed_incarnation = 7;
  ASSERT_TRUE(manager_->Kill(first.actor_id(), /*no_restart=*/true, &killed_incarnation).ok());
  EXPECT_EQ(killed_incarnation, -1);
  rpc::ActorInfo dead = Info(first.actor_id());
  EXPECT_EQ(dead.state(), rpc::ActorInfo::DEAD);
  EXPECT_TRUE(Contains(dead.death_cause(), "Kill()")) << dead.death_cause();
  ASSERT_TRUE(parked->answered);
  EXPECT_EQ(parked->reply.info().state(), rpc::ActorInfo::DEAD);

  EXPECT_FALSE(manager_->GetNamed("counter", "", job_.Binary(), &found));
  // The other namespace's actor keeps its name.
  ASSERT_TRUE(manager_->GetNamed("counter", "other", "", &found));
  EXPECT_EQ(found.actor_id(), other.actor_id());

  rpc::ActorSpec again = Spec(0, "counter");
  ASSERT_TRUE(manager_->Register(again).ok());
  ASSERT_TRUE(manager_->GetNamed("counter", "", job_.Binary(), &found));
  EXPECT_EQ(found.actor_id(), again.actor_id());
  EXPECT_EQ(found.state(), rpc::ActorInfo::PENDING);
}

TEST_F(ActorManagerTest, WorkerDeathRestartsThenEndsItWithNoRestartsLeft) {
  rpc::ActorSpec spec = Spec(/*max_restarts=*/1);
  std::string id = RegisterAndCreate(spec);
  Granted first = MakeAlive(id);
  EXPECT_TRUE(leases_.empty());

  auto restarting_poll = Park(id);
  manager_->OnWorkerDeath(first.worker_id, first.pid, "was killed by signal 9");
  Drain();
  rpc::ActorInfo restarting = Info(id);
  EXPECT_EQ(restarting.state(), rpc::ActorInfo::RESTARTING);
  EXPECT_EQ(restarting.incarnation(), 1);
  EXPECT_TRUE(restarting.endpoint().empty());
  EXPECT_TRUE(Contains(restarting.death_cause(), "signal 9")) << restarting.death_cause();
  ASSERT_TRUE(restarting_poll->answered);
  EXPECT_EQ(restarting_poll->reply.info().state(), rpc::ActorInfo::RESTARTING);
  ASSERT_EQ(leases_.size(), 1u) << "a restart leases a new worker";
  EXPECT_EQ(leases_.front().spec.actor_id(), id);

  Granted second = Grant();
  ASSERT_EQ(pushes_.size(), 1u);
  EXPECT_EQ(pushes_.front().lease.worker_id, second.worker_id);
  EXPECT_EQ(pushes_.front().creation.actor_creation().incarnation(), 1);
  EXPECT_EQ(pushes_.front().creation.actor_creation().actor_id(), id);
  EXPECT_EQ(pushes_.front().creation.args(0).value(), "init-arg");
  auto alive_poll = Park(id);
  CreationSucceeds();
  rpc::ActorInfo alive = Info(id);
  EXPECT_EQ(alive.state(), rpc::ActorInfo::ALIVE);
  EXPECT_EQ(alive.incarnation(), 1);
  EXPECT_EQ(alive.endpoint(), second.endpoint);
  EXPECT_EQ(alive.pid(), second.pid);
  EXPECT_EQ(alive.worker_id(), second.worker_id);
  ASSERT_TRUE(alive_poll->answered);
  EXPECT_EQ(alive_poll->reply.info().state(), rpc::ActorInfo::ALIVE);

  // The first worker dying again (a late duplicate report) changes nothing.
  manager_->OnWorkerDeath(first.worker_id, first.pid, "was killed by signal 9");
  Drain();
  EXPECT_EQ(Info(id).state(), rpc::ActorInfo::ALIVE);
  EXPECT_EQ(Info(id).version(), alive.version());

  auto dead_poll = Park(id);
  manager_->OnWorkerDeath(second.worker_id, second.pid, "was killed by signal 9");
  Drain();
  rpc::ActorInfo dead = Info(id);
  EXPECT_EQ(dead.state(), rpc::ActorInfo::DEAD);
  EXPECT_TRUE(Contains(dead.death_cause(), "signal 9")) << dead.death_cause();
  EXPECT_TRUE(dead.endpoint().empty());
  ASSERT_TRUE(dead_poll->answered);
  EXPECT_EQ(dead_poll->reply.info().state(), rpc::ActorInfo::DEAD);
  EXPECT_TRUE(leases_.empty()) << "a dead actor leases no worker";
  EXPECT_TRUE(pushes_.empty());
}

TEST_F(ActorManagerTest, FactoryThrowsWithNoRestartsEndsItAndStopsItsWorker) {
  std::string id = RegisterAndCreate(Spec(/*max_restarts=*/0));
  Granted worker = Grant();
  auto parked = Park(id);
  CreationThrows("std::runtime_error", "the database is down");
  rpc::ActorInfo dead = Info(id);
  EXPECT_EQ(dead.state(), rpc::ActorInfo::DEAD);
  EXPECT_TRUE(Contains(dead.death_cause(), "the database is down")) << dead.death_cause();
  EXPECT_TRUE(Contains(dead.death_cause(), "std::runtime_error")) << dead.death_cause();
  EXPECT_TRUE(dead.endpoint().empty());
  ASSERT_TRUE(parked->answered);
  EXPECT_EQ(parked->reply.info().state(), rpc::ActorInfo::DEAD);
  EXPECT_TRUE(WasKilled(worker.worker_id)) << "the worker that ran the factory is stopped";
  for (const ActorLease& lease : killed_) EXPECT_EQ(lease.lease_id, worker.lease_id);
  EXPECT_TRUE(leases_.empty()) << "no restart with max_restarts=0";
}

TEST_F(ActorManagerTest, KillWithRestartStopsTheWorkerAndItsDeathRestartsIt) {
  std::string id = RegisterAndCreate(Spec(/*max_restarts=*/1));
  Granted worker = MakeAlive(id);

  int32_t killed_incarnation = -5;
  ASSERT_TRUE(manager_->Kill(id, /*no_restart=*/false, &killed_incarnation).ok());
  Drain();
  EXPECT_EQ(killed_incarnation, 0);
  ASSERT_EQ(killed_.size(), 1u);
  EXPECT_EQ(killed_[0].worker_id, worker.worker_id);
  EXPECT_EQ(killed_[0].lease_id, worker.lease_id);

  auto parked = Park(id);
  manager_->OnWorkerDeath(worker.worker_id, worker.pid, "was killed by signal 9");
  Drain();
  rpc::ActorInfo restarting = Info(id);
  EXPECT_EQ(restarting.state(), rpc::ActorInfo::RESTARTING);
  EXPECT_EQ(restarting.incarnation(), 1);
  EXPECT_TRUE(Contains(restarting.death_cause(), "Kill(no_restart=false)"))
      << restarting.death_cause();
  ASSERT_TRUE(parked->answered);
  EXPECT_EQ(parked->reply.info().state(), rpc::ActorInfo::RESTARTING);
  EXPECT_EQ(leases_.size(), 1u);
}

TEST_F(ActorManagerTest, ExitActorEndsItWithoutStoppingTheWorker) {
  std::string id = RegisterAndCreate(Spec(/*max_restarts=*/3));
  Granted worker = MakeAlive(id);

  // A report from another worker is ignored.
  manager_->OnActorExit(id, WorkerId::FromRandom().Binary());
  Drain();
  EXPECT_EQ(Info(id).state(), rpc::ActorInfo::ALIVE);

  auto parked = Park(id);
  manager_->OnActorExit(id, worker.worker_id);
  Drain();
  rpc::ActorInfo dead = Info(id);
  EXPECT_EQ(dead.state(), rpc::ActorInfo::DEAD);
  EXPECT_TRUE(Contains(dead.death_cause(), "ExitActor")) << dead.death_cause();
  ASSERT_TRUE(parked->answered);
  EXPECT_EQ(parked->reply.info().state(), rpc::ActorInfo::DEAD);
  EXPECT_TRUE(killed_.empty()) << "the exiting worker is not killed";

  // The worker then exits: nothing changes (no restart, same cause, same version).
  manager_->OnWorkerDeath(worker.worker_id, worker.pid, "exited with status 0");
  Drain();
  rpc::ActorInfo after = Info(id);
  EXPECT_EQ(after.state(), rpc::ActorInfo::DEAD);
  EXPECT_EQ(after.death_cause(), dead.death_cause());
  EXPECT_EQ(after.version(), dead.version());
  EXPECT_TRUE(leases_.empty());
  EXPECT_TRUE(killed_.empty());
}

TEST_F(ActorManagerTest, OwnerDeathEndsNonDetachedActorsOnly) {
  std::string owned = RegisterAndCreate(Spec(/*max_restarts=*/-1));
  Granted owned_worker = MakeAlive(owned);
  std::string detached =
      RegisterAndCreate(Spec(/*max_restarts=*/-1, "svc", "", /*detached=*/true));
  Granted detached_worker = MakeAlive(detached);
  rpc::ActorInfo detached_before = Info(detached);

  auto parked = Park(owned);
  manager_->OnWorkerDeath(owner_.Binary(), 4242, "exited with status 1");
  Drain();
  rpc::ActorInfo dead = Info(owned);
  EXPECT_EQ(dead.state(), rpc::ActorInfo::DEAD) << "no restart, even with max_restarts=-1";
  EXPECT_TRUE(Contains(dead.death_cause(), "owner")) << dead.death_cause();
  ASSERT_TRUE(parked->answered);
  EXPECT_EQ(parked->reply.info().state(), rpc::ActorInfo::DEAD);
  EXPECT_TRUE(WasKilled(owned_worker.worker_id));

  rpc::ActorInfo detached_after = Info(detached);
  EXPECT_EQ(detached_after.state(), rpc::ActorInfo::ALIVE);
  EXPECT_EQ(detached_after.endpoint(), detached_worker.endpoint);
  EXPECT_EQ(detached_after.version(), detached_before.version());
  EXPECT_FALSE(WasKilled(detached_worker.worker_id));
  rpc::ActorInfo named;
  EXPECT_TRUE(manager_->GetNamed("svc", "", job_.Binary(), &named));
  EXPECT_TRUE(leases_.empty());
}

TEST_F(ActorManagerTest, LeaseGrantedAfterDeathIsKilledAtOnce) {
  std::string id = RegisterAndCreate(Spec(/*max_restarts=*/2));
  ASSERT_EQ(leases_.size(), 1u);

  int32_t killed_incarnation = 0;
  ASSERT_TRUE(manager_->Kill(id, /*no_restart=*/true, &killed_incarnation).ok());
  Drain();
  EXPECT_EQ(Info(id).state(), rpc::ActorInfo::DEAD);
  EXPECT_TRUE(killed_.empty()) << "no worker yet";
  rpc::ActorInfo dead = Info(id);

  Granted late = Grant();
  ASSERT_EQ(killed_.size(), 1u);
  EXPECT_EQ(killed_[0].worker_id, late.worker_id);
  EXPECT_EQ(killed_[0].lease_id, late.lease_id);
  EXPECT_TRUE(pushes_.empty()) << "no factory call on a dead actor's worker";
  rpc::ActorInfo after = Info(id);
  EXPECT_EQ(after.state(), rpc::ActorInfo::DEAD);
  EXPECT_EQ(after.version(), dead.version());
  EXPECT_TRUE(after.endpoint().empty());
}

TEST_F(ActorManagerTest, CreationRpcFailureStopsTheWorkerAndItsDeathReportRestarts) {
  std::string id = RegisterAndCreate(Spec(/*max_restarts=*/1));
  Granted worker = Grant();
  CreationFails();
  ASSERT_EQ(killed_.size(), 1u) << "an unreachable worker is made sure to be gone";
  EXPECT_EQ(killed_[0].worker_id, worker.worker_id);
  EXPECT_NE(Info(id).state(), rpc::ActorInfo::ALIVE);

  manager_->OnWorkerDeath(worker.worker_id, worker.pid, "was killed by signal 9");
  Drain();
  rpc::ActorInfo restarting = Info(id);
  EXPECT_EQ(restarting.state(), rpc::ActorInfo::RESTARTING);
  EXPECT_EQ(restarting.incarnation(), 1);
  ASSERT_EQ(leases_.size(), 1u);
  Granted second = Grant();
  ASSERT_EQ(pushes_.size(), 1u);
  EXPECT_EQ(pushes_.front().creation.actor_creation().incarnation(), 1);
  CreationSucceeds();
  rpc::ActorInfo alive = Info(id);
  EXPECT_EQ(alive.state(), rpc::ActorInfo::ALIVE);
  EXPECT_EQ(alive.endpoint(), second.endpoint);
}

TEST_F(ActorManagerTest, StopAnswersParkedPolls) {
  std::string a = RegisterAndCreate(Spec());
  ASSERT_TRUE(manager_->Register(Spec()).ok());
  rpc::ActorSpec b_spec = Spec(0, "b");
  ASSERT_TRUE(manager_->Register(b_spec).ok());
  auto poll_a1 = Park(a);
  auto poll_a2 = Park(a);
  auto poll_b = Park(b_spec.actor_id());

  manager_->Stop();
  Drain();
  for (Parked* poll : {poll_a1.get(), poll_a2.get(), poll_b.get()}) {
    ASSERT_TRUE(poll->answered);
    EXPECT_TRUE(poll->status.ok());
    EXPECT_TRUE(poll->reply.found());
    EXPECT_EQ(poll->reply.info().state(), rpc::ActorInfo::PENDING);
  }
  EXPECT_EQ(poll_b->reply.info().actor_id(), b_spec.actor_id());

  // After Stop a poll is answered at once instead of parking.
  rpc::GetActorInfoRequest request;
  request.set_actor_id(a);
  request.set_known_version(Info(a).version());
  request.set_wait_ms(10000);
  rpc::GetActorInfoReply reply;
  bool answered = false;
  manager_->GetInfo(request, &reply, [&](absl::Status) { answered = true; });
  EXPECT_TRUE(answered);
  EXPECT_TRUE(reply.found());

  // The poll timers that fire late find nothing parked and do not answer again.
  for (Timer& timer : timers_) timer.fn();
  for (Parked* poll : {poll_a1.get(), poll_a2.get(), poll_b.get()}) EXPECT_EQ(poll->answers, 1);
}

TEST_F(ActorManagerTest, UnknownActorIsNotFound) {
  rpc::GetActorInfoRequest request;
  request.set_actor_id(ActorId::FromRandom().Binary());
  request.set_wait_ms(10000);
  rpc::GetActorInfoReply reply;
  bool answered = false;
  manager_->GetInfo(request, &reply, [&](absl::Status) { answered = true; });
  EXPECT_TRUE(answered);
  EXPECT_FALSE(reply.found());
  int32_t killed_incarnation = 0;
  EXPECT_EQ(manager_->Kill(request.actor_id(), true, &killed_incarnation).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->Create(request.actor_id(), rpc::TaskSpec()).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace lumen::gcs
