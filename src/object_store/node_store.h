// The node's object store (plasma-style): objects are created (space reserved), written
// by their creator straight into shared memory, then sealed and read by any process of
// the node without a copy. Owned by the raylet; not thread-safe (the raylet calls it on
// its event loop).
//
// Object life:   Create ──► (creator writes) ──► Seal ──► [Get/Release by readers] ──► Free
//                   └──► Abort / creator disconnects: the space is returned, nothing shown
//
// Copies: a *primary* copy is the one the owner relies on; it stays until the owner frees
// it, in memory or spilled to a file. A *secondary* copy (an object restored from its
// spill file, or later one pulled from another node) can be dropped at any time while no
// reader holds it. When space is needed the store first evicts secondary copies (least
// recently used first), then spills primary copies nobody is reading (least recently
// used first), and only then fails with ResourceExhausted (ObjectStoreFull).
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/ids.h"
#include "object_store/allocator.h"

namespace lumen::object_store {

/// Who talks to the store: a worker id (binary), unique per process.
using ClientId = std::string;

struct ObjectLocation {
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct ObjectInfo {
  ObjectId id;
  std::string owner;       // owner endpoint, as given to Create
  uint64_t size = 0;
  bool sealed = false;
  bool primary = true;
  bool in_memory = false;  // has a copy in the segment
  bool spilled = false;    // has a spill file
  int readers = 0;         // pins held by Get (summed over clients)
};

struct StoreStats {
  uint64_t capacity = 0;
  uint64_t used = 0;             // bytes of objects in memory (sealed or not)
  uint64_t num_objects = 0;      // known objects, in memory or spilled
  uint64_t num_in_memory = 0;
  uint64_t num_spilled = 0;
  uint64_t spilled_bytes = 0;    // bytes in spill files now
  uint64_t total_spilled = 0;    // objects spilled since start
  uint64_t total_restored = 0;   // objects restored since start
  uint64_t total_evicted = 0;    // secondary copies evicted since start
};

class NodeStore {
 public:
  /// Spill files go to `spill_dir` (created on first spill).
  NodeStore(std::unique_ptr<Allocator> allocator, std::string spill_dir);
  ~NodeStore();  // removes spill files it made

  /// Reserves `size` bytes for `id` (size may be 0). Errors:
  ///  - AlreadyExists: the id is known (sealed or being created);
  ///  - ResourceExhausted: it cannot fit even after evicting and spilling, or it is larger
  ///    than the whole store; the message starts "object store full:" and gives the
  ///    object's size, the capacity and what is in use.
  absl::StatusOr<ObjectLocation> Create(const ObjectId& id, uint64_t size,
                                        const ClientId& creator, const std::string& owner,
                                        bool primary = true);
  /// Makes a created object readable. FailedPrecondition: not created by `creator`,
  /// or already sealed; NotFound: unknown.
  absl::Status Seal(const ObjectId& id, const ClientId& creator);
  /// Drops an unsealed object of `creator` and returns its space.
  absl::Status Abort(const ObjectId& id, const ClientId& creator);

  /// Pins a sealed object for `client` and returns where it is. A spilled object is
  /// restored first (which may evict or spill others). NotFound: unknown, not sealed, or
  /// freed (only earlier readers still hold it); ResourceExhausted: it cannot be restored
  /// for lack of space; Internal: the spill file cannot be read.
  absl::StatusOr<ObjectLocation> Get(const ObjectId& id, const ClientId& client);
  /// Drops one pin of `client` (ignored when it holds none).
  void Release(const ObjectId& id, const ClientId& client);
  /// The owner is done with it: its space and its spill file are freed now, or when the
  /// last reader releases it (an unsealed one: when its creator seals or aborts it, since
  /// the creator is still writing into the block). Unknown ids are ignored.
  void Free(const ObjectId& id);

  /// The client is gone: its unsealed objects are aborted, its pins released.
  void DisconnectClient(const ClientId& client);
  /// The owner is gone: every object it owned is freed.
  void FreeOwnedBy(const std::string& owner);

  StoreStats Stats() const;
  std::vector<ObjectInfo> List() const;
  bool Contains(const ObjectId& id) const { return objects_.contains(id); }
  /// Sealed and not freed: Get would find it (restoring it when spilled).
  bool IsReadable(const ObjectId& id) const;
  uint64_t capacity() const { return allocator_->capacity(); }
  uint8_t* base() { return allocator_->base(); }

 private:
  struct Entry;
  /// Makes room for `size` bytes: evicts, then spills, never touching `keep`.
  absl::StatusOr<uint64_t> AllocateWithRoom(uint64_t size, const ObjectId* keep);
  bool EvictOne(const ObjectId* keep);
  bool SpillOne(const ObjectId* keep);
  absl::Status Restore(const ObjectId& id, Entry& entry);
  void DropMemory(Entry& entry);
  void Erase(const ObjectId& id);
  void Touch(const ObjectId& id, Entry& entry);
  std::string SpillPath(const ObjectId& id) const;
  std::string FullMessage(uint64_t size) const;

  std::unique_ptr<Allocator> allocator_;
  std::string spill_dir_;
  absl::flat_hash_map<ObjectId, std::unique_ptr<Entry>> objects_;
  std::list<ObjectId> lru_;   // sealed in-memory objects, least recently used first
  uint64_t used_ = 0;
  StoreStats totals_;
  std::string spill_error_;  // why a spill failed while making room, for FullMessage
};

}  // namespace lumen::object_store
