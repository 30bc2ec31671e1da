// The boundary between the header-only API templates and the lumen library. Everything
// here is implemented in src/api and is not meant to be called by users directly.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lumen/scheduling.h"

namespace lumen::detail {

/// What travels for an ObjectRef: the binary object id and the owner's endpoint.
struct RefData {
  std::string id;
  std::string owner;
  uint64_t session = 0;  // the Init it was made or received in (CurrentSession())
};

/// Numbers the Inits of this process from 1; 0 while lumen is not initialized.
uint64_t CurrentSession() noexcept;

/// A read-only view of a serialized value. `keep_alive` owns the bytes; the view is
/// valid as long as any copy of the Buffer exists.
struct Buffer {
  const char* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> keep_alive;
  bool shared = false;  // the bytes are in the node's shared memory: read them in place
};

/// One argument of a task, serialized by the caller.
struct SerializedArg {
  bool by_ref = false;            // true: `ref` is resolved to its value by the worker
  std::string data;               // msgpack bytes when !by_ref
  RefData ref;                    // when by_ref
  std::vector<RefData> nested;    // ObjectRefs serialized inside `data`
};

/// A placement-group bundle to run in (Task/Actor .SetPlacementGroup).
struct PlacementTarget {
  std::string group_id;  // hex
  int bundle_index = -1;  // -1: any bundle
  std::vector<std::map<std::string, double>> bundles;  // the group's, to check demands
};

struct TaskOptions {
  std::string name;
  std::map<std::string, double> resources;  // empty: {"CPU": 1}
  int max_retries = 3;
  bool retry_exceptions = false;
  SchedulingStrategy scheduling;
  std::optional<PlacementTarget> placement;  // set: it replaces `scheduling`
};

// Reference counting of ObjectRef handles in this process. No-ops before Init and after
// Shutdown. Thread-safe.
void AddLocalRef(const std::string& id, const std::string& owner) noexcept;
void RemoveLocalRef(const std::string& id) noexcept;

/// Stores a serialized value owned by this process. Throws lumen::Error subclasses.
RefData Put(std::string data, std::vector<RefData> nested);
/// Put of a value of known size, written by `write` straight where it is stored.
RefData PutWith(size_t size, const std::function<void(char*)>& write);

/// Waits for every ref and returns their serialized values in order. Throws the typed
/// error stored in a failed object, or GetTimeoutError. A negative timeout waits forever.
std::vector<Buffer> Get(const std::vector<RefData>& refs, std::chrono::milliseconds timeout);

/// Waits until `num_returns` refs are ready or the timeout passes; returns one flag per
/// ref (true: ready, value or error).
std::vector<bool> Wait(const std::vector<RefData>& refs, int num_returns,
                       std::chrono::milliseconds timeout);

/// lumen::Cancel. Throws ConfigError when `ref` is not the result of a task this process
/// submitted.
void Cancel(const RefData& ref, bool force);

/// Submits a task of a registered function. Returns the ref of its single return value.
RefData SubmitTask(const std::string& function_name, std::vector<SerializedArg> args,
                   const TaskOptions& options);

struct ActorOptions {
  std::string name;        // empty: unnamed
  std::string namespace_;  // empty: the job's namespace
  bool detached = false;
  std::map<std::string, double> resources;  // held while the actor lives; empty: none
  int max_restarts = 0;
  int max_task_retries = 0;
  int max_concurrency = 1;
  SchedulingStrategy scheduling;
  std::optional<PlacementTarget> placement;  // set: it replaces `scheduling`
};

/// Thrown by lumen::ExitActor to unwind the running method. Not a std::exception, so a
/// user's catch (const std::exception&) does not stop it.
struct ActorExitSignal {};

struct CreatedActor {
  std::string id;  // binary
  RefData handle;  // counted once for the first handle; empty id: named or detached
};
/// Registers an actor with the GCS and starts creating it.
/// Throws ConfigError when the name is taken, FunctionNotFoundError, Error.
CreatedActor CreateActor(const std::string& factory_name, const std::string& class_name,
                        std::vector<SerializedArg> args, const ActorOptions& options);
/// Submits a method call; `handle_id` (empty: not counted) is held until it ends. Throws
/// ActorDiedError when the actor is known to be dead.
RefData SubmitActorTask(const std::string& actor_id, const std::string& handle_id,
                        const std::string& method_name,
                        std::vector<SerializedArg> args, const std::string& name);
void KillActor(const std::string& actor_id, bool no_restart);
/// The binary id of the live actor `name`, or "" when there is none. Throws ConfigError
/// when that actor's class is not `class_name`.
std::string GetNamedActor(const std::string& name, const std::string& namespace_,
                          const std::string& class_name);
/// Throws ActorExitSignal in an actor method, ConfigError anywhere else.
[[noreturn]] void ExitActor();
bool WasCurrentActorRestarted();

/// Throws ConfigError for a NodeAffinityStrategy whose node id is not 32 hex digits.
void ValidateStrategy(const SchedulingStrategy& strategy);
/// Throws ConfigError unless `amount` is a valid quantity of resource `name`.
void ValidateResource(const std::string& name, double amount);

/// Nested-reference collection: while a collector is installed on this thread, every
/// ObjectRef that is serialized is appended to it.
void PushRefCollector(std::vector<RefData>* out) noexcept;
void PopRefCollector() noexcept;
void OnRefSerialized(const RefData& ref) noexcept;
/// Counts one more use of each ref, released by the runtime once it has handed them on.
void HoldRefs(const std::vector<RefData>& refs) noexcept;
/// Registers this process as a borrower of the refs it deserialized since the last call
/// (with their owners, blocking), while what they came from is still held.
void RegisterBorrowed() noexcept;

/// Throws ConfigError when Init has not been called.
void CheckInitialized(const char* call);

}  // namespace lumen::detail
