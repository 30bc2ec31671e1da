// Init, Shutdown and configuration as a user sees them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "lumen/lumen.h"
#include "test_util.h"

int Twice(int x) { return 2 * x; }
int NotRegistered(int x) { return x; }
LUMEN_REMOTE(Twice);

namespace {

lumen::Config SmallConfig() {
  lumen::Config config;
  config.num_cpus = 1;
  return config;
}

TEST(ApiTest, CallsBeforeInitThrowConfigError) {
  ASSERT_FALSE(lumen::IsInitialized());
  EXPECT_THROW(lumen::Put(1), lumen::ConfigError);
  EXPECT_THROW(lumen::Task(Twice).Remote(1), lumen::ConfigError);
  EXPECT_THROW(lumen::GetRuntimeContext(), lumen::ConfigError);
  lumen::Shutdown();  // harmless before Init
}

TEST(ApiTest, InitShutdownInitAgain) {
  for (int round = 0; round < 2; ++round) {
    lumen::Init(SmallConfig());
    EXPECT_TRUE(lumen::IsInitialized());
    EXPECT_EQ(*lumen::Get(lumen::Task(Twice).Remote(21)), 42);
    lumen::Shutdown();
    EXPECT_FALSE(lumen::IsInitialized());
    lumen::Shutdown();  // idempotent
  }
}

// A ref kept past Shutdown names the session it came from, at once, after the next Init
// (it used to hang in the next session).
TEST(ApiTest, AnObjectRefKeptPastShutdownIsAClearErrorAtOnce) {
  lumen::Init(SmallConfig());
  auto small = lumen::Put(7);
  auto large = lumen::Put(std::vector<uint8_t>(1 << 20, 1));
  auto result = lumen::Task(Twice).Remote(4);
  ASSERT_EQ(*lumen::Get(result), 8);
  lumen::Shutdown();
  auto expect_stale = [](const std::function<void()>& use) {
    auto start = std::chrono::steady_clock::now();
    try {
      use();
      ADD_FAILURE() << "a ref from a shut-down session was accepted";
    } catch (const lumen::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("was shut down"), std::string::npos) << e.what();
    }
    EXPECT_LT(lumen::test::SecondsSince(start), 5.0) << "at once, not after a wait";
  };
  try {
    lumen::Get(small);
    ADD_FAILURE() << "Get after Shutdown returned";
  } catch (const lumen::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("called after lumen::Shutdown()"), std::string::npos)
        << e.what();
  }
  lumen::Init(SmallConfig());
  expect_stale([&] { lumen::Get(small); });
  expect_stale([&] { lumen::Get(large, std::chrono::milliseconds(100)); });
  expect_stale([&] { lumen::Get(result); });
  expect_stale([&] { lumen::Task(Twice).Remote(result); });
  expect_stale([&] { lumen::Wait(std::vector<lumen::ObjectRef<int>>{small}, 1,
                                 std::chrono::seconds(1)); });
  // The new session works, and the old refs go away without touching it.
  EXPECT_EQ(*lumen::Get(lumen::Task(Twice).Remote(lumen::Put(5))), 10);
  { auto copy = small; }
  lumen::Shutdown();
}

TEST(ApiTest, AllThreeInitForms) {
  lumen::Init();
  EXPECT_TRUE(lumen::IsInitialized());
  lumen::Shutdown();
  lumen::Init(SmallConfig());
  lumen::Shutdown();
  std::string flag = "--lumen-num-cpus=1";
  std::string other = "--not-ours";
  char* argv[] = {const_cast<char*>("prog"), flag.data(), other.data()};
  lumen::Init(lumen::Config{}, 3, argv);
  EXPECT_EQ(*lumen::Get(lumen::Task(Twice).Remote(2)), 4);
  lumen::Shutdown();
}

TEST(ApiTest, InitTwiceIsAnError) {
  lumen::Init(SmallConfig());
  EXPECT_THROW(lumen::Init(SmallConfig()), lumen::ConfigError);
  lumen::Shutdown();
}

