// The owner's task path against a fake raylet and fake workers: leases, batches,
// retries and argument resolution, without processes or sockets.
#include "core_worker/task_submitter.h"

#include <gtest/gtest.h>

#include <deque>
#include <mutex>
#include <thread>

namespace lumen::core {
namespace {

class FakeRaylet : public RayletClient {
 public:
  void RequestWorkerLease(rpc::RequestWorkerLeaseRequest request,
                          ReplyCallback<rpc::RequestWorkerLeaseReply> callback) override {
    std::lock_guard<std::mutex> lock(mutex_);
    lease_requests.push_back(std::move(callback));
  }
  void ReturnWorkerLease(rpc::ReturnWorkerLeaseRequest request,
                         ReplyCallback<rpc::ReturnWorkerLeaseReply> callback) override {
    std::lock_guard<std::mutex> lock(mutex_);
    returned.push_back(request);
    callback(absl::OkStatus(), {});
  }
  void CancelWorkerLeases(rpc::CancelWorkerLeasesRequest request,
                          ReplyCallback<rpc::CancelWorkerLeasesReply> callback) override {
    std::lock_guard<std::mutex> lock(mutex_);
    cancels.push_back(request);
    cancel_callbacks.push_back(std::move(callback));
  }
  /// Does what the raylet does with the cancels received: answers every parked request
  /// `canceled`, then the cancels themselves.
  void AnswerCancels() {
    std::deque<ReplyCallback<rpc::RequestWorkerLeaseReply>> parked;
    std::vector<ReplyCallback<rpc::CancelWorkerLeasesReply>> answers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      parked.swap(lease_requests);
      answers.swap(cancel_callbacks);
    }
    for (auto& callback : parked) {
      rpc::RequestWorkerLeaseReply reply;
      reply.set_canceled(true);
      callback(absl::OkStatus(), std::move(reply));
    }
    for (auto& callback : answers) {
      rpc::CancelWorkerLeasesReply reply;
      reply.set_canceled(int(parked.size()));
      callback(absl::OkStatus(), std::move(reply));
    }
  }
  std::vector<rpc::CancelWorkerLeasesRequest> Cancels() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cancels;
  }
  size_t PendingLeases() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lease_requests.size();
  }
  /// Grants the oldest lease request with a worker at `endpoint`; returns the lease id.
  std::string Grant(const std::string& endpoint) {
    ReplyCallback<rpc::RequestWorkerLeaseReply> callback;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      EXPECT_FALSE(lease_requests.empty());
      if (lease_requests.empty()) return "";
      callback = std::move(lease_requests.front());
      lease_requests.pop_front();
    }
    rpc::RequestWorkerLeaseReply reply;
    reply.set_granted(true);
    std::string lease_id = LeaseId::FromRandom().Binary();
    reply.set_lease_id(lease_id);
    reply.set_worker_endpoint(endpoint);
    reply.set_worker_pid(1234);
    callback(absl::OkStatus(), std::move(reply));
    return lease_id;
  }
  /// Answers every parked request as a stopping raylet does.
  void FailAll() {
    std::deque<ReplyCallback<rpc::RequestWorkerLeaseReply>> parked;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      parked.swap(lease_requests);
    }
    for (auto& callback : parked) callback(absl::UnavailableError("raylet stopping"), {});
  }
  std::vector<rpc::ReturnWorkerLeaseRequest> Returned() {
    std::lock_guard<std::mutex> lock(mutex_);
    return returned;
  }

 private:
  std::mutex mutex_;
  std::deque<ReplyCallback<rpc::RequestWorkerLeaseReply>> lease_requests;
  std::vector<rpc::ReturnWorkerLeaseRequest> returned;
  std::vector<rpc::CancelWorkerLeasesRequest> cancels;
  std::vector<ReplyCallback<rpc::CancelWorkerLeasesReply>> cancel_callbacks;
};

