// What the task and actor submitters share: waiting for the arguments a task's owner
// holds, and storing a finished task's return objects.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common.pb.h"
#include "common/ids.h"
#include "core_worker/memory_store.h"
#include "core_worker/reference_counter.h"

namespace lumen::core {

/// Pins every by-reference argument of `spec` (task uses, appended to `task_uses`),
/// waits for the ones owned by `self_endpoint` and inlines their values into `*spec`.
/// Then calls `done(nullptr)`, or `done(error)` when an argument failed. `done` runs
/// once, on this thread or on the thread that stores the last argument. `*spec` must
/// stay alive and untouched by others until then. `*has_nested` becomes true when an
/// argument carries ObjectRefs inside its value.
void ResolveOwnedArgs(rpc::TaskSpec* spec, const std::string& self_endpoint,
                      MemoryStore* store, ReferenceCounter* refs,
                      std::vector<ObjectId>* task_uses, bool* has_nested,
                      std::function<void(ObjectPtr failed)> done);

/// The task's name for messages: its SetName, else its function's.
std::string TaskLabel(const rpc::TaskSpec& spec);

/// Runs deferred actions (RPCs to start, results to store) collected under a lock.
void RunAll(std::vector<std::function<void()>>& actions);

/// True for statuses that mean the worker process (or the connection to it) is gone.
bool IsConnectionLoss(const absl::Status& status);

/// Frees an owned object's copies in node stores, the primary one on `store_node` (may be
/// empty: no store).
using FreeStored = std::function<void(const ObjectId&, const std::string& store_node)>;

/// Stores the return objects of a finished task (its `result`, or `error` in every
/// return) where someone still holds a reference, then unpins `task_uses`. Returns
/// that nobody wants any more and that the worker put in a node store are freed there.
void StoreTaskReturns(const rpc::TaskSpec& spec, const rpc::TaskResult* result,
                      ObjectPtr error, const std::vector<ObjectId>& task_uses,
                      MemoryStore* store, ReferenceCounter* refs,
                      const FreeStored& free_stored);

}  // namespace lumen::core
