// Actors as a user writes them: creation, calls, ordering, concurrency, handles passed
// around, named actors, runtime context. Failures, restarts and lifetimes are in
// actor_failure_test.cc.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lumen/lumen.h"
#include "test_util.h"

class Counter {
 public:
  explicit Counter(int start) : n_(start) {}
  static Counter* Create(int start) { return new Counter(start); }
  // Takes a while, so that calls are submitted before the actor is alive.
  static Counter* CreateSlowly(int start, int delay_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    return new Counter(start);
  }
  int Add(int x) { return n_ += x; }
  int Get() const { return n_; }
  void Set(int n) { n_ = n; }
  int Pid() const { return getpid(); }
  int Doubled() const noexcept { return 2 * n_; }
  std::string ActorId() const { return lumen::GetRuntimeContext().ActorId(); }

 private:
  int n_;
};
LUMEN_REMOTE(Counter::Create, Counter::CreateSlowly, &Counter::Add, &Counter::Get, &Counter::Set,
             &Counter::Pid, &Counter::ActorId, &Counter::Doubled);

// Records the values it is called with, in the order the calls run.
class Recorder {
 public:
  static Recorder* Create() { return new Recorder(); }
  int Append(int value) {
    values_.push_back(value);
    return int(values_.size()) - 1;
  }
  std::vector<int> Values() const { return values_; }

 private:
  std::vector<int> values_;
};
LUMEN_REMOTE(Recorder::Create, &Recorder::Append, &Recorder::Values);

// A one-shot barrier for `parties` calls. Only calls that run at the same time can meet.
class Barrier {
 public:
  explicit Barrier(int parties) : parties_(parties) {}
  static Barrier* Create(int parties) { return new Barrier(parties); }
  // Arrives, then waits up to timeout_ms for all parties; false when the wait timed out.
  bool Arrive(int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    ++arrived_;
    cv_.notify_all();
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [this] { return arrived_ >= parties_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const int parties_;
  int arrived_ = 0;
};
LUMEN_REMOTE(Barrier::Create, &Barrier::Arrive);

// An actor that holds a handle to another actor, and takes handles as arguments.
class Caller {
 public:
  explicit Caller(lumen::ActorHandle<Counter> counter) : counter_(std::move(counter)) {}
  static Caller* Create(lumen::ActorHandle<Counter> counter) {
    return new Caller(std::move(counter));
  }
  int AddToOwn(int x) { return *lumen::Get(counter_.Task(&Counter::Add).Remote(x)); }
  int AddTo(lumen::ActorHandle<Counter> counter, int x) {
    return *lumen::Get(counter.Task(&Counter::Add).Remote(x));
  }

 private:
  lumen::ActorHandle<Counter> counter_;
};
LUMEN_REMOTE(Caller::Create, &Caller::AddToOwn, &Caller::AddTo);

int AddThrough(lumen::ActorHandle<Counter> counter, int x) {
  return *lumen::Get(counter.Task(&Counter::Add).Remote(x));
}
lumen::ActorHandle<Counter> Echo(lumen::ActorHandle<Counter> counter) { return counter; }
// Detached: the actor must outlive this task's worker, which may exit when idle.
lumen::ActorHandle<Counter> CreateDetachedCounter(int start) {
  return lumen::Actor(Counter::Create).SetLifetime(lumen::ActorLifetime::kDetached).Remote(start);
}
// Adds x to every counter; returns the sum of their new values.
int AddToAll(std::vector<lumen::ActorHandle<Counter>> counters, int x) {
  std::vector<lumen::ObjectRef<int>> refs;
  for (auto& counter : counters) refs.push_back(counter.Task(&Counter::Add).Remote(x));
  int sum = 0;
  for (const auto& value : lumen::Get(refs)) sum += *value;
  return sum;
}
// Looks the actor up by name (in `ns`, or the job's namespace when empty) and adds x;
// -1 when there is no such actor.
int AddByName(std::string name, std::string ns, int x) {
  std::optional<lumen::ActorHandle<Counter>> counter =
      ns.empty() ? lumen::GetActor<Counter>(name) : lumen::GetActor<Counter>(name, ns);
  if (!counter) return -1;
  return *lumen::Get(counter->Task(&Counter::Add).Remote(x));
}
// Waits for `after` (by taking it as an argument), sleeps, returns `value`.
int ReadyAfter(int after, int value, int sleep_ms) {
  (void)after;
  std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  return value;
}
int Identity(int x) { return x; }
std::string TaskActorId() { return lumen::GetRuntimeContext().ActorId(); }
LUMEN_REMOTE(AddThrough, Echo, CreateDetachedCounter, AddToAll, AddByName, ReadyAfter, Identity,
             TaskActorId);

namespace {

// A hang guard for every Get: a broken runtime fails the test instead of stalling it.
constexpr std::chrono::seconds kGuard(60);

template <typename T>
T Value(const lumen::ObjectRef<T>& ref) {
  return *lumen::Get(ref, kGuard);
}

bool IsHex(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isdigit(c) || (c >= 'a' && c <= 'f');
  });
}

// Every test checks that Shutdown leaves no worker process behind, actors' included.
class ActorTest : public lumen::test::ClusterTest {
 protected:
  void TearDown() override {
    ClusterTest::TearDown();
    std::vector<int> left = lumen::test::WaitForNoChildren();
    EXPECT_TRUE(left.empty()) << "processes left after Shutdown: " << lumen::test::JoinPids(left);
  }
};

TEST_F(ActorTest, CreateAndCall) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).Remote(10);
  EXPECT_EQ(Value(c.Task(&Counter::Add).Remote(5)), 15);
  EXPECT_EQ(Value(c.Task(&Counter::Add).Remote(-3)), 12);
  EXPECT_EQ(Value(c.Task(&Counter::Get).Remote()), 12);  // a const method
  lumen::ObjectRef<void> set = c.Task(&Counter::Set).Remote(100);
  EXPECT_EQ(lumen::Get(set, kGuard), nullptr);
  EXPECT_EQ(Value(c.Task(&Counter::Get).SetName("read-counter").Remote()), 100);
  EXPECT_EQ(Value(c.Task(&Counter::Doubled).Remote()), 200);  // a const noexcept method

  // A second actor has its own state, id and process.
  lumen::ActorHandle<Counter> d = lumen::Actor(Counter::Create).Remote(0);
  EXPECT_EQ(Value(d.Task(&Counter::Get).Remote()), 0);
  EXPECT_TRUE(IsHex(c.ID())) << c.ID();
  EXPECT_NE(c.ID(), d.ID());
  int c_pid = Value(c.Task(&Counter::Pid).Remote());
  int d_pid = Value(d.Task(&Counter::Pid).Remote());
  EXPECT_NE(c_pid, d_pid);
  EXPECT_NE(c_pid, getpid());
  EXPECT_EQ(Value(c.Task(&Counter::Pid).Remote()), c_pid);  // the same process every call
}

