// The caller's side of actor calls against a fake GCS and fake actor workers: ordering,
// push numbering, argument resolution, worker death, restarts and the actor's death,
// without processes or sockets. Every fake answers only when the test tells it to, on
// the test's thread.
#include "core_worker/actor_submitter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lumen::core {
namespace {

constexpr char kSelf[] = "unix:/caller";

/// The GCS's actor directory: parks every GetActorInfo long poll until the test answers.
class FakeGcs : public GcsActorClient {
 public:
  struct Parked {
    rpc::GetActorInfoRequest request;
    ReplyCallback<rpc::GetActorInfoReply> callback;
    bool done = false;  // guarded by FakeGcs::mutex_
  };

  std::function<void()> GetActorInfo(rpc::GetActorInfoRequest request,
                                     ReplyCallback<rpc::GetActorInfoReply> callback) override {
    auto parked = std::make_shared<Parked>();
    parked->request = request;
    parked->callback = std::move(callback);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(request);
      parked_.push_back(parked);
    }
    return [this, parked] {
      if (!Take(parked)) return;  // answered already
      ++cancels_;
      parked->callback(absl::CancelledError("poll cancelled"), {});
    };
  }

  /// Answers the oldest parked poll for `actor` with `info` (found).
  void Answer(const ActorId& actor, const rpc::ActorInfo& info) {
    std::shared_ptr<Parked> parked;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = parked_.begin(); it != parked_.end(); ++it) {
        if ((*it)->request.actor_id() == actor.Binary()) {
          parked = *it;
          parked->done = true;
          parked_.erase(it);
          break;
        }
      }
    }
    ASSERT_NE(parked, nullptr) << "no poll parked for the actor";
    rpc::GetActorInfoReply reply;
    reply.set_found(true);
    *reply.mutable_info() = info;
    parked->callback(absl::OkStatus(), std::move(reply));
  }

  size_t NumParked() {
    std::lock_guard<std::mutex> lock(mutex_);
    return parked_.size();
  }
  std::vector<rpc::GetActorInfoRequest> Requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  int Cancels() { return cancels_; }

 private:
  bool Take(const std::shared_ptr<Parked>& parked) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (parked->done) return false;
    parked->done = true;
    std::erase(parked_, parked);
    return true;
  }

  std::mutex mutex_;
  std::deque<std::shared_ptr<Parked>> parked_;
  std::vector<rpc::GetActorInfoRequest> requests_;
  std::atomic<int> cancels_{0};
};

/// One actor worker: records pushes, answers them when the test says.
class FakeWorker : public WorkerClient {
 public:
  struct Push {
    rpc::PushTasksRequest request;
    ReplyCallback<rpc::PushTasksReply> callback;
  };
  void PushTasks(rpc::PushTasksRequest request,
                 ReplyCallback<rpc::PushTasksReply> callback) override {
    std::lock_guard lock(mutex);  // lost pushes are sent again from the timer thread
    all.push_back(request);
    pushes.push_back(Push{std::move(request), std::move(callback)});
  }
  size_t Unanswered() {
    std::lock_guard lock(mutex);
    return pushes.size();
  }
  Push Take() {
    std::lock_guard lock(mutex);
    Push push = std::move(pushes.front());
    pushes.pop_front();
    return push;
  }
  /// Answers the oldest unanswered push OK: each call returns "r:" + its method name.
  void Answer() {
    ASSERT_GT(Unanswered(), 0u);
    Push push = Take();
    rpc::PushTasksReply reply;
    for (const auto& task : push.request.tasks()) {
      rpc::TaskResult* result = reply.add_results();
      result->set_task_id(task.task_id());
      result->add_returns()->set_data("r:" + task.function_name());
    }
    push.callback(absl::OkStatus(), std::move(reply));
  }
  /// Fails the oldest unanswered push with `status`.
  void Fail(absl::Status status) {
    ASSERT_GT(Unanswered(), 0u);
    Push push = Take();
    push.callback(status, {});
  }

  std::mutex mutex;
  std::deque<Push> pushes;               // not answered yet
  std::vector<rpc::PushTasksRequest> all;  // every push ever received, in order
};

