// Remote functions as a user writes them: arguments, refs, nesting, options, context.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>

#include <atomic>
#include <fstream>
#include <numeric>
#include <set>
#include <thread>

#include "lumen/lumen.h"
#include "test_util.h"

int Plus(int a, int b) { return a + b; }
double Scale(double x, double factor) { return x * factor; }
int SumRefs(std::vector<lumen::ObjectRef<int>> refs) {
  int sum = 0;
  for (const auto& ref : refs) sum += *lumen::Get(ref);
  return sum;
}
int SubExperiment(int i, int j) { return i + j; }
int RunExperiment(int i) {
  std::vector<lumen::ObjectRef<int>> refs;
  for (int j = 0; j < 10; ++j) refs.push_back(lumen::Task(SubExperiment).Remote(i, j));
  int sum = 0;
  for (const auto& value : lumen::Get(refs)) sum += *value;
  return sum;
}
static std::atomic<int> g_void_calls{0};
void Touch(std::string path) {
  FILE* f = std::fopen(path.c_str(), "a");
  std::fputs("x", f);
  std::fclose(f);
}
int SleepMs(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
// When it ran: {start, end} on the machine's monotonic clock (the same in every process).
std::vector<int64_t> SleepSpan(int ms) {
  auto now = [] { return std::chrono::steady_clock::now().time_since_epoch().count(); };
  int64_t start = now();
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return {start, now()};
}
int Pid() { return getpid(); }
std::string TaskIdentity() {
  auto ctx = lumen::GetRuntimeContext();
  return ctx.TaskId() + "/" + ctx.WorkerId() + "/" + ctx.JobId();
}
std::map<std::string, double> Assigned() { return lumen::GetRuntimeContext().AssignedResources(); }
lumen::ObjectRef<int> MakeRef(int v) { return lumen::Put(v); }
int Print(int v) {
  std::cout << "printed-from-task " << v << std::endl;
  std::cerr << "error-from-task " << v << std::endl;
  return v;
}
std::string GpuView(int sleep_ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  std::string ids;
  for (int id : lumen::GetRuntimeContext().GpuIds()) ids += std::to_string(id);
  const char* env = std::getenv("CUDA_VISIBLE_DEVICES");
  return ids + "|" + (env ? env : "");
}
// CUDA_VISIBLE_DEVICES as the worker process was started with (/proc/self/environ is
// the environment at exec; setenv in the running process does not change it).
std::string DevicesAtStart() {
  std::ifstream in("/proc/self/environ", std::ios::binary);
  const std::string key = "CUDA_VISIBLE_DEVICES=";
  for (std::string entry; std::getline(in, entry, '\0');) {
    if (entry.rfind(key, 0) == 0) return entry.substr(key.size());
  }
  return "unset";
}
LUMEN_REMOTE(GpuView, DevicesAtStart);
// What a program started by a task would inherit.
std::string InheritedLumenEnvironment() {
  std::string found;
  for (char** e = environ; *e; ++e) {
    if (std::string(*e).rfind("LUMEN_", 0) == 0) found += std::string(*e) + ";";
  }
  return found;
}
LUMEN_REMOTE(InheritedLumenEnvironment);
LUMEN_REMOTE(Plus, Scale, SumRefs, SubExperiment, RunExperiment, Touch, SleepMs, SleepSpan,
             Pid, TaskIdentity, Assigned, MakeRef, Print);

namespace {

class TaskTest : public lumen::test::ClusterTest {};

TEST_F(TaskTest, ValueAndRefArguments) {
  auto three = lumen::Task(Plus).Remote(1, 2);
  EXPECT_EQ(*lumen::Get(three), 3);
  auto chained = lumen::Task(Plus).Remote(three, 10);
  EXPECT_EQ(*chained.Get(), 13);
  auto put = lumen::Put(100);
  EXPECT_EQ(*lumen::Get(lumen::Task(Plus).Remote(put, chained)), 113);
  EXPECT_DOUBLE_EQ(*lumen::Get(lumen::Task(Scale).Remote(1.5, 2.0)), 3.0);
}

TEST_F(TaskTest, RefsNestedInArgumentsArePassedAsReferences) {
  std::vector<lumen::ObjectRef<int>> refs;
  for (int i = 1; i <= 5; ++i) refs.push_back(lumen::Task(Plus).Remote(i, 0));
  refs.push_back(lumen::Put(10));
  EXPECT_EQ(*lumen::Get(lumen::Task(SumRefs).Remote(refs)), 25);
}

TEST_F(TaskTest, TasksThatSubmitTasks) {
  std::vector<lumen::ObjectRef<int>> experiments;
  for (int i = 0; i < 5; ++i) experiments.push_back(lumen::Task(RunExperiment).Remote(i));
  std::vector<int> sums;
  for (const auto& value : lumen::Get(experiments)) sums.push_back(*value);
  EXPECT_EQ(sums, (std::vector<int>{45, 55, 65, 75, 85}));
}

TEST_F(TaskTest, VoidFunctions) {
  std::string path = "/tmp/lumen_void_test_" + std::to_string(getpid());
  std::remove(path.c_str());
  lumen::ObjectRef<void> done = lumen::Task(Touch).Remote(path);
  EXPECT_EQ(lumen::Get(done), nullptr);
  FILE* f = std::fopen(path.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  std::remove(path.c_str());
}

TEST_F(TaskTest, TasksReturningRefs) {
  lumen::ObjectRef<lumen::ObjectRef<int>> outer = lumen::Task(MakeRef).Remote(7);
  lumen::ObjectRef<int> inner = *lumen::Get(outer);
  EXPECT_EQ(*lumen::Get(inner), 7);
}

TEST_F(TaskTest, PutGetWait) {
  auto ref = lumen::Put(std::string("value"));
  EXPECT_EQ(*ref.Get(), "value");
  EXPECT_EQ(ref.ID().size(), 40u);
  std::vector<lumen::ObjectRef<int>> refs = {lumen::Task(SleepMs).Remote(0),
                                             lumen::Task(SleepMs).Remote(20000)};
  auto result = lumen::Wait(refs, 1, std::chrono::seconds(10));
  ASSERT_EQ(result.ready.size(), 1u);
  EXPECT_EQ(result.ready[0], refs[0]);
  ASSERT_EQ(result.unready.size(), 1u);
  EXPECT_EQ(result.unready[0], refs[1]);
  auto none = lumen::Wait(refs, 2, std::chrono::milliseconds(50));
  EXPECT_EQ(none.ready.size(), 1u);
  EXPECT_THROW(lumen::Wait(refs, 3, std::chrono::milliseconds(1)), lumen::ConfigError);
  auto values = lumen::Get(std::vector<lumen::ObjectRef<int>>{refs[0]}, std::chrono::seconds(5));
  EXPECT_EQ(*values[0], 0);
}

TEST_F(TaskTest, TenThousandSmallTasks) {
  std::vector<lumen::ObjectRef<int>> refs;
  refs.reserve(10000);
  for (int i = 0; i < 10000; ++i) refs.push_back(lumen::Task(Plus).Remote(i, 1));
  int64_t sum = 0;
  for (const auto& value : lumen::Get(refs)) sum += *value;
  EXPECT_EQ(sum, int64_t(10000) * 10001 / 2);
}

TEST_F(TaskTest, SleepingTasksRunInParallel) {
  // Two CPUs: four 1-second tasks take about 2 s; serially they would take 4 s.
  auto start = std::chrono::steady_clock::now();
  std::vector<lumen::ObjectRef<int>> refs;
  for (int i = 0; i < 4; ++i) refs.push_back(lumen::Task(SleepMs).Remote(1000));
  lumen::Get(refs);
  EXPECT_LT(lumen::test::SecondsSince(start), 3.5);
  std::set<int> pids;
  for (int i = 0; i < 4; ++i) pids.insert(*lumen::Get(lumen::Task(Pid).Remote()));
  EXPECT_FALSE(pids.count(getpid()));  // tasks never run in the driver
}

TEST_F(TaskTest, OptionsAreAccepted) {
  auto ref = lumen::Task(Plus)
                 .SetName("named-plus")
                 .SetResource("CPU", 0.5)
                 .SetMaxRetries(0)
                 .SetRetryExceptions(false)
                 .Remote(2, 3);
  EXPECT_EQ(*lumen::Get(ref), 5);
  auto assigned = lumen::Get(lumen::Task(Assigned).SetResource("CPU", 0.5).Remote());
  EXPECT_EQ(*assigned, (std::map<std::string, double>{{"CPU", 0.5}}));
  auto several = lumen::Get(lumen::Task(Assigned).SetResources({{"CPU", 2}}).Remote());
  EXPECT_EQ(*several, (std::map<std::string, double>{{"CPU", 2}}));
}

TEST_F(TaskTest, FractionalDemandsShareACpu) {
  // Four half-CPU tasks on two CPUs all run at once: some moment is inside all four
  // (with one CPU each, two would have to wait for the other two to end). Whatever the
  // workers take to start, as long as it is under the 2 s they sleep.
  std::vector<lumen::ObjectRef<std::vector<int64_t>>> refs;
  for (int i = 0; i < 4; ++i) {
    refs.push_back(lumen::Task(SleepSpan).SetResource("CPU", 0.5).Remote(2000));
  }
  int64_t last_start = 0, first_end = INT64_MAX;
  for (const auto& span : lumen::Get(refs, std::chrono::seconds(60))) {
    last_start = std::max(last_start, (*span)[0]);
    first_end = std::min(first_end, (*span)[1]);
  }
  EXPECT_LT(last_start, first_end) << "the four tasks did not all run at once";
}

TEST_F(TaskTest, ProgramsStartedByTasksAreNotWorkers) {
  EXPECT_EQ(*lumen::Get(lumen::Task(InheritedLumenEnvironment).Remote()), "");
}

TEST_F(TaskTest, RuntimeContextInsideATask) {
  std::string identity = *lumen::Get(lumen::Task(TaskIdentity).Remote());
  auto driver = lumen::GetRuntimeContext();
  std::string task_id = identity.substr(0, identity.find('/'));
  EXPECT_EQ(task_id.size(), 32u);
  EXPECT_EQ(identity.find(driver.WorkerId()), std::string::npos);
  EXPECT_NE(identity.find("/" + driver.JobId()), std::string::npos);
}

// A zero amount is no demand (Ray's num_cpus=0): such a task runs while every CPU is
// taken. A negative amount stays an error.
TEST_F(TaskTest, AZeroCpuTaskRunsWhileEveryCpuIsBusy) {
  std::vector<lumen::ObjectRef<int>> busy;
  for (int i = 0; i < 2; ++i) busy.push_back(lumen::Task(SleepMs).Remote(4000));
  lumen::Get(lumen::Task(SleepMs).SetResource("CPU", 0).Remote(1), std::chrono::seconds(60));
  // Both CPUs were still taken while it ran.
  EXPECT_TRUE(lumen::Wait(busy, 1, std::chrono::milliseconds(0)).ready.empty());
  EXPECT_EQ(lumen::GetRuntimeContext().IsWorker(), false);
  EXPECT_THROW(lumen::Task(SleepMs).SetResource("CPU", -1), lumen::ConfigError);
  lumen::Get(busy);
}

TEST_F(TaskTest, TaskOutputReachesTheDriverWithPidPrefix) {
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  int pid = *lumen::Get(lumen::Task(Pid).Remote());
  lumen::Get(lumen::Task(Print).Remote(41));
  // The log monitor forwards asynchronously; give it a (generous) moment.
  std::string out, err;
  for (int i = 0; i < 250; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    out += testing::internal::GetCapturedStdout();
    err += testing::internal::GetCapturedStderr();
    bool seen = out.find("printed-from-task 41") != std::string::npos &&
                err.find("error-from-task 41") != std::string::npos;
    if (seen || i == 249) break;
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
  }
  EXPECT_NE(out.find("(pid="), std::string::npos) << out;
  EXPECT_NE(out.find("printed-from-task 41"), std::string::npos) << out;
  EXPECT_EQ(out.find("error-from-task"), std::string::npos) << out;
  EXPECT_NE(err.find("error-from-task 41"), std::string::npos) << err;
  (void)pid;
}

// GPUs are logical resources: ids and CUDA_VISIBLE_DEVICES are handed out whether or
// not the machine has the devices, so this runs everywhere.
class GpuTaskTest : public lumen::test::ClusterTest {
 protected:
  lumen::Config MakeConfig() override {
    lumen::Config config = ClusterTest::MakeConfig();
    config.num_gpus = 2;
    return config;
  }
};

TEST_F(GpuTaskTest, EachGpuTaskGetsItsOwnDevice) {
  auto a = lumen::Task(GpuView).SetResource("GPU", 1).Remote(500);
  auto b = lumen::Task(GpuView).SetResource("GPU", 1).Remote(500);
  std::string va = *lumen::Get(a), vb = *lumen::Get(b);
  EXPECT_TRUE((va == "0|0" && vb == "1|1") || (va == "1|1" && vb == "0|0")) << va << " " << vb;
  EXPECT_EQ(*lumen::Get(lumen::Task(GpuView).SetResources({{"CPU", 1}, {"GPU", 2}}).Remote(0)),
            "01|0,1");
  // A task without GPUs on a worker that ran a GPU task sees none.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*lumen::Get(lumen::Task(GpuView).Remote(0)), "|");
}

// The devices are in the worker's environment from its start, not set while it runs
// (other threads of the process may read the environment at any time).
TEST_F(GpuTaskTest, WorkersAreStartedSeeingTheirDevices) {
  for (int i = 0; i < 3; ++i) {
    std::string one = *lumen::Get(lumen::Task(DevicesAtStart).SetResource("GPU", 1).Remote());
    EXPECT_TRUE(one == "0" || one == "1") << one;
    EXPECT_EQ(*lumen::Get(lumen::Task(DevicesAtStart).SetResource("GPU", 2).Remote()), "0,1");
    // Without GPUs: what the node has (inherited from here, the embedded node's process).
    const char* inherited = std::getenv("CUDA_VISIBLE_DEVICES");
    EXPECT_EQ(*lumen::Get(lumen::Task(DevicesAtStart).Remote()), inherited ? inherited : "unset");
  }
}

}  // namespace