class FakeWorker : public WorkerClient {
 public:
  struct Push {
    rpc::PushTasksRequest request;
    ReplyCallback<rpc::PushTasksReply> callback;
  };
  void PushTasks(rpc::PushTasksRequest request,
                 ReplyCallback<rpc::PushTasksReply> callback) override {
    pushes.push_back(Push{std::move(request), std::move(callback)});
  }
  /// Answers the oldest push: every task returns `value` (or the RPC fails).
  void Answer(const std::string& value, absl::Status status = absl::OkStatus()) {
    ASSERT_FALSE(pushes.empty());
    Push push = std::move(pushes.front());
    pushes.pop_front();
    rpc::PushTasksReply reply;
    for (const auto& task : push.request.tasks()) {
      rpc::TaskResult* result = reply.add_results();
      result->set_task_id(task.task_id());
      result->add_returns()->set_data(value);
    }
    push.callback(status, std::move(reply));
  }
  std::deque<Push> pushes;
};

class TaskSubmitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    timers_.Start();
    submitter_ = std::make_unique<TaskSubmitter>(SubmitterDeps{
        "unix:/owner", JobId::FromInt(1).Binary(), worker_id_, &store_, &refs_,
        &timers_, &raylet_,
        [this](const std::string& endpoint, const std::string&) -> std::shared_ptr<WorkerClient> {
          auto& worker = workers_[endpoint];
          if (!worker) worker = std::make_shared<FakeWorker>();
          return worker;
        },
        [] { return std::string("{CPU: 2}"); },
        /*free_stored=*/nullptr});
  }
  void TearDown() override {
    submitter_->Shutdown();
    raylet_.FailAll();
    raylet_.AnswerCancels();
    EXPECT_TRUE(submitter_->WaitForCallbacks(std::chrono::seconds(5)));
    timers_.Stop();
  }

  /// Submits a task; returns the id of its return object.
  ObjectId Submit(int max_retries = 3, std::vector<rpc::TaskArg> args = {}) {
    rpc::TaskSpec spec;
    TaskId task = TaskId::FromRandom();
    spec.set_task_id(task.Binary());
    spec.set_function_name("F");
    spec.set_num_returns(1);
    (*spec.mutable_resources())["CPU"] = 1;
    for (auto& arg : args) *spec.add_args() = std::move(arg);
    ObjectId id = ObjectId::ForTaskReturn(task, 1);
    refs_.AddOwned(id);
    submitter_->Submit(std::move(spec), max_retries, false);
    return id;
  }
  FakeWorker& Worker(const std::string& endpoint) { return *workers_.at(endpoint); }
  /// Whether `done` became true within a generous hang guard (timers run the idle delays).
  static bool Eventually(const std::function<bool()>& done) {
    auto guard = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() >= guard) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  /// An object owned here, not yet stored, and a by-reference argument naming it.
  std::pair<ObjectId, rpc::TaskArg> OwnedDependency() {
    ObjectId dep = ObjectId::ForPut(TaskId::FromRandom(), 0);
    refs_.AddOwned(dep);
    rpc::TaskArg arg;
    arg.mutable_ref()->set_id(dep.Binary());
    arg.mutable_ref()->set_owner("unix:/owner");
    return {dep, arg};
  }

  WorkerId worker_id_ = WorkerId::FromRandom();
  MemoryStore store_;
  ReferenceCounter refs_{[this](const ReferenceCounter::Freed& f) { store_.Erase(f.id); }};
  EventLoop timers_{"test-timers"};
  FakeRaylet raylet_;
  std::map<std::string, std::shared_ptr<FakeWorker>> workers_;
  std::unique_ptr<TaskSubmitter> submitter_;
};

