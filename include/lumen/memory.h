// lumen::GetMemoryInfo and lumen::MemorySummary: what the node's object store holds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lumen {

/// One object in the node's shared-memory store.
struct StoredObjectInfo {
  std::string id;       // hex, as ObjectRef::ID() prints it
  std::string owner;    // the owning process's endpoint
  uint64_t size = 0;    // bytes
  bool sealed = false;  // false while its creator is still writing it
  bool in_memory = false;
  bool spilled = false;  // has a spill file
  int readers = 0;       // Get results (shared_ptrs) alive that point into it, by process
};

/// The node store of the node this process runs on.
struct MemoryInfo {
  uint64_t capacity = 0;       // bytes
  uint64_t used = 0;           // bytes of objects in shared memory
  uint64_t num_objects = 0;    // in memory or spilled
  uint64_t num_spilled = 0;    // objects with a spill file now
  uint64_t spilled_bytes = 0;  // bytes in spill files now
  uint64_t total_spilled = 0;  // objects spilled since the node started
  uint64_t total_restored = 0;
  uint64_t total_evicted = 0;
  uint64_t total_pulled = 0;   // objects copied here from other nodes since it started
  uint64_t pulled_bytes = 0;   // and their bytes
  std::string spill_dir;
  std::vector<StoredObjectInfo> objects;  // filled when asked for
  /// Objects this process owns or borrows (inline or in the store) that something still
  /// refers to: its handles, pending tasks, other objects, borrowers elsewhere.
  uint64_t tracked_in_process = 0;
};

/// Asks the node's raylet. Objects small enough to stay inline (max_inline_object_size)
/// live in their owner's process and are not listed.
MemoryInfo GetMemoryInfo(bool include_objects = true);

/// A readable report: the store's use and spilling, then its objects grouped by owner,
/// largest first.
std::string MemorySummary();

}  // namespace lumen
