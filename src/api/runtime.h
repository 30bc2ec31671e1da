// The process-wide lumen runtime behind the user API.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "api/log_echo.h"
#include "core_worker/core_worker.h"
#include "gcs.grpc.pb.h"
#include "lumen/config.h"
#include "node/node.h"

namespace lumen::api {

/// What Init built. An embedded cluster holds its node (GCS and raylet) too.
struct Runtime {
  Config config;
  bool is_worker = false;
  std::unique_ptr<node::Node> node;  // embedded drivers only
  std::unique_ptr<core::CoreWorker> core;
  std::unique_ptr<LogEcho> log_echo;  // drivers that echo worker output
  std::unique_ptr<rpc::GcsService::Stub> gcs;  // drivers: Nodes() and the like
  std::string gcs_address;
  std::string job_id;  // binary; drivers
};

/// The runtime, or nullptr before Init / after Shutdown. Thread-safe.
std::shared_ptr<Runtime> Current();
/// When lumen is being shut down by SIGINT/SIGTERM (its own handler), blocks the calling
/// thread for good: the signal, re-raised once the runtime is down, ends the process.
/// Called before an error is thrown into the program.
void ParkIfDyingBySignal();
/// Like Current, but throws ConfigError naming `call` when lumen is not initialized.
std::shared_ptr<Runtime> Require(const char* call);

/// Applies --lumen-* flags to `config`; throws ConfigError on unknown or bad ones.
void ApplyFlags(Config& config, int argc, char** argv);

/// Where a joining driver goes: the cluster's GCS and the node of this machine it uses.
struct JoinTarget {
  std::string gcs_address;
  rpc::NodeInfo node;
};
/// Resolves `config.address` ("auto" or host:port), asks the GCS for its nodes and picks
/// the one on this machine. Throws ConfigError with what went wrong and what to do.
JoinTarget ResolveJoin(const Config& config);

}  // namespace lumen::api