TEST_F(TaskSubmitterTest, LeasesAWorkerPushesAndStoresTheResult) {
  ObjectId id = Submit();
  ASSERT_EQ(raylet_.PendingLeases(), 1u);
  raylet_.Grant("w1");
  ASSERT_EQ(Worker("w1").pushes.size(), 1u);
  EXPECT_EQ(Worker("w1").pushes[0].request.tasks_size(), 1);
  Worker("w1").Answer("value");
  ObjectPtr object = store_.GetIfReady(id);
  ASSERT_NE(object, nullptr);
  EXPECT_EQ(object->data, "value");
}

TEST_F(TaskSubmitterTest, WorkerDeathRetriesThenFailsWithWorkerCrashed) {
  ObjectId id = Submit(/*max_retries=*/1);
  raylet_.Grant("w1");
  Worker("w1").Answer("", absl::UnavailableError("socket closed"));
  // The failed worker's lease goes back marked failed; the task asks for a new lease.
  ASSERT_EQ(raylet_.Returned().size(), 1u);
  EXPECT_TRUE(raylet_.Returned()[0].worker_failed());
  EXPECT_EQ(store_.GetIfReady(id), nullptr);
  ASSERT_GE(raylet_.PendingLeases(), 1u);
  raylet_.Grant("w2");
  ASSERT_EQ(Worker("w2").pushes.size(), 1u);
  EXPECT_EQ(Worker("w2").pushes[0].request.tasks(0).attempt(), 1);
  Worker("w2").Answer("", absl::UnavailableError("socket closed"));
  ObjectPtr object = store_.GetIfReady(id);
  ASSERT_NE(object, nullptr);
  EXPECT_EQ(object->error, ErrorKind::kWorkerCrashed);
  EXPECT_NE(object->error_message.find("no retries left"), std::string::npos);
}

// A process that ran tasks of many resource shapes keeps state only for those in use.
TEST_F(TaskSubmitterTest, ScheduleKeysOfShapesNoLongerInUseAreForgotten) {
  std::vector<ObjectId> ids;
  for (int shape = 1; shape <= 20; ++shape) {
    rpc::TaskSpec spec;
    TaskId task = TaskId::FromRandom();
    spec.set_task_id(task.Binary());
    spec.set_function_name("F");
    spec.set_num_returns(1);
    (*spec.mutable_resources())["CPU"] = shape;
    ids.push_back(ObjectId::ForTaskReturn(task, 1));
    refs_.AddOwned(ids.back());
    submitter_->Submit(std::move(spec), 0, false);
  }
  EXPECT_EQ(submitter_->NumKeys(), 20u);
  for (int i = 0; i < 20; ++i) raylet_.Grant("w" + std::to_string(i));
  for (int i = 0; i < 20; ++i) Worker("w" + std::to_string(i)).Answer("x");
  for (const ObjectId& id : ids) EXPECT_NE(store_.GetIfReady(id), nullptr);
  EXPECT_TRUE(Eventually([this] { return submitter_->NumKeys() == 0; }))
      << submitter_->NumKeys() << " keys kept after every lease went back";
}

TEST_F(TaskSubmitterTest, CancelledQueuedTaskEndsAtOnceAndIsNeverPushed) {
  ObjectId id = Submit();
  ASSERT_TRUE(submitter_->Cancel(id.Task(), /*force=*/false).ok());
  ObjectPtr object = store_.GetIfReady(id);
  ASSERT_NE(object, nullptr);
  EXPECT_EQ(object->error, ErrorKind::kTaskCancelled);
  EXPECT_EQ(submitter_->Cancel(id.Task(), false).code(), absl::StatusCode::kNotFound)
      << "a finished task is not pending any more";
  raylet_.Grant("w1");  // the lease asked for before the cancel goes back unused
  EXPECT_EQ(workers_.count("w1"), 0u) << "a worker was contacted";
  ASSERT_EQ(raylet_.Returned().size(), 1u);
}