TEST_F(ActorTest, ArgumentsMayBeObjectRefs) {
  lumen::ObjectRef<int> start = lumen::Task(Identity).Remote(7);
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).Remote(start);
  lumen::ObjectRef<int> two = lumen::Put(2);
  lumen::ObjectRef<int> nine = c.Task(&Counter::Add).Remote(two);
  EXPECT_EQ(Value(c.Task(&Counter::Add).Remote(nine)), 18);  // a call's result as an argument
}

TEST_F(ActorTest, OptionsAreAccepted) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create)
                                      .SetResource("CPU", 1)
                                      .SetMaxRestarts(2)
                                      .SetMaxTaskRetries(1)
                                      .SetMaxConcurrency(1)
                                      .SetLifetime(lumen::ActorLifetime::kNonDetached)
                                      .Remote(1);
  EXPECT_EQ(Value(c.Task(&Counter::Add).Remote(1)), 2);
  lumen::ActorHandle<Counter> d =
      lumen::Actor(Counter::Create).SetResources({{"CPU", 0.5}}).SetMaxRestarts(-1).Remote(3);
  EXPECT_EQ(Value(d.Task(&Counter::Get).Remote()), 3);
}

TEST_F(ActorTest, ActorsHoldNoCpuByDefault) {
  // More actors than CPUs, all alive at once, and tasks still run beside them.
  std::vector<lumen::ActorHandle<Counter>> counters;
  for (int i = 0; i < 5; ++i) counters.push_back(lumen::Actor(Counter::Create).Remote(i));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Value(counters[i].Task(&Counter::Add).Remote(10)), i + 10);
  }
  EXPECT_EQ(Value(lumen::Task(Identity).Remote(4)), 4);
}

