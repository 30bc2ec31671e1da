// Helpers shared by the lumen tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "lumen/lumen.h"

namespace lumen::test {

/// Starts an embedded cluster for one test and shuts it down after.
class ClusterTest : public ::testing::Test {
 protected:
  virtual Config MakeConfig() {
    Config config;
    config.num_cpus = 2;
    return config;
  }
  void SetUp() override { lumen::Init(MakeConfig()); }
  void TearDown() override { lumen::Shutdown(); }
};

inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace lumen::test