TEST_F(TaskSubmitterTest, BatchesSpreadTheQueueAndPipelineTwoDeep) {
  std::vector<ObjectId> ids;
  for (int i = 0; i < 250; ++i) ids.push_back(Submit());
  raylet_.Grant("w1");
  FakeWorker& worker = Worker("w1");
  // Two batches in flight, none larger than the cap.
  ASSERT_EQ(worker.pushes.size(), 2u);
  int pushed = 0;
  for (const auto& push : worker.pushes) {
    EXPECT_LE(push.request.tasks_size(), TaskSubmitter::kMaxBatch);
    pushed += push.request.tasks_size();
  }
  EXPECT_LT(pushed, 250);  // the rest waits for other leases or for these to finish
  while (!worker.pushes.empty()) worker.Answer("x");
  for (const ObjectId& id : ids) EXPECT_NE(store_.GetIfReady(id), nullptr);
}

TEST_F(TaskSubmitterTest, ParkedLeaseRequestsAreCanceledWhenTheQueueDrains) {
  std::vector<ObjectId> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Submit());
  ASSERT_EQ(raylet_.PendingLeases(), 3u);  // one request per queued task, up to the cap
  raylet_.Grant("w1");
  while (!Worker("w1").pushes.empty()) Worker("w1").Answer("x");
  for (const ObjectId& id : ids) EXPECT_NE(store_.GetIfReady(id), nullptr);

  // w1 ran all three: the two requests still parked are canceled, once, when the owner
  // stayed idle for the lease idle delay.
  ASSERT_TRUE(Eventually([&] { return !raylet_.Cancels().empty(); }));
  ASSERT_EQ(raylet_.Cancels().size(), 1u);
  EXPECT_EQ(raylet_.Cancels()[0].requester_worker_id(), worker_id_.Binary());
  EXPECT_EQ(raylet_.Cancels()[0].resources().at("CPU"), 1);
  ASSERT_EQ(raylet_.PendingLeases(), 2u);

  // One is granted before the cancel reaches the raylet: nothing to run, so the worker
  // goes straight back, unused.
  std::string late = raylet_.Grant("w2");
  EXPECT_EQ(workers_.count("w2"), 0u);
  bool returned = false;
  for (const auto& request : raylet_.Returned()) {
    if (request.lease_id() == late) returned = !request.worker_failed();
  }
  EXPECT_TRUE(returned);
  EXPECT_EQ(raylet_.Cancels().size(), 1u);  // still in flight: not sent again

  raylet_.AnswerCancels();
  EXPECT_EQ(raylet_.PendingLeases(), 0u);  // canceled, and nobody asks again
}

TEST_F(TaskSubmitterTest, TaskSubmittedWhileACancelIsInFlightGetsALease) {
  ObjectId first = Submit();
  ObjectId second = Submit();
  std::string w1 = raylet_.Grant("w1");
  Worker("w1").Answer("x");
  Worker("w1").Answer("x");  // both ran on w1; nothing queued or running any more
  // After the idle delay w1 goes back and the parked request is canceled.
  ASSERT_TRUE(Eventually([&] {
    for (const auto& request : raylet_.Returned()) {
      if (request.lease_id() == w1) return true;
    }
    return false;
  }));
  ASSERT_TRUE(Eventually([&] { return !raylet_.Cancels().empty(); }));
  ASSERT_EQ(raylet_.PendingLeases(), 1u);

  // A third task comes; the one parked request it counts on is then canceled.
  ObjectId third = Submit();
  EXPECT_EQ(raylet_.PendingLeases(), 1u);
  raylet_.AnswerCancels();
  ASSERT_EQ(raylet_.PendingLeases(), 1u);  // asked again after the cancel
  raylet_.Grant("w2");
  Worker("w2").Answer("y");
  for (const ObjectId& id : {first, second}) EXPECT_EQ(store_.GetIfReady(id)->data, "x");
  ASSERT_NE(store_.GetIfReady(third), nullptr);
  EXPECT_EQ(store_.GetIfReady(third)->data, "y");
}