TEST_F(ActorTest, CallsBeforeTheActorIsAliveAreQueuedInOrder) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::CreateSlowly).Remote(0, 1000);
  std::vector<lumen::ObjectRef<int>> refs;
  for (int i = 1; i <= 100; ++i) refs.push_back(c.Task(&Counter::Add).Remote(i));
  std::vector<std::shared_ptr<const int>> values = lumen::Get(refs, kGuard);
  ASSERT_EQ(values.size(), 100u);
  int sum = 0;
  for (int i = 1; i <= 100; ++i) {
    sum += i;
    EXPECT_EQ(*values[i - 1], sum) << "call " << i;
  }
}

TEST_F(ActorTest, CallsRunInSubmissionOrderWhenTheirArgumentsAreReadyOutOfOrder) {
  constexpr int kCalls = 10000;
  constexpr int kSlowEvery = 250;  // 40 slow refs, the first ready last
  constexpr int kSlowSleepMs = 40;
  constexpr int kSlow = kCalls / kSlowEvery;

  // A chain of tasks built from the back: slow[k] waits for slow[k + 1], so slow[39]
  // becomes ready first and slow[0] last, about kSlow * 40 ms from now.
  std::vector<lumen::ObjectRef<int>> slow(kSlow);
  lumen::ObjectRef<int> next = lumen::Put(0);
  for (int k = kSlow - 1; k >= 0; --k) {
    slow[k] = lumen::Task(ReadyAfter).Remote(next, k * kSlowEvery, kSlowSleepMs);
    next = slow[k];
  }

  lumen::ActorHandle<Recorder> recorder = lumen::Actor(Recorder::Create).Remote();
  std::vector<lumen::ObjectRef<int>> positions;
  positions.reserve(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    if (i % kSlowEvery == 0) {
      positions.push_back(recorder.Task(&Recorder::Append).Remote(slow[i / kSlowEvery]));
    } else if (i % 7 == 3) {  // ready soon, long before the slow ones
      positions.push_back(recorder.Task(&Recorder::Append).Remote(lumen::Task(Identity).Remote(i)));
    } else if (i % 3 == 1) {  // ready at once
      positions.push_back(recorder.Task(&Recorder::Append).Remote(lumen::Put(i)));
    } else {
      positions.push_back(recorder.Task(&Recorder::Append).Remote(i));
    }
  }

  std::vector<std::shared_ptr<const int>> values = lumen::Get(positions, kGuard);
  ASSERT_EQ(values.size(), size_t(kCalls));
  int misplaced = 0;
  for (int i = 0; i < kCalls; ++i) misplaced += *values[i] != i;
  EXPECT_EQ(misplaced, 0);

  std::vector<int> expected(kCalls);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(Value(recorder.Task(&Recorder::Values).Remote()), expected);
}

TEST_F(ActorTest, MaxConcurrencyRunsCallsAtOnce) {
  constexpr int kParties = 3;
  lumen::ActorHandle<Barrier> barrier =
      lumen::Actor(Barrier::Create).SetMaxConcurrency(kParties).Remote(kParties);
  std::vector<lumen::ObjectRef<bool>> arrivals;
  for (int i = 0; i < kParties; ++i) {
    arrivals.push_back(barrier.Task(&Barrier::Arrive).Remote(10000));
  }
  for (const auto& met : lumen::Get(arrivals, kGuard)) EXPECT_TRUE(*met);
}

TEST_F(ActorTest, DefaultConcurrencyRunsOneCallAtATime) {
  // Two parties, one call at a time: the first waits alone and times out (1 s), and
  // only then does the second run, find both arrived and return at once.
  lumen::ActorHandle<Barrier> barrier = lumen::Actor(Barrier::Create).Remote(2);
  lumen::ObjectRef<bool> first = barrier.Task(&Barrier::Arrive).Remote(1000);
  lumen::ObjectRef<bool> second = barrier.Task(&Barrier::Arrive).Remote(1000);
  EXPECT_FALSE(Value(first));
  EXPECT_TRUE(Value(second));
}

TEST_F(ActorTest, HandlePassedToTasks) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).Remote(0);
  EXPECT_EQ(Value(lumen::Task(AddThrough).Remote(c, 5)), 5);
  std::vector<lumen::ObjectRef<int>> refs;
  for (int i = 0; i < 4; ++i) refs.push_back(lumen::Task(AddThrough).Remote(c, 1));
  lumen::Get(refs, kGuard);
  EXPECT_EQ(Value(c.Task(&Counter::Get).Remote()), 9);  // one actor, one state
}

