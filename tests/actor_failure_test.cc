// Actors that fail: Kill, throwing methods and factories, crashed processes, restarts,
// task retries, ExitActor, and actors whose owner dies.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "lumen/lumen.h"
#include "test_util.h"

namespace {

using lumen::test::AttemptsIn;
using lumen::test::CountAttempt;
using lumen::test::TempPath;

}  // namespace

class Counter {
 public:
  explicit Counter(int start) : n_(start) {}
  static Counter* Create(int start) { return new Counter(start); }
  static Counter* CreateFailing(std::string message) { throw std::runtime_error(message); }
  static Counter* CreateAndExit() { lumen::ExitActor(); }
  int Add(int x) { return n_ += x; }
  int Get() const { return n_; }
  int Pid() const { return getpid(); }
  bool Restarted() const { return lumen::WasCurrentActorRestarted(); }
  int Fail(std::string message) { throw std::invalid_argument(message); }
  int SleepMs(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  }
  // Records the attempt in `path`; the first attempt then sleeps `ms`. Returns the attempt.
  int SleepOnFirstAttempt(std::string path, int ms) {
    int attempt = CountAttempt(path);
    if (attempt == 1) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return attempt;
  }
  void Exit() { lumen::ExitActor(); }

 private:
  int n_;
};
LUMEN_REMOTE(Counter::Create, Counter::CreateFailing, Counter::CreateAndExit, &Counter::Add,
             &Counter::Get, &Counter::Pid,
             &Counter::Restarted, &Counter::Fail, &Counter::SleepMs, &Counter::SleepOnFirstAttempt,
             &Counter::Exit);

// Creates an actor owned by this task's worker and a detached one, makes sure both are
// alive, and returns their handles with this worker's pid.
std::tuple<lumen::ActorHandle<Counter>, lumen::ActorHandle<Counter>, int> CreateOwnedAndDetached() {
  lumen::ActorHandle<Counter> owned = lumen::Actor(Counter::Create).Remote(0);
  lumen::ActorHandle<Counter> detached =
      lumen::Actor(Counter::Create).SetLifetime(lumen::ActorLifetime::kDetached).Remote(0);
  lumen::Get(owned.Task(&Counter::Add).Remote(1));
  lumen::Get(detached.Task(&Counter::Add).Remote(1));
  return {owned, detached, int(getpid())};
}
LUMEN_REMOTE(CreateOwnedAndDetached);

namespace {

// A hang guard for every Get: a broken runtime fails the test instead of stalling it.
constexpr std::chrono::seconds kGuard(60);

template <typename T>
T Value(const lumen::ObjectRef<T>& ref) {
  return *lumen::Get(ref, kGuard);
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return text;
}

// Case-insensitive: does `text` contain `word`?
bool Mentions(const std::string& text, const std::string& word) {
  return Lower(text).find(Lower(word)) != std::string::npos;
}

// Runs `call` (a Remote, usually followed by a Get) and returns what() of the
// ActorDiedError it throws; records a failure and returns "" when it throws none.
template <typename F>
std::string DiedMessage(F&& call) {
  try {
    call();
  } catch (const lumen::ActorDiedError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected ActorDiedError";
  return "";
}

// Every test checks that Shutdown leaves no worker process behind, actors' included.
class ActorFailureTest : public lumen::test::ClusterTest {
 protected:
  void TearDown() override {
    ClusterTest::TearDown();
    std::vector<int> left = lumen::test::WaitForNoChildren();
    EXPECT_TRUE(left.empty()) << "processes left after Shutdown: " << lumen::test::JoinPids(left);
  }
};

TEST_F(ActorFailureTest, KillFailsPendingAndLaterCalls) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).Remote(0);
  int pid = Value(c.Task(&Counter::Pid).Remote());
  lumen::ObjectRef<int> running = c.Task(&Counter::SleepMs).Remote(20000);
  lumen::ObjectRef<int> queued = c.Task(&Counter::Add).Remote(1);
  lumen::ActorHandle<Counter> copy = c;
  c.Kill();

  DiedMessage([&] { lumen::Get(running, kGuard); });
  DiedMessage([&] { lumen::Get(queued, kGuard); });
  // Kill is synchronous: from now on Remote itself throws.
  try {
    c.Task(&Counter::Add).Remote(1);
    ADD_FAILURE() << "Remote on a killed actor did not throw";
  } catch (const lumen::ActorDiedError& e) {
    EXPECT_TRUE(Mentions(e.what(), "kill")) << e.what();
  }
  EXPECT_THROW(copy.Task(&Counter::Get).Remote(), lumen::ActorDiedError);
  EXPECT_TRUE(lumen::test::WaitProcessGone(pid));
}