std::vector<std::string> Methods(const rpc::PushTasksRequest& request) {
  std::vector<std::string> names;
  for (const auto& task : request.tasks()) names.push_back(task.function_name());
  return names;
}

class ActorSubmitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    timers_.Start();
    ActorSubmitterDeps deps{
        kSelf, caller_.Binary(), &store_, &refs_, &timers_, &gcs_,
        [this](const std::string& endpoint, const std::string&) -> std::shared_ptr<WorkerClient> {
          auto& worker = workers_[endpoint];
          if (!worker) worker = std::make_shared<FakeWorker>();
          return worker;
        },
        /*free_stored=*/nullptr};
    // Lost pushes are sent again only in the tests that say so (else: after an hour).
    deps.resend_after_ms = ResendAfterMs();
    submitter_ = std::make_unique<ActorSubmitter>(std::move(deps));
  }
  virtual int ResendAfterMs() { return 3600 * 1000; }
  void TearDown() override {
    submitter_->Shutdown();
    // Pushes still out come back as the connection closing.
    for (auto& [endpoint, worker] : workers_) {
      while (!worker->pushes.empty()) worker->Fail(absl::UnavailableError("closing"));
    }
    EXPECT_TRUE(submitter_->WaitForCallbacks(std::chrono::seconds(5)));
    timers_.Stop();
  }

  rpc::TaskSpec Spec(const std::string& method, std::vector<rpc::TaskArg> args, TaskId task) {
    rpc::TaskSpec spec;
    spec.set_task_id(task.Binary());
    spec.set_function_name(method);
    spec.set_num_returns(1);
    spec.set_owner(kSelf);
    spec.set_actor_id(actor_.Binary());
    for (auto& arg : args) *spec.add_args() = std::move(arg);
    return spec;
  }
  /// Submits a call of `method` to the actor, as CoreWorker does; returns its return id.
  ObjectId Call(const std::string& method, std::vector<rpc::TaskArg> args = {}) {
    TaskId task = TaskId::FromRandom();
    ObjectId id = ObjectId::ForTaskReturn(task, 1);
    refs_.AddOwned(id);
    absl::Status status = submitter_->Submit(actor_, Spec(method, std::move(args), task));
    EXPECT_TRUE(status.ok()) << status;
    return id;
  }
  /// An object owned here, not yet stored, and a by-reference argument naming it.
  std::pair<ObjectId, rpc::TaskArg> OwnedDependency() {
    ObjectId dep = ObjectId::ForPut(TaskId::FromRandom(), 0);
    refs_.AddOwned(dep);
    rpc::TaskArg arg;
    arg.mutable_ref()->set_id(dep.Binary());
    arg.mutable_ref()->set_owner(kSelf);
    return {dep, arg};
  }
  rpc::ActorInfo Info(rpc::ActorInfo::State state, int32_t incarnation,
                      const std::string& endpoint, int32_t max_task_retries = 0,
                      const std::string& cause = "") {
    rpc::ActorInfo info;
    info.set_actor_id(actor_.Binary());
    info.set_state(state);
    info.set_endpoint(endpoint);
    info.set_incarnation(incarnation);
    info.set_version(++version_);
    info.set_max_task_retries(max_task_retries);
    info.set_max_concurrency(1);
    info.set_death_cause(cause);
    return info;
  }
  void Gcs(rpc::ActorInfo::State state, int32_t incarnation, const std::string& endpoint,
           int32_t max_task_retries = 0, const std::string& cause = "") {
    gcs_.Answer(actor_, Info(state, incarnation, endpoint, max_task_retries, cause));
  }
  FakeWorker& Worker(const std::string& endpoint) {
    auto& worker = workers_[endpoint];
    if (!worker) worker = std::make_shared<FakeWorker>();  // never connected: no pushes
    return *worker;
  }
  ObjectPtr Get(const ObjectId& id) { return store_.GetIfReady(id); }
  /// Method names of every push `endpoint` received, in order, flattened.
  std::vector<std::string> Sent(const std::string& endpoint) {
    std::vector<std::string> names;
    for (const auto& request : Worker(endpoint).all) {
      for (auto& name : Methods(request)) names.push_back(name);
    }
    return names;
  }
  void ExpectValue(const ObjectId& id, const std::string& value) {
    ObjectPtr object = Get(id);
    ASSERT_NE(object, nullptr);
    EXPECT_FALSE(object->IsError()) << object->error_message;
    EXPECT_EQ(object->data, value);
  }
  void ExpectError(const ObjectId& id, ErrorKind kind, const std::string& part) {
    ObjectPtr object = Get(id);
    ASSERT_NE(object, nullptr);
    EXPECT_EQ(object->error, kind) << object->error_message;
    EXPECT_NE(object->error_message.find(part), std::string::npos)
        << "'" << object->error_message << "' lacks '" << part << "'";
  }

  const ActorId actor_ = ActorId::FromRandom();
  const WorkerId caller_ = WorkerId::FromRandom();
  int64_t version_ = 0;
  MemoryStore store_;
  ReferenceCounter refs_{[this](const ReferenceCounter::Freed& f) { store_.Erase(f.id); }};
  EventLoop timers_{"test-timers"};
  FakeGcs gcs_;
  std::map<std::string, std::shared_ptr<FakeWorker>> workers_;
  std::unique_ptr<ActorSubmitter> submitter_;
};