TEST_F(TaskSubmitterTest, WaitsForLocalDependenciesAndInlinesThem) {
  auto [dep, arg] = OwnedDependency();
  ObjectId id = Submit(3, {arg});
  EXPECT_EQ(raylet_.PendingLeases(), 0u);  // nothing to run until the argument exists
  auto value = std::make_shared<StoredObject>();
  value->data = "dep-value";
  store_.Put(dep, value);
  ASSERT_EQ(raylet_.PendingLeases(), 1u);
  raylet_.Grant("w1");
  const rpc::TaskArg& sent = Worker("w1").pushes[0].request.tasks(0).args(0);
  EXPECT_FALSE(sent.has_ref());
  EXPECT_EQ(sent.value(), "dep-value");
  Worker("w1").Answer("done");
  EXPECT_NE(store_.GetIfReady(id), nullptr);
}

TEST_F(TaskSubmitterTest, FailedDependencyFailsTheTaskWithoutRunningIt) {
  auto [dep, arg] = OwnedDependency();
  ObjectId id = Submit(3, {arg});
  store_.Put(dep, StoredObject::MakeError(ErrorKind::kTaskError, "boom", "std::runtime_error"));
  EXPECT_EQ(raylet_.PendingLeases(), 0u);
  ObjectPtr object = store_.GetIfReady(id);
  ASSERT_NE(object, nullptr);
  EXPECT_EQ(object->error, ErrorKind::kTaskError);
  EXPECT_EQ(object->error_message, "boom");
}

TEST_F(TaskSubmitterTest, CrashedBatchIsRerunOneByOneAndOnlyTheCulpritIsCharged) {
  std::vector<ObjectId> ids;
  for (int i = 0; i < 60; ++i) ids.push_back(Submit(/*max_retries=*/1));
  raylet_.Grant("w1");
  ASSERT_GE(Worker("w1").pushes.size(), 1u);
  ASSERT_GT(Worker("w1").pushes[0].request.tasks_size(), 1);
  while (!Worker("w1").pushes.empty()) Worker("w1").Answer("", absl::UnavailableError("gone"));
  // Nobody failed yet: none of them was known to be the culprit.
  for (const ObjectId& id : ids) EXPECT_EQ(store_.GetIfReady(id), nullptr);
  // They come back one per batch; the first one kills its worker, the others succeed.
  raylet_.Grant("w2");
  FakeWorker& w2 = Worker("w2");
  ASSERT_GE(w2.pushes.size(), 1u);
  EXPECT_EQ(w2.pushes[0].request.tasks_size(), 1);  // isolated: one task per batch
  std::string culprit = w2.pushes[0].request.tasks(0).task_id();
  while (!w2.pushes.empty()) w2.Answer("", absl::UnavailableError("gone again"));
  // The culprit used its one retry there; it kills its worker again, the others run.
  int culprit_runs = 0;
  for (int n = 3; raylet_.PendingLeases() > 0; ++n) {
    std::string endpoint = "w" + std::to_string(n);
    raylet_.Grant(endpoint);
    if (workers_.count(endpoint) == 0) continue;  // the queue had drained: returned unused
    FakeWorker& worker = Worker(endpoint);
    while (!worker.pushes.empty()) {
      bool is_culprit = worker.pushes.front().request.tasks(0).task_id() == culprit;
      culprit_runs += is_culprit;
      worker.Answer("ok", is_culprit ? absl::UnavailableError("gone a third time")
                                     : absl::OkStatus());
    }
  }
  EXPECT_EQ(culprit_runs, 1);
  int crashed = 0, ok = 0;
  for (const ObjectId& id : ids) {
    ObjectPtr object = store_.GetIfReady(id);
    ASSERT_NE(object, nullptr);
    if (object->error == ErrorKind::kWorkerCrashed) {
      ++crashed;
      EXPECT_EQ(id.Task().Binary(), culprit);
    } else {
      ++ok;
      EXPECT_EQ(object->data, "ok");
    }
  }
  EXPECT_EQ(crashed, 1);
  EXPECT_EQ(ok, 59);
}

