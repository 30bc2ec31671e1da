// lumen — Ray-style tasks, actors and objects for C++. The one include of the user API.
#pragma once

#include "lumen/actor.h"
#include "lumen/cluster.h"
#include "lumen/config.h"
#include "lumen/errors.h"
#include "lumen/memory.h"
#include "lumen/object_api.h"
#include "lumen/object_ref.h"
#include "lumen/placement_group.h"
#include "lumen/runtime_context.h"
#include "lumen/scheduling.h"
#include "lumen/state.h"
#include "lumen/task.h"

namespace lumen {

/// Starts an embedded one-node cluster (empty Config::address) or joins a running one.
/// In a worker process, runs tasks until told to exit and never returns: call Init first
/// thing in main. Throws ConfigError on invalid options or when already initialized.
void Init();
void Init(const Config& config);
/// Also reads --lumen-<field>=<value> flags from argv (e.g. --lumen-num-cpus=4).
void Init(const Config& config, int argc, char** argv);

bool IsInitialized();

/// Stops this program's use of the cluster: stops an embedded cluster's workers and
/// removes its sockets and session files. Idempotent; also runs at normal exit and on
/// SIGINT/SIGTERM. Refs held after Shutdown are inert.
void Shutdown();

}  // namespace lumen