// 1.
TEST_F(ActorSubmitterTest, CallsWaitForAliveThenLeaveInSubmissionOrder) {
  ObjectId a = Call("A");
  ObjectId b = Call("B");
  ObjectId c = Call("C");
  // One long poll for the actor, from "never heard of it".
  ASSERT_EQ(gcs_.NumParked(), 1u);
  EXPECT_EQ(gcs_.Requests()[0].actor_id(), actor_.Binary());
  EXPECT_EQ(gcs_.Requests()[0].known_version(), 0);
  EXPECT_TRUE(workers_.empty());

  Gcs(rpc::ActorInfo::PENDING, 0, "");
  EXPECT_TRUE(Sent("w1").empty());
  ASSERT_EQ(gcs_.NumParked(), 1u);  // polls again, from the version it knows
  EXPECT_EQ(gcs_.Requests().back().known_version(), 1);

  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");
  EXPECT_EQ(Sent("w1"), (std::vector<std::string>{"A", "B", "C"}));
  ASSERT_EQ(Worker("w1").all.size(), 1u);  // max_task_retries 0: batched
  EXPECT_EQ(Worker("w1").all[0].push_seq(), 0);
  EXPECT_EQ(Worker("w1").all[0].caller_id(), caller_.Binary());

  // Calls made while that push is out follow in later pushes, numbered on.
  ObjectId d = Call("D");
  ObjectId e = Call("E");
  EXPECT_EQ(Get(a), nullptr);
  while (!Worker("w1").pushes.empty()) Worker("w1").Answer();
  EXPECT_EQ(Sent("w1"), (std::vector<std::string>{"A", "B", "C", "D", "E"}));
  for (size_t i = 0; i < Worker("w1").all.size(); ++i) {
    EXPECT_EQ(Worker("w1").all[i].push_seq(), int64_t(i));
    EXPECT_EQ(Worker("w1").all[i].caller_id(), caller_.Binary());
  }
  ExpectValue(a, "r:A");
  ExpectValue(b, "r:B");
  ExpectValue(c, "r:C");
  ExpectValue(d, "r:D");
  ExpectValue(e, "r:E");
}

// 2.
TEST_F(ActorSubmitterTest, CallWaitingForItsArgumentHoldsBackLaterCalls) {
  auto [dep, arg] = OwnedDependency();
  ObjectId a = Call("A", {arg});
  ObjectId b = Call("B");  // ready at once, but made after A
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");
  EXPECT_TRUE(Sent("w1").empty());

  auto value = std::make_shared<StoredObject>();
  value->data = "dep-value";
  store_.Put(dep, value);
  ASSERT_EQ(Sent("w1"), (std::vector<std::string>{"A", "B"}));
  const rpc::TaskSpec& sent_a = Worker("w1").all[0].tasks(0);
  ASSERT_EQ(sent_a.args_size(), 1);
  EXPECT_FALSE(sent_a.args(0).has_ref());
  EXPECT_EQ(sent_a.args(0).value(), "dep-value");
  for (size_t i = 0; i < Worker("w1").all.size(); ++i) {
    EXPECT_EQ(Worker("w1").all[i].push_seq(), int64_t(i));
  }
  while (!Worker("w1").pushes.empty()) Worker("w1").Answer();
  ExpectValue(a, "r:A");
  ExpectValue(b, "r:B");
}