TEST_F(ActorTest, HandleReturnedFromTasks) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).Remote(0);
  lumen::ActorHandle<Counter> echoed = Value(lumen::Task(Echo).Remote(c));
  EXPECT_EQ(echoed.ID(), c.ID());
  EXPECT_EQ(Value(echoed.Task(&Counter::Add).Remote(3)), 3);
  EXPECT_EQ(Value(c.Task(&Counter::Get).Remote()), 3);

  lumen::ActorHandle<Counter> made = Value(lumen::Task(CreateDetachedCounter).Remote(7));
  EXPECT_EQ(Value(made.Task(&Counter::Add).Remote(1)), 8);
}

TEST_F(ActorTest, HandlesInsideAVector) {
  std::vector<lumen::ActorHandle<Counter>> counters;
  for (int i = 0; i < 3; ++i) counters.push_back(lumen::Actor(Counter::Create).Remote(i));
  EXPECT_EQ(Value(lumen::Task(AddToAll).Remote(counters, 10)), 0 + 1 + 2 + 30);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Value(counters[i].Task(&Counter::Get).Remote()), i + 10);
  }
  lumen::ObjectRef<std::vector<lumen::ActorHandle<Counter>>> stored = lumen::Put(counters);
  std::vector<lumen::ActorHandle<Counter>> back = Value(stored);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[2].ID(), counters[2].ID());
  EXPECT_EQ(Value(back[2].Task(&Counter::Add).Remote(1)), 13);
}

TEST_F(ActorTest, HandlePassedToAnotherActor) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).Remote(0);
  lumen::ActorHandle<Caller> caller = lumen::Actor(Caller::Create).Remote(c);
  EXPECT_EQ(Value(caller.Task(&Caller::AddToOwn).Remote(3)), 3);
  lumen::ActorHandle<Counter> other = lumen::Actor(Counter::Create).Remote(100);
  EXPECT_EQ(Value(caller.Task(&Caller::AddTo).Remote(c, 4)), 7);
  EXPECT_EQ(Value(caller.Task(&Caller::AddTo).Remote(other, 1)), 101);
  EXPECT_EQ(Value(c.Task(&Counter::Get).Remote()), 7);
}

TEST_F(ActorTest, NamedActors) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).SetName("counter").Remote(1);
  EXPECT_THROW(lumen::Actor(Counter::Create).SetName("counter").Remote(2), lumen::ConfigError);

  std::optional<lumen::ActorHandle<Counter>> found = lumen::GetActor<Counter>("counter");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->ID(), c.ID());
  EXPECT_EQ(Value(found->Task(&Counter::Add).Remote(1)), 2);
  EXPECT_EQ(Value(c.Task(&Counter::Get).Remote()), 2);  // the same actor

  EXPECT_FALSE(lumen::GetActor<Counter>("nobody").has_value());
  EXPECT_FALSE(lumen::GetActor<Counter>("counter", "elsewhere").has_value());

  // The same name in another namespace is another actor.
  lumen::ActorHandle<Counter> other =
      lumen::Actor(Counter::Create).SetName("counter", "elsewhere").Remote(100);
  std::optional<lumen::ActorHandle<Counter>> found_other =
      lumen::GetActor<Counter>("counter", "elsewhere");
  ASSERT_TRUE(found_other.has_value());
  EXPECT_EQ(found_other->ID(), other.ID());
  EXPECT_EQ(Value(found_other->Task(&Counter::Get).Remote()), 100);
  EXPECT_EQ(lumen::GetActor<Counter>("counter").value().ID(), c.ID());
  EXPECT_THROW(lumen::Actor(Counter::Create).SetName("counter", "elsewhere").Remote(3),
               lumen::ConfigError);
}

TEST_F(ActorTest, GetActorInsideATask) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).SetName("shared").Remote(1);
  EXPECT_EQ(Value(lumen::Task(AddByName).Remote(std::string("shared"), std::string(), 5)), 6);
  EXPECT_EQ(Value(lumen::Task(AddByName).Remote(std::string("missing"), std::string(), 5)), -1);
  EXPECT_EQ(
      Value(lumen::Task(AddByName).Remote(std::string("shared"), std::string("elsewhere"), 5)), -1);
  EXPECT_EQ(Value(c.Task(&Counter::Get).Remote()), 6);
}