TEST_F(ActorFailureTest, ThrowingMethodIsTaskErrorAndTheActorLivesOn) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).Remote(0);
  EXPECT_EQ(Value(c.Task(&Counter::Add).Remote(5)), 5);
  lumen::ObjectRef<int> failed = c.Task(&Counter::Fail).Remote(std::string("bad input"));
  try {
    lumen::Get(failed, kGuard);
    ADD_FAILURE() << "expected TaskError";
  } catch (const lumen::TaskError& e) {
    EXPECT_NE(std::string(e.what()).find("bad input"), std::string::npos) << e.what();
    EXPECT_NE(e.TypeName().find("invalid_argument"), std::string::npos) << e.TypeName();
  }
  EXPECT_EQ(Value(c.Task(&Counter::Add).Remote(1)), 6);  // state kept
}

TEST_F(ActorFailureTest, ThrowingFactoryIsActorDiedErrorWithTheMessage) {
  lumen::ActorHandle<Counter> c =
      lumen::Actor(Counter::CreateFailing).Remote(std::string("factory exploded"));
  std::string first = DiedMessage([&] { lumen::Get(c.Task(&Counter::Get).Remote(), kGuard); });
  EXPECT_TRUE(Mentions(first, "factory")) << first;
  EXPECT_NE(first.find("factory exploded"), std::string::npos) << first;
  // Every later call fails the same way.
  std::string later = DiedMessage([&] { lumen::Get(c.Task(&Counter::Add).Remote(1), kGuard); });
  EXPECT_NE(later.find("factory exploded"), std::string::npos) << later;
}

TEST_F(ActorFailureTest, ExitActorInTheFactoryEndsItWithoutRestart) {
  lumen::ActorHandle<Counter> c =
      lumen::Actor(Counter::CreateAndExit).SetMaxRestarts(-1).Remote();
  std::string message = DiedMessage([&] { lumen::Get(c.Task(&Counter::Get).Remote(), kGuard); });
  EXPECT_TRUE(Mentions(message, "ExitActor")) << message;
  EXPECT_THROW(lumen::Get(c.Task(&Counter::Get).Remote(), kGuard), lumen::ActorDiedError);
}

TEST_F(ActorFailureTest, KilledProcessRestartsWithFreshState) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).SetMaxRestarts(1).Remote(100);
  EXPECT_EQ(Value(c.Task(&Counter::Add).Remote(5)), 105);
  EXPECT_FALSE(Value(c.Task(&Counter::Restarted).Remote()));
  const int first = Value(c.Task(&Counter::Pid).Remote());

  ASSERT_EQ(kill(first, SIGKILL), 0);
  ASSERT_TRUE(lumen::test::WaitProcessGone(first));
  // Calls run on a new process, on state the factory made again. A call sent before this
  // process noticed the lost connection may have reached the dying worker, so without
  // SetMaxTaskRetries it fails rather than risk running twice (at most once); calls made
  // once the crash is known wait for the restart.
  int value = -1;
  ASSERT_TRUE(lumen::test::WaitUntil([&] {
    try {
      value = Value(c.Task(&Counter::Get).Remote());
      return true;
    } catch (const lumen::ActorDiedError& e) {
      EXPECT_TRUE(Mentions(e.what(), "not resent")) << e.what();
      return false;
    }
  }));
  EXPECT_EQ(value, 100);
  const int second = Value(c.Task(&Counter::Pid).Remote());
  EXPECT_NE(second, first);
  EXPECT_TRUE(Value(c.Task(&Counter::Restarted).Remote()));
  EXPECT_EQ(Value(c.Task(&Counter::Add).Remote(1)), 101);

  // No restart left: the second crash ends it, and the error says how it died.
  ASSERT_EQ(kill(second, SIGKILL), 0);
  ASSERT_TRUE(lumen::test::WaitProcessGone(second));
  std::string message = DiedMessage([&] { lumen::Get(c.Task(&Counter::Get).Remote(), kGuard); });
  EXPECT_TRUE(Mentions(message, "signal 9") || Mentions(message, "SIGKILL")) << message;
  EXPECT_THROW(lumen::Get(c.Task(&Counter::Get).Remote(), kGuard), lumen::ActorDiedError);
}