// 3.
TEST_F(ActorSubmitterTest, ResultsAreStoredAndAFailedArgumentFailsOnlyItsCall) {
  ObjectId a = Call("A");
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");
  ASSERT_EQ(Worker("w1").pushes.size(), 1u);
  Worker("w1").Answer();
  ExpectValue(a, "r:A");

  auto [dep, arg] = OwnedDependency();
  ObjectId b = Call("B", {arg});
  ObjectId c = Call("C");
  EXPECT_EQ(Sent("w1"), (std::vector<std::string>{"A"}));
  store_.Put(dep, StoredObject::MakeError(ErrorKind::kTaskError, "boom", "std::runtime_error"));
  ExpectError(b, ErrorKind::kTaskError, "boom");
  if (ObjectPtr failed = Get(b)) {
    EXPECT_EQ(failed->error_type, "std::runtime_error");
  }
  // B never left; C did, right after A.
  EXPECT_EQ(Sent("w1"), (std::vector<std::string>{"A", "C"}));
  EXPECT_EQ(Worker("w1").all.back().push_seq(), 1);
  Worker("w1").Answer();
  ExpectValue(c, "r:C");
}

// 4a.
TEST_F(ActorSubmitterTest, WorkerDeathWithoutRetriesFailsCallsOnceTheGcsReportsTheRestart) {
  ObjectId a = Call("A");
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1", /*max_task_retries=*/0);
  ObjectId b = Call("B");
  ASSERT_EQ(Sent("w1"), (std::vector<std::string>{"A", "B"}));
  while (!Worker("w1").pushes.empty()) Worker("w1").Fail(absl::UnavailableError("socket closed"));
  // The GCS has not seen the death: nobody knows yet whether the actor lives on.
  EXPECT_EQ(Get(a), nullptr);
  EXPECT_EQ(Get(b), nullptr);
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");  // some other change, same incarnation
  EXPECT_EQ(Get(a), nullptr);
  EXPECT_EQ(Get(b), nullptr);

  Gcs(rpc::ActorInfo::RESTARTING, 1, "", 0, "worker killed by SIGKILL");
  ExpectError(a, ErrorKind::kActorDied, "not resent");
  ExpectError(b, ErrorKind::kActorDied, "not resent");
  ExpectError(a, ErrorKind::kActorDied, "worker killed by SIGKILL");
  EXPECT_EQ(Sent("w1"), (std::vector<std::string>{"A", "B"}));  // nothing resent

  // The restarted actor takes new calls, on a new stream. (With none out it is not
  // polled: the call polls again.)
  ObjectId c = Call("C");
  Gcs(rpc::ActorInfo::ALIVE, 1, "w2");
  ASSERT_EQ(Sent("w2"), (std::vector<std::string>{"C"}));
  EXPECT_EQ(Worker("w2").all[0].push_seq(), 0);
  Worker("w2").Answer();
  ExpectValue(c, "r:C");
}

