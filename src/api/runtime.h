// The process-wide lumen runtime behind the user API.
#pragma once

#include <memory>
#include <mutex>
#include <optional>

#include "common/session.h"
#include "core_worker/core_worker.h"
#include "gcs/gcs_server.h"
#include "lumen/config.h"
#include "raylet/raylet.h"

namespace lumen::api {

/// What Init built. An embedded cluster holds the GCS and raylet too.
struct Runtime {
  Config config;
  bool is_worker = false;
  std::optional<Session> session;  // embedded drivers only
  std::unique_ptr<gcs::GcsServer> gcs;
  std::unique_ptr<raylet::Raylet> raylet;
  std::unique_ptr<core::CoreWorker> core;
  std::string raylet_endpoint;
};

/// The runtime, or nullptr before Init / after Shutdown. Thread-safe.
std::shared_ptr<Runtime> Current();
/// Like Current, but throws ConfigError naming `call` when lumen is not initialized.
std::shared_ptr<Runtime> Require(const char* call);

/// Applies --lumen-* flags to `config`; throws ConfigError on unknown or bad ones.
void ApplyFlags(Config& config, int argc, char** argv);

}  // namespace lumen::api