TEST_F(ActorFailureTest, CallInFlightDuringACrashFailsWithoutTaskRetries) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).SetMaxRestarts(1).Remote(0);
  const int pid = Value(c.Task(&Counter::Pid).Remote());
  const std::string path = TempPath("no_retry");
  lumen::ObjectRef<int> call = c.Task(&Counter::SleepOnFirstAttempt).Remote(path, 20000);
  ASSERT_TRUE(lumen::test::WaitUntil([&] { return AttemptsIn(path) == 1; }));  // it runs
  ASSERT_EQ(kill(pid, SIGKILL), 0);

  DiedMessage([&] { lumen::Get(call, kGuard); });
  EXPECT_EQ(AttemptsIn(path), 1);  // not run again
  // The actor itself restarted (max_restarts 1) and takes new calls.
  EXPECT_NE(Value(c.Task(&Counter::Pid).Remote()), pid);
  std::remove(path.c_str());
}

TEST_F(ActorFailureTest, CallInFlightDuringACrashIsRetriedWithTaskRetries) {
  lumen::ActorHandle<Counter> c =
      lumen::Actor(Counter::Create).SetMaxRestarts(1).SetMaxTaskRetries(1).Remote(0);
  const int pid = Value(c.Task(&Counter::Pid).Remote());
  const std::string path = TempPath("retry");
  lumen::ObjectRef<int> call = c.Task(&Counter::SleepOnFirstAttempt).Remote(path, 20000);
  ASSERT_TRUE(lumen::test::WaitUntil([&] { return AttemptsIn(path) == 1; }));
  ASSERT_EQ(kill(pid, SIGKILL), 0);

  EXPECT_EQ(Value(call), 2);  // the second attempt, on the restarted actor
  EXPECT_EQ(AttemptsIn(path), 2);
  EXPECT_NE(Value(c.Task(&Counter::Pid).Remote()), pid);
  std::remove(path.c_str());
}

TEST_F(ActorFailureTest, KillWithRestartRestartsTheActor) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).SetMaxRestarts(1).Remote(10);
  EXPECT_EQ(Value(c.Task(&Counter::Add).Remote(5)), 15);
  const int first = Value(c.Task(&Counter::Pid).Remote());
  c.Kill(/*no_restart=*/false);
  EXPECT_EQ(Value(c.Task(&Counter::Get).Remote()), 10);
  EXPECT_TRUE(Value(c.Task(&Counter::Restarted).Remote()));
  EXPECT_NE(Value(c.Task(&Counter::Pid).Remote()), first);
  EXPECT_TRUE(lumen::test::WaitProcessGone(first));
}

TEST_F(ActorFailureTest, ExitActorEndsItWithoutRestart) {
  // Restarts are allowed, yet an actor that exits on purpose stays dead.
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).SetMaxRestarts(1).Remote(0);
  const int pid = Value(c.Task(&Counter::Pid).Remote());
  lumen::ObjectRef<void> exiting = c.Task(&Counter::Exit).Remote();
  DiedMessage([&] { lumen::Get(exiting, kGuard); });  // the call that ran ExitActor
  std::string later = DiedMessage([&] { lumen::Get(c.Task(&Counter::Get).Remote(), kGuard); });
  EXPECT_TRUE(Mentions(later, "exit")) << later;
  EXPECT_TRUE(lumen::test::WaitProcessGone(pid));
}

TEST_F(ActorFailureTest, ActorDiesWithItsOwnerUnlessDetached) {
  std::tuple<lumen::ActorHandle<Counter>, lumen::ActorHandle<Counter>, int> created =
      Value(lumen::Task(CreateOwnedAndDetached).Remote());
  lumen::ActorHandle<Counter> owned = std::get<0>(created);
  lumen::ActorHandle<Counter> detached = std::get<1>(created);
  const int creator = std::get<2>(created);
  const int owned_pid = Value(owned.Task(&Counter::Pid).Remote());
  const int detached_pid = Value(detached.Task(&Counter::Pid).Remote());

  ASSERT_EQ(kill(creator, SIGKILL), 0);
  // The owned actor answers until its owner's death is known, then fails for good.
  std::string message;
  ASSERT_TRUE(lumen::test::WaitUntil(
      [&] {
        try {
          lumen::Get(owned.Task(&Counter::Add).Remote(1), kGuard);
          return false;
        } catch (const lumen::ActorDiedError& e) {
          message = e.what();
          return true;
        }
      },
      60));
  EXPECT_TRUE(Mentions(message, "owner")) << message;
  EXPECT_TRUE(lumen::test::WaitProcessGone(owned_pid));

  // The detached actor, made by the same worker, goes on in the same process.
  EXPECT_EQ(Value(detached.Task(&Counter::Add).Remote(1)), 2);
  EXPECT_EQ(Value(detached.Task(&Counter::Pid).Remote()), detached_pid);
}

}  // namespace