// 4b.
TEST_F(ActorSubmitterTest, WorkerDeathWithRetriesResendsInOrderAheadOfLaterCalls) {
  ObjectId a = Call("A");
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1", /*max_task_retries=*/1);
  ObjectId b = Call("B");
  // Calls that may be resent go one per push.
  ASSERT_EQ(Worker("w1").all.size(), 2u);
  EXPECT_EQ(Methods(Worker("w1").all[0]), std::vector<std::string>{"A"});
  EXPECT_EQ(Methods(Worker("w1").all[1]), std::vector<std::string>{"B"});
  EXPECT_EQ(Worker("w1").all[0].push_seq(), 0);
  EXPECT_EQ(Worker("w1").all[1].push_seq(), 1);

  Worker("w1").Fail(absl::UnavailableError("socket closed"));  // A's push
  EXPECT_EQ(Get(a), nullptr);
  Gcs(rpc::ActorInfo::RESTARTING, 1, "", 1, "worker crashed");
  EXPECT_EQ(Get(a), nullptr);
  ObjectId c = Call("C");  // made after A and B
  Gcs(rpc::ActorInfo::ALIVE, 1, "w2", 1);
  // B's push to the old process is still out: it may come back to be resent, and must
  // keep its place ahead of C.
  EXPECT_TRUE(Sent("w2").empty());
  Worker("w1").Fail(absl::UnavailableError("socket closed"));  // B's push
  ASSERT_EQ(Sent("w2"), (std::vector<std::string>{"A", "B", "C"}));
  FakeWorker& w2 = Worker("w2");
  for (size_t i = 0; i < w2.all.size(); ++i) {
    EXPECT_EQ(w2.all[i].push_seq(), int64_t(i));
    EXPECT_EQ(w2.all[i].caller_id(), caller_.Binary());
    ASSERT_EQ(w2.all[i].tasks_size(), 1);
  }
  EXPECT_EQ(w2.all[0].tasks(0).attempt(), 1);
  EXPECT_EQ(w2.all[1].tasks(0).attempt(), 1);
  EXPECT_EQ(w2.all[2].tasks(0).attempt(), 0);

  // A dies with this process too: its one retry is used up. B and C finish.
  w2.Fail(absl::UnavailableError("socket closed"));
  w2.Answer();
  w2.Answer();
  ExpectValue(b, "r:B");
  ExpectValue(c, "r:C");
  EXPECT_EQ(Get(a), nullptr);
  Gcs(rpc::ActorInfo::RESTARTING, 2, "", 1, "worker crashed again");
  ExpectError(a, ErrorKind::kActorDied, "used up");
}

// 5.
TEST_F(ActorSubmitterTest, UndeliveredCallIsResentAfterTheRestartEvenWithoutRetries) {
  ObjectId a = Call("A");
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1", /*max_task_retries=*/0);
  ASSERT_EQ(Worker("w1").pushes.size(), 1u);
  Worker("w1").Fail(MarkNotDelivered(absl::UnavailableError("connection refused")));
  EXPECT_EQ(Get(a), nullptr);
  Gcs(rpc::ActorInfo::RESTARTING, 1, "", 0, "worker crashed");
  EXPECT_EQ(Get(a), nullptr);  // waits for the new process, does not fail
  Gcs(rpc::ActorInfo::ALIVE, 1, "w2");
  ASSERT_EQ(Sent("w2"), std::vector<std::string>{"A"});
  EXPECT_EQ(Worker("w2").all[0].push_seq(), 0);
  EXPECT_EQ(Worker("w2").all[0].tasks(0).attempt(), 0);  // not a retry: it never ran
  Worker("w2").Answer();
  ExpectValue(a, "r:A");
}

// 6.
TEST_F(ActorSubmitterTest, DeadActorFailsPendingAndLostCallsWithTheCauseAndRefusesMore) {
  ObjectId a = Call("A");  // sent, then lost with the worker
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");
  ASSERT_EQ(Worker("w1").pushes.size(), 1u);
  Worker("w1").Fail(absl::UnavailableError("socket closed"));
  auto [dep, arg] = OwnedDependency();
  ObjectId b = Call("B", {arg});  // waits for its argument
  ObjectId c = Call("C");         // waits behind B
  EXPECT_EQ(Sent("w1"), std::vector<std::string>{"A"});

  const std::string cause = "the actor's process exited with code 3";
  Gcs(rpc::ActorInfo::DEAD, 0, "", 0, cause);
  ExpectError(a, ErrorKind::kActorDied, cause);
  ExpectError(c, ErrorKind::kActorDied, cause);
  EXPECT_EQ(Get(b), nullptr);  // still waiting for its argument
  auto value = std::make_shared<StoredObject>();
  value->data = "dep-value";
  store_.Put(dep, value);
  ExpectError(b, ErrorKind::kActorDied, cause);
  EXPECT_EQ(Sent("w1"), std::vector<std::string>{"A"});  // nothing else left
  EXPECT_EQ(gcs_.NumParked(), 0u);                        // no more polling
  EXPECT_EQ(submitter_->NumActors(), 0u);                 // nor any state kept for it

  TaskId task = TaskId::FromRandom();
  absl::Status refused = submitter_->Submit(actor_, Spec("D", {}, task));
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find(cause), std::string::npos) << refused;
}