TEST_F(ActorTest, GetActorAfterKillFindsNothingAndTheNameIsFree) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).SetName("short-lived").Remote(1);
  ASSERT_TRUE(lumen::GetActor<Counter>("short-lived").has_value());
  c.Kill();  // synchronous: the name is released when it returns
  EXPECT_FALSE(lumen::GetActor<Counter>("short-lived").has_value());
  lumen::ActorHandle<Counter> again =
      lumen::Actor(Counter::Create).SetName("short-lived").Remote(3);
  EXPECT_NE(again.ID(), c.ID());
  EXPECT_EQ(Value(again.Task(&Counter::Get).Remote()), 3);
  std::optional<lumen::ActorHandle<Counter>> found = lumen::GetActor<Counter>("short-lived");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->ID(), again.ID());
}

TEST_F(ActorTest, RuntimeContextActorId) {
  lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).Remote(0);
  EXPECT_EQ(Value(c.Task(&Counter::ActorId).Remote()), c.ID());
  EXPECT_EQ(lumen::GetRuntimeContext().ActorId(), "");      // the driver
  EXPECT_EQ(Value(lumen::Task(TaskActorId).Remote()), "");  // a task
}

// Handles are counted like ObjectRefs: an unnamed actor ends once its last handle
// anywhere is gone, after the calls made through it have finished.

TEST_F(ActorTest, AnActorEndsWhenItsLastHandleIsGoneOnceItsCallsHaveRun) {
  int pid = 0;
  std::vector<lumen::ObjectRef<int>> sums;
  {
    lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).Remote(0);
    pid = Value(c.Task(&Counter::Pid).Remote());
    for (int i = 0; i < 50; ++i) sums.push_back(c.Task(&Counter::Add).Remote(1));
  }  // the only handle is gone with 50 calls queued or running
  for (int i = 0; i < 50; ++i) EXPECT_EQ(Value(sums[i]), i + 1) << "call " << i;
  EXPECT_TRUE(lumen::test::WaitProcessGone(pid)) << "the actor outlived its last handle";
}

TEST_F(ActorTest, AHandleHeldByAnotherProcessKeepsTheActorUntilThatProcessIsGone) {
  int pid = 0;
  lumen::ActorHandle<Caller> caller;
  {
    lumen::ActorHandle<Counter> c = lumen::Actor(Counter::Create).Remote(0);
    pid = Value(c.Task(&Counter::Pid).Remote());
    caller = lumen::Actor(Caller::Create).Remote(c);
    // A handle returned from a task is another copy, held here.
    lumen::ActorHandle<Counter> echoed = Value(lumen::Task(Echo).Remote(c));
    EXPECT_EQ(Value(echoed.Task(&Counter::Add).Remote(1)), 1);
  }  // the driver's handles are gone: the caller's copy alone holds the counter
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(Value(caller.Task(&Caller::AddToOwn).Remote(3)), 4);
  EXPECT_FALSE(lumen::test::WaitProcessGone(pid, 0.5));
  caller.Kill();  // its process goes, and its handle with it
  EXPECT_TRUE(lumen::test::WaitProcessGone(pid)) << "a dead borrower's handle kept the actor";
}

TEST_F(ActorTest, NamedAndDetachedActorsOutliveTheirHandles) {
  int named_pid = 0;
  int detached_pid = 0;
  std::string detached_id;
  {
    auto named = lumen::Actor(Counter::Create).SetName("kept").Remote(1);
    auto detached =
        lumen::Actor(Counter::Create).SetLifetime(lumen::ActorLifetime::kDetached).Remote(2);
    named_pid = Value(named.Task(&Counter::Pid).Remote());
    detached_pid = Value(detached.Task(&Counter::Pid).Remote());
    detached_id = detached.BinaryId();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::optional<lumen::ActorHandle<Counter>> found = lumen::GetActor<Counter>("kept");
  ASSERT_TRUE(found.has_value()) << "a named actor ended with its handle";
  EXPECT_EQ(Value(found->Task(&Counter::Pid).Remote()), named_pid);
  auto detached = lumen::ActorHandle<Counter>::FromBinaryId(detached_id);
  EXPECT_EQ(Value(detached.Task(&Counter::Pid).Remote()), detached_pid)
      << "a detached actor ended with its handle";
  detached.Kill();  // it would outlive the test's Shutdown
}


}  // namespace