TEST(ApiTest, BadConfigurationIsAConfigError) {
  lumen::Config fractional_cpus;
  fractional_cpus.num_cpus = 1.5;
  EXPECT_THROW(lumen::Init(fractional_cpus), lumen::ConfigError);
  lumen::Config infinite_cpus;
  infinite_cpus.num_cpus = std::numeric_limits<double>::infinity();
  EXPECT_THROW(lumen::Init(infinite_cpus), lumen::ConfigError);
  lumen::Config negative_cpus;
  negative_cpus.num_cpus = -5;
  EXPECT_THROW(lumen::Init(negative_cpus), lumen::ConfigError);
  lumen::Config bad_level;
  bad_level.log_level = "loud";
  EXPECT_THROW(lumen::Init(bad_level), lumen::ConfigError);
  lumen::Config bad_resource;
  bad_resource.resources["custom"] = 0;
  EXPECT_THROW(lumen::Init(bad_resource), lumen::ConfigError);
  std::string flag = "--lumen-no-such-flag=1";
  char* argv[] = {const_cast<char*>("prog"), flag.data()};
  EXPECT_THROW(lumen::Init(lumen::Config{}, 2, argv), lumen::ConfigError);
  std::string bad_number = "--lumen-num-cpus=many";
  char* argv2[] = {const_cast<char*>("prog"), bad_number.data()};
  EXPECT_THROW(lumen::Init(lumen::Config{}, 2, argv2), lumen::ConfigError);
  lumen::Config address;
  address.address = "127.0.0.1:1";
  EXPECT_THROW(lumen::Init(address), lumen::ConfigError);
  EXPECT_FALSE(lumen::IsInitialized());
}

TEST(ApiTest, UnregisteredFunctionIsFunctionNotFound) {
  lumen::Init(SmallConfig());
  EXPECT_THROW(lumen::Task(NotRegistered).Remote(1), lumen::FunctionNotFoundError);
  lumen::Shutdown();
}

TEST(ApiTest, SessionDirectoryIsRemovedUnlessKept) {
  std::string dir = "/tmp/lumen/session_api_test_" + std::to_string(getpid());
  lumen::Config config = SmallConfig();
  config.session_dir = dir;
  lumen::Init(config);
  EXPECT_TRUE(std::filesystem::exists(dir + "/logs"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/sockets/raylet.sock"));
  lumen::Shutdown();
  EXPECT_FALSE(std::filesystem::exists(dir));

  config.keep_session_dir = true;
  lumen::Init(config);
  lumen::Get(lumen::Task(Twice).Remote(1));
  lumen::Shutdown();
  EXPECT_TRUE(std::filesystem::exists(dir + "/logs"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/sockets/raylet.sock"));
  std::filesystem::remove_all(dir);
}

TEST(RegistryTest, SplitsMacroArgumentText) {
  EXPECT_EQ(lumen::detail::SplitRemoteNames("Plus, Minus"),
            (std::vector<std::string>{"Plus", "Minus"}));
  EXPECT_EQ(lumen::detail::SplitRemoteNames("&Counter::Add, ns::F<int, 2>"),
            (std::vector<std::string>{"Counter::Add", "ns::F<int,2>"}));
}

TEST(ApiTest, ExistingSessionDirectoryIsNeverDeleted) {
  std::string dir = "/tmp/lumen_user_dir_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/precious.txt") << "keep me";
  lumen::Config config = SmallConfig();
  config.session_dir = dir;
  lumen::Init(config);
  EXPECT_EQ(*lumen::Get(lumen::Task(Twice).Remote(1)), 2);
  lumen::Shutdown();
  EXPECT_TRUE(std::filesystem::exists(dir + "/precious.txt"));
  EXPECT_TRUE(std::filesystem::is_empty(dir) == false);
  size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);  // the session made inside it is gone, the user's file stays
  std::filesystem::remove_all(dir);
}

TEST(ApiTest, RuntimeContextInTheDriver) {
  lumen::Init(SmallConfig());
  lumen::RuntimeContext ctx = lumen::GetRuntimeContext();
  EXPECT_FALSE(ctx.IsWorker());
  EXPECT_EQ(ctx.JobId().size(), 8u);
  EXPECT_EQ(ctx.NodeId().size(), 32u);
  EXPECT_EQ(ctx.WorkerId().size(), 32u);
  EXPECT_EQ(ctx.TaskId(), "");
  EXPECT_TRUE(ctx.AssignedResources().empty());
  lumen::Shutdown();
}

}  // namespace