// 7.
TEST_F(ActorSubmitterTest, OnlyActorsInUseKeepState) {
  ObjectId a = Call("A");
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");
  Worker("w1").Answer();
  ExpectValue(a, "r:A");
  EXPECT_EQ(submitter_->NumActors(), 1u);  // alive: its stream to the actor goes on
  submitter_->MarkDead(actor_, "killed by this process");
  EXPECT_EQ(submitter_->NumActors(), 0u);
  EXPECT_EQ(submitter_->Submit(actor_, Spec("B", {}, TaskId::FromRandom())).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ActorSubmitterTest, MarkRestartingHoldsCallsUntilTheNextIncarnationIsAlive) {
  ObjectId a = Call("A");
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");
  Worker("w1").Answer();
  ExpectValue(a, "r:A");

  submitter_->MarkRestarting(actor_, 0);  // this process killed incarnation 0
  ObjectId b = Call("B");
  EXPECT_EQ(Sent("w1"), std::vector<std::string>{"A"});
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");  // the GCS has not noticed yet
  EXPECT_EQ(Sent("w1"), std::vector<std::string>{"A"});
  Gcs(rpc::ActorInfo::RESTARTING, 1, "", 0, "killed");
  EXPECT_TRUE(Sent("w2").empty());
  Gcs(rpc::ActorInfo::ALIVE, 1, "w2");
  ASSERT_EQ(Sent("w2"), std::vector<std::string>{"B"});
  EXPECT_EQ(Worker("w2").all[0].push_seq(), 0);
  EXPECT_EQ(Sent("w1"), std::vector<std::string>{"A"});
  Worker("w2").Answer();
  ExpectValue(b, "r:B");
}

// 8.
TEST_F(ActorSubmitterTest, PushErrorThatIsNotAConnectionLossFailsItsCallsAndFillsTheGap) {
  ObjectId a = Call("A");
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");
  ObjectId b = Call("B");
  FakeWorker& w1 = Worker("w1");
  ASSERT_EQ(w1.all.size(), 2u);  // [A] then [B], both out
  w1.Fail(absl::ResourceExhaustedError("message too large"));  // A's push
  ExpectError(a, ErrorKind::kInternal, "message too large");
  // An empty push takes A's place in the worker's sequence.
  ASSERT_EQ(w1.all.size(), 3u);
  const rpc::PushTasksRequest& filler = w1.all[2];
  EXPECT_EQ(filler.caller_id(), caller_.Binary());
  EXPECT_EQ(filler.push_seq(), 0);
  EXPECT_EQ(filler.tasks_size(), 0);

  w1.Answer();  // B's push
  ExpectValue(b, "r:B");
  w1.Answer();  // the filler
  ObjectId c = Call("C");
  ASSERT_EQ(w1.all.size(), 4u);
  EXPECT_EQ(Methods(w1.all[3]), std::vector<std::string>{"C"});
  EXPECT_EQ(w1.all[3].push_seq(), 2);
  w1.Answer();
  ExpectValue(c, "r:C");
}

// 9.
// An actor this process no longer calls is not polled; its next call polls again.
TEST_F(ActorSubmitterTest, AnIdleActorIsNotPolledUntilItIsCalledAgain) {
  ObjectId a = Call("A");
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");
  ASSERT_EQ(gcs_.NumParked(), 1u);  // polled again while A is out
  Worker("w1").Answer();
  ExpectValue(a, "r:A");
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");  // the poll ends (a change, or its wait is over)
  EXPECT_EQ(gcs_.NumParked(), 0u) << "an idle actor is still polled";
  ObjectId b = Call("B");
  EXPECT_EQ(gcs_.NumParked(), 1u);
  EXPECT_EQ(Sent("w1"), (std::vector<std::string>{"A", "B"}));
  Worker("w1").Answer();
  ExpectValue(b, "r:B");
}

TEST_F(ActorSubmitterTest, ShutdownFailsWaitingCallsAndCancelsThePoll) {
  ObjectId a = Call("A");
  ObjectId b = Call("B");
  auto [dep, arg] = OwnedDependency();
  ObjectId c = Call("C", {arg});
  ASSERT_EQ(gcs_.NumParked(), 1u);

  submitter_->Shutdown();
  ExpectError(a, ErrorKind::kInternal, "shutting down");
  ExpectError(b, ErrorKind::kInternal, "shutting down");
  EXPECT_EQ(gcs_.Cancels(), 1);
  EXPECT_EQ(gcs_.NumParked(), 0u);
  EXPECT_EQ(gcs_.Requests().size(), 1u);  // the cancelled poll is not renewed
  auto value = std::make_shared<StoredObject>();
  value->data = "dep-value";
  store_.Put(dep, value);
  ExpectError(c, ErrorKind::kInternal, "shutting down");
  EXPECT_TRUE(workers_.empty());
  EXPECT_TRUE(submitter_->WaitForCallbacks(std::chrono::seconds(1)));

  TaskId task = TaskId::FromRandom();
  EXPECT_FALSE(submitter_->Submit(actor_, Spec("D", {}, task)).ok());
}

class ActorSubmitterResendTest : public ActorSubmitterTest {
 protected:
  int ResendAfterMs() override { return 1; }
  /// Waits (hang guard) until `endpoint` has `n` pushes unanswered.
  bool PushesOut(const std::string& endpoint, size_t n) {
    for (int i = 0; i < 5000 && Worker(endpoint).Unanswered() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return Worker(endpoint).Unanswered() == n;
  }
};

// A push lost while the GCS says the actor lives (a dropped request, a lost reply, a
// broken connection) is sent again unchanged: same stream position, so the worker runs it
// once, or answers with the reply it kept.
TEST_F(ActorSubmitterResendTest, ALostPushIsSentAgainUnchangedUntilAnswered) {
  ObjectId a = Call("A");
  ObjectId b = Call("B");
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");
  ASSERT_TRUE(PushesOut("w1", 1));
  EXPECT_EQ(Worker("w1").all[0].push_seq(), 0);
  EXPECT_EQ(Worker("w1").all[0].acked_push_seq(), 0);
  Worker("w1").Fail(absl::UnavailableError("the reply was lost"));
  ASSERT_TRUE(PushesOut("w1", 1));
  Worker("w1").Fail(rpc::MarkNotDelivered(absl::UnavailableError("refused")));
  ASSERT_TRUE(PushesOut("w1", 1));
  ASSERT_EQ(Worker("w1").all.size(), 3u);
  for (const auto& push : Worker("w1").all) {
    EXPECT_EQ(push.push_seq(), 0);
    EXPECT_EQ(Methods(push), (std::vector<std::string>{"A", "B"}));
  }
  EXPECT_EQ(Get(a), nullptr);
  Worker("w1").Answer();
  ExpectValue(a, "r:A");
  ExpectValue(b, "r:B");
  // The next push says the worker may forget the first one's reply.
  ObjectId c = Call("C");
  ASSERT_TRUE(PushesOut("w1", 1));
  EXPECT_EQ(Worker("w1").all.back().push_seq(), 1);
  EXPECT_EQ(Worker("w1").all.back().acked_push_seq(), 1);
  Worker("w1").Answer();
  ExpectValue(c, "r:C");
}

// Resending stops once the GCS reports what happened: the calls then follow the restart
// rules (here: not resent, max_task_retries=0), and a late reply from the old worker is
// not taken for them.
TEST_F(ActorSubmitterResendTest, ResendingStopsWhenTheGcsReportsARestart) {
  ObjectId a = Call("A");
  Gcs(rpc::ActorInfo::ALIVE, 0, "w1");
  ASSERT_TRUE(PushesOut("w1", 1));
  Worker("w1").Fail(absl::UnavailableError("socket closed"));
  ASSERT_TRUE(PushesOut("w1", 1));  // sent again, unanswered yet
  Gcs(rpc::ActorInfo::RESTARTING, 1, "", 0, "worker killed by SIGKILL");
  ExpectError(a, ErrorKind::kActorDied, "not resent");
  size_t sent = Worker("w1").all.size();
  Worker("w1").Answer();  // too late: settled
  ExpectError(a, ErrorKind::kActorDied, "worker killed by SIGKILL");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(Worker("w1").all.size(), sent);  // and nothing more is sent there
}

}  // namespace
}  // namespace lumen::core
