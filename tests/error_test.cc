// The typed errors of API.md, as a user meets them.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <thread>

#include "lumen/lumen.h"
#include "test_util.h"

namespace {

class CustomError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using lumen::test::AttemptsIn;
using lumen::test::CountAttempt;
using lumen::test::TempPath;

}  // namespace

int Throws(int) { throw CustomError("something broke"); }
int KillSelfAlways(std::string path) {
  CountAttempt(path);
  raise(SIGKILL);
  return 0;
}
int KillSelfOnce(std::string path) {
  if (CountAttempt(path) == 1) raise(SIGKILL);
  return 42;
}
int ThrowOnce(std::string path) {
  if (CountAttempt(path) == 1) throw std::runtime_error("first attempt fails");
  return 7;
}
int ExitsProcess(int code) { std::_Exit(code); }
int SleepMs(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int Identity(int x) { return x; }
int SpawnSleeperAndDie(int) {
  lumen::Task(SleepMs).Remote(60000);  // leases a second worker for a minute
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  raise(SIGKILL);
  return 0;
}
LUMEN_REMOTE(SpawnSleeperAndDie);
LUMEN_REMOTE(Throws, KillSelfAlways, KillSelfOnce, ThrowOnce, ExitsProcess, SleepMs, Identity);

namespace {

class ErrorTest : public lumen::test::ClusterTest {};

TEST_F(ErrorTest, ThrowingTaskIsTaskErrorWithTypeAndMessage) {
  auto ref = lumen::Task(Throws).Remote(1);
  try {
    lumen::Get(ref);
    FAIL() << "expected TaskError";
  } catch (const lumen::TaskError& e) {
    EXPECT_NE(std::string(e.what()).find("CustomError"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("something broke"), std::string::npos) << e.what();
    EXPECT_NE(e.TypeName().find("CustomError"), std::string::npos);
  }
  // The error propagates to tasks that depend on the failed object.
  EXPECT_THROW(lumen::Get(lumen::Task(Identity).Remote(ref)), lumen::TaskError);
  // The worker survives: the next task works.
  EXPECT_EQ(*lumen::Get(lumen::Task(Identity).Remote(5)), 5);
}

TEST_F(ErrorTest, KilledWorkerIsRetried) {
  std::string path = TempPath("once");
  EXPECT_EQ(*lumen::Get(lumen::Task(KillSelfOnce).Remote(path)), 42);
  EXPECT_EQ(AttemptsIn(path), 2);
  std::remove(path.c_str());
}

TEST_F(ErrorTest, KilledWorkerPastRetriesIsWorkerCrashedError) {
  std::string path = TempPath("always");
  auto ref = lumen::Task(KillSelfAlways).Remote(path);  // default max_retries = 3
  EXPECT_THROW(lumen::Get(ref), lumen::WorkerCrashedError);
  EXPECT_EQ(AttemptsIn(path), 4);
  std::remove(path.c_str());

  std::string none = TempPath("none");
  auto no_retry = lumen::Task(KillSelfAlways).SetMaxRetries(0).Remote(none);
  try {
    lumen::Get(no_retry);
    FAIL() << "expected WorkerCrashedError";
  } catch (const lumen::WorkerCrashedError& e) {
    // Named by its signal, as the raylet saw the process end.
    EXPECT_NE(std::string(e.what()).find("died: killed by signal 9 (Killed)"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(AttemptsIn(none), 1);
  std::remove(none.c_str());
  // The driver and the node keep working.
  EXPECT_EQ(*lumen::Get(lumen::Task(Identity).Remote(3)), 3);
}

TEST_F(ErrorTest, WorkerThatExitsDoesNotTakeTheDriverDown) {
  auto ref = lumen::Task(ExitsProcess).SetMaxRetries(0).Remote(3);
  try {
    lumen::Get(ref);
    FAIL() << "expected WorkerCrashedError";
  } catch (const lumen::WorkerCrashedError& e) {
    EXPECT_NE(std::string(e.what()).find("died: exited with"), std::string::npos) << e.what();
  }
  EXPECT_EQ(*lumen::Get(lumen::Task(Identity).Remote(9)), 9);
}

TEST_F(ErrorTest, LeasesOfADeadOwnerComeBack) {
  EXPECT_THROW(lumen::Get(lumen::Task(SpawnSleeperAndDie).SetMaxRetries(0).Remote(0)),
               lumen::WorkerCrashedError);
  // Its one-minute child is stopped with it, so both CPUs run these side by side.
  auto start = std::chrono::steady_clock::now();
  std::vector<lumen::ObjectRef<int>> refs;
  for (int i = 0; i < 4; ++i) refs.push_back(lumen::Task(SleepMs).Remote(1000));
  lumen::Get(refs, std::chrono::seconds(30));
  EXPECT_LT(lumen::test::SecondsSince(start), 3.5);
}

TEST_F(ErrorTest, RetryExceptionsReRunsThrowingTasks) {
  std::string path = TempPath("throw_once");
  EXPECT_THROW(lumen::Get(lumen::Task(ThrowOnce).Remote(path)), lumen::TaskError);
  std::remove(path.c_str());
  EXPECT_EQ(*lumen::Get(lumen::Task(ThrowOnce).SetRetryExceptions(true).Remote(path)), 7);
  EXPECT_EQ(AttemptsIn(path), 2);
  std::remove(path.c_str());
}

TEST_F(ErrorTest, GetTimeoutError) {
  auto slow = lumen::Task(SleepMs).Remote(3000);
  EXPECT_THROW(lumen::Get(slow, std::chrono::milliseconds(100)), lumen::GetTimeoutError);
  std::vector<lumen::ObjectRef<int>> refs{slow};
  EXPECT_THROW(lumen::Get(refs, std::chrono::milliseconds(100)), lumen::GetTimeoutError);
  EXPECT_EQ(*lumen::Get(slow, std::chrono::seconds(30)), 3000);
}

TEST_F(ErrorTest, BadResourceAmountsAreConfigErrors) {
  EXPECT_NO_THROW(lumen::Task(Identity).SetResource("CPU", 0));  // 0 is no demand (num_cpus=0)
  EXPECT_THROW(lumen::Task(Identity).SetResource("CPU", -1), lumen::ConfigError);
  EXPECT_THROW(lumen::Task(Identity).SetResource("CPU", 1.5), lumen::ConfigError);
  EXPECT_THROW(lumen::Task(Identity).SetResources({{"GPU", 2.5}}), lumen::ConfigError);
  EXPECT_THROW(lumen::Task(Identity).SetMaxRetries(-2), lumen::ConfigError);
  EXPECT_NO_THROW(lumen::Task(Identity).SetResource("CPU", 0.25));
}

TEST_F(ErrorTest, InfeasibleTaskWaitsWithAWarning) {
  testing::internal::CaptureStderr();
  auto ref = lumen::Task(Identity).SetResource("CPU", 64).Remote(1);
  // The warning comes once the demand was infeasible for about a second (a node that
  // just joined may not be in the raylet's view yet).
  EXPECT_THROW(lumen::Get(ref, std::chrono::milliseconds(2500)), lumen::GetTimeoutError);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("{CPU: 64}"), std::string::npos) << err;
  EXPECT_NE(err.find("{CPU: 2"), std::string::npos) << err;  // the cluster's capacity
  EXPECT_NE(err.find("127.0.0.1 {CPU: 2"), std::string::npos) << err;  // each node's
  // Other work is not held up by it.
  EXPECT_EQ(*lumen::Get(lumen::Task(Identity).Remote(4)), 4);
  auto custom = lumen::Task(Identity).SetResource("accelerator", 1).Remote(1);
  EXPECT_THROW(lumen::Get(custom, std::chrono::milliseconds(200)), lumen::GetTimeoutError);
}

TEST_F(ErrorTest, NilRefIsObjectLost) {
  lumen::ObjectRef<int> nil;
  EXPECT_TRUE(nil.IsNil());
  EXPECT_THROW(lumen::Get(nil), lumen::ObjectLostError);
}

}  // namespace