TEST_F(TaskSubmitterTest, TasksWithoutRetriesGoAloneAndNeverRunAgainOnceTheyMayHaveRun) {
  std::vector<ObjectId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Submit(/*max_retries=*/0));
  raylet_.Grant("w1");
  FakeWorker& w1 = Worker("w1");
  // One task per push, one push in flight: a worker that dies was running that task.
  ASSERT_EQ(w1.pushes.size(), 1u);
  EXPECT_EQ(w1.pushes[0].request.tasks_size(), 1);
  w1.Answer("ok");
  ASSERT_EQ(w1.pushes.size(), 1u);
  // Its reply is lost (the connection broke): it may have run, so it is not run again.
  w1.Answer("", absl::UnavailableError("the reply was lost"));
  ObjectPtr crashed = store_.GetIfReady(ids[1]);
  ASSERT_NE(crashed, nullptr);
  EXPECT_EQ(crashed->error, ErrorKind::kWorkerCrashed);
  EXPECT_NE(crashed->error_message.find("the reply was lost"), std::string::npos)
      << crashed->error_message;
  // A push that surely never left is sent again: the task had not run.
  raylet_.Grant("w2");
  FakeWorker& w2 = Worker("w2");
  ASSERT_EQ(w2.pushes.size(), 1u);
  std::string undelivered = w2.pushes[0].request.tasks(0).task_id();
  w2.Answer("", rpc::MarkNotDelivered(absl::UnavailableError("refused")));
  raylet_.Grant("w3");
  FakeWorker& w3 = Worker("w3");
  ASSERT_EQ(w3.pushes.size(), 1u);
  EXPECT_EQ(w3.pushes[0].request.tasks(0).task_id(), undelivered);
  while (!w3.pushes.empty()) w3.Answer("ok");
  int ok = 0;
  for (const ObjectId& id : ids) {
    ObjectPtr object = store_.GetIfReady(id);
    ASSERT_NE(object, nullptr);
    ok += !object->IsError();
  }
  EXPECT_EQ(ok, 3);
}

TEST_F(TaskSubmitterTest, RejectedBatchIsResentUncharged) {
  ObjectId id = Submit(/*max_retries=*/0);
  raylet_.Grant("w1");
  FakeWorker::Push push = std::move(Worker("w1").pushes.front());
  Worker("w1").pushes.pop_front();
  rpc::PushTasksReply rejected;
  rejected.set_rejected(true);
  push.callback(absl::OkStatus(), std::move(rejected));
  EXPECT_EQ(store_.GetIfReady(id), nullptr);
  EXPECT_TRUE(raylet_.Returned().empty());  // the worker is fine, only busy
  ASSERT_EQ(Worker("w1").pushes.size(), 1u);  // sent again (or elsewhere), same attempt
  EXPECT_EQ(Worker("w1").pushes[0].request.tasks(0).attempt(), 0);
  Worker("w1").Answer("done");
  ASSERT_NE(store_.GetIfReady(id), nullptr);
  EXPECT_EQ(store_.GetIfReady(id)->data, "done");
}

TEST_F(TaskSubmitterTest, PushErrorThatIsNotACrashFailsTheTasksNotTheWorker) {
  ObjectId id = Submit(/*max_retries=*/3);
  raylet_.Grant("w1");
  Worker("w1").Answer("", absl::ResourceExhaustedError("message too large"));
  ObjectPtr object = store_.GetIfReady(id);
  ASSERT_NE(object, nullptr);
  EXPECT_EQ(object->error, ErrorKind::kInternal);
  EXPECT_NE(object->error_message.find("message too large"), std::string::npos);
  for (const auto& returned : raylet_.Returned()) EXPECT_FALSE(returned.worker_failed());
}

}  // namespace
}  // namespace lumen::core
