// The settings of RPC fault injection: what is accepted, and what is refused and why.
#include "rpc/fault_injection.h"

#include <gtest/gtest.h>

namespace lumen::rpc::faults {
namespace {

void ExpectRefused(std::string_view failure, std::string_view delay, std::string_view why) {
  absl::Status status = Check(failure, delay);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << failure << " / " << delay;
  EXPECT_NE(std::string(status.message()).find(why), std::string::npos) << status;
}

TEST(FaultInjectionTest, AcceptsMethodsWithLimitsAndPercentages) {
  EXPECT_TRUE(Check("", "").ok());
  EXPECT_TRUE(Check("PushTasks=-1:10:10", "").ok());
  EXPECT_TRUE(Check("PushTasks=3:0:50,*=-1:0.5:0", "RequestWorkerLease=0:20").ok());
  EXPECT_TRUE(Check("PushTasks=-1:100:0,", "*=5:5").ok());
}

TEST(FaultInjectionTest, RefusesMalformedSettingsNamingTheEntry) {
  ExpectRefused("PushTasks", "", "expected Method=values");
  ExpectRefused("=1:2:3", "", "expected Method=values");
  ExpectRefused("PushTasks=1:2", "", "expected 3 numbers");
  ExpectRefused("PushTasks=x:2:3", "", "'x' is not a number");
  ExpectRefused("PushTasks=-2:2:3", "", "max must be -1 or a count");
  ExpectRefused("PushTasks=1.5:2:3", "", "max must be -1 or a count");
  ExpectRefused("PushTasks=-1:60:50", "", "add up to <= 100");
  ExpectRefused("PushTasks=-1:-1:0", "", "add up to <= 100");
  ExpectRefused("", "PushTasks=20:10", "min_ms <= max_ms");
  ExpectRefused("", "PushTasks=1", "expected 2 numbers");
  absl::Status status = Check("Ok=1:1:1,Bad=1:1", "");
  EXPECT_NE(std::string(status.message()).find("LUMEN_TESTING_RPC_FAILURE: 'Bad=1:1'"),
            std::string::npos)
      << status;
}

// With nothing set (the tests' environment), nothing is injected.
TEST(FaultInjectionTest, NothingHappensWhenOff) {
  ASSERT_TRUE(Validate().ok());
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(Draw("PushTasks").any());
  EXPECT_EQ(InjectedCount(), 0);
}

}  // namespace
}  // namespace lumen::rpc::faults
