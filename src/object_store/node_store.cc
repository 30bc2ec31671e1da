#include "object_store/node_store.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "object_store/format_bytes.h"

namespace lumen::object_store {
namespace {

absl::Status WriteSpillFile(const std::string& dir, const std::string& path, const uint8_t* data,
                            uint64_t size) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create spill directory ", dir, ": ", error.message()));
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::string reason = std::strerror(errno);
    std::filesystem::remove(path, error);  // a partial file could never be restored
    return absl::InternalError(absl::StrCat("cannot write spill file ", path, ": ", reason));
  }
  return absl::OkStatus();
}

absl::Status ReadSpillFile(const std::string& path, uint8_t* data, uint64_t size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InternalError(
        absl::StrCat("cannot open spill file ", path, ": ", std::strerror(errno)));
  }
  in.read(reinterpret_cast<char*>(data), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) {
    return absl::InternalError(absl::StrCat("spill file ", path, " is shorter than its object (",
                                            in.gcount(), " of ", size, " bytes)"));
  }
  return absl::OkStatus();
}

absl::Status NotInStore(const ObjectId& id) {
  return absl::NotFoundError(absl::StrCat("object ", id.Hex(), " is not in the store"));
}

}  // namespace

struct NodeStore::Entry {
  std::string owner;
  uint64_t size = 0;
  ClientId creator;  // while unsealed
  bool sealed = false;
  bool primary = true;
  std::optional<uint64_t> offset;  // set while a copy is in memory
  bool spilled = false;            // the spill file exists
  absl::flat_hash_map<ClientId, int> pins;
  int num_pins = 0;  // sum of pins
  // Freed while someone still uses the bytes (a reader's pin, or the creator writing):
  // erased when the last of them lets go.
  bool pending_free = false;
  bool in_lru = false;  // sealed and in memory
  std::list<ObjectId>::iterator lru_pos;
};

NodeStore::NodeStore(std::unique_ptr<Allocator> allocator, std::string spill_dir)
    : allocator_(std::move(allocator)), spill_dir_(std::move(spill_dir)) {}

NodeStore::~NodeStore() {
  for (auto& [id, entry] : objects_) {
    std::error_code ignored;
    if (entry->spilled) std::filesystem::remove(SpillPath(id), ignored);
  }
}

absl::StatusOr<ObjectLocation> NodeStore::Create(const ObjectId& id, uint64_t size,
                                                 const ClientId& creator, const std::string& owner,
                                                 bool primary) {
  if (objects_.contains(id)) {
    return absl::AlreadyExistsError(absl::StrCat("object ", id.Hex(), " already exists"));
  }
  auto offset = AllocateWithRoom(size, nullptr);
  if (!offset.ok()) return offset.status();
  auto entry = std::make_unique<Entry>();
  entry->owner = owner;
  entry->size = size;
  entry->creator = creator;
  entry->primary = primary;
  entry->offset = *offset;
  objects_[id] = std::move(entry);
  return ObjectLocation{*offset, size};
}

absl::Status NodeStore::Seal(const ObjectId& id, const ClientId& creator) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return NotInStore(id);
  Entry& entry = *it->second;
  if (entry.sealed) {
    return absl::FailedPreconditionError(absl::StrCat("object ", id.Hex(), " is sealed"));
  }
  if (entry.creator != creator) {
    return absl::FailedPreconditionError(
        absl::StrCat("object ", id.Hex(), " is being created by another client"));
  }
  if (entry.pending_free) {  // the owner let go while it was written: nobody can want it
    Erase(id);
    return absl::OkStatus();
  }
  entry.sealed = true;
  entry.creator.clear();
  entry.lru_pos = lru_.insert(lru_.end(), id);
  entry.in_lru = true;
  return absl::OkStatus();
}

absl::Status NodeStore::Abort(const ObjectId& id, const ClientId& creator) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return NotInStore(id);
  Entry& entry = *it->second;
  if (entry.sealed) {
    return absl::FailedPreconditionError(
        absl::StrCat("object ", id.Hex(), " is sealed and cannot be aborted"));
  }
  if (entry.creator != creator) {
    return absl::FailedPreconditionError(
        absl::StrCat("object ", id.Hex(), " is being created by another client"));
  }
  Erase(id);
  return absl::OkStatus();
}

absl::StatusOr<ObjectLocation> NodeStore::Get(const ObjectId& id, const ClientId& client) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return NotInStore(id);
  Entry& entry = *it->second;
  if (!entry.sealed) {
    return absl::NotFoundError(absl::StrCat("object ", id.Hex(), " is not sealed yet"));
  }
  if (entry.pending_free) {
    return absl::NotFoundError(absl::StrCat("object ", id.Hex(), " has been freed"));
  }
  if (!entry.offset) LUMEN_RETURN_IF_ERROR(Restore(id, entry));
  ++entry.pins[client];
  ++entry.num_pins;
  Touch(id, entry);
  return ObjectLocation{*entry.offset, entry.size};
}

bool NodeStore::IsReadable(const ObjectId& id) const {
  auto it = objects_.find(id);
  return it != objects_.end() && it->second->sealed && !it->second->pending_free;
}

void NodeStore::Release(const ObjectId& id, const ClientId& client) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  Entry& entry = *it->second;
  auto pin = entry.pins.find(client);
  if (pin == entry.pins.end()) return;
  if (--pin->second == 0) entry.pins.erase(pin);
  --entry.num_pins;
  if (entry.num_pins == 0 && entry.pending_free) Erase(id);
}

void NodeStore::Free(const ObjectId& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  Entry& entry = *it->second;
  // Readers map the bytes, and an unsealed object's creator is still writing them: the
  // block must not be handed to another object before they are done.
  if (entry.num_pins > 0 || !entry.sealed) {
    entry.pending_free = true;
  } else {
    Erase(id);
  }
}

void NodeStore::DisconnectClient(const ClientId& client) {
  std::vector<ObjectId> aborted, unpinned;
  for (auto& [id, entry] : objects_) {
    if (!entry->sealed && entry->creator == client) aborted.push_back(id);
    if (entry->pins.contains(client)) unpinned.push_back(id);
  }
  for (const ObjectId& id : aborted) Erase(id);
  for (const ObjectId& id : unpinned) {
    Entry& entry = *objects_.at(id);
    entry.num_pins -= entry.pins[client];
    entry.pins.erase(client);
    if (entry.num_pins == 0 && entry.pending_free) Erase(id);
  }
}

void NodeStore::FreeOwnedBy(const std::string& owner) {
  std::vector<ObjectId> owned;
  for (auto& [id, entry] : objects_) {
    if (entry->owner == owner) owned.push_back(id);
  }
  for (const ObjectId& id : owned) Free(id);
}

StoreStats NodeStore::Stats() const {
  StoreStats stats = totals_;
  stats.capacity = capacity();
  stats.used = used_;
  stats.num_objects = objects_.size();
  for (const auto& [id, entry] : objects_) {
    stats.num_in_memory += entry->offset.has_value();
    if (entry->spilled) {
      ++stats.num_spilled;
      stats.spilled_bytes += entry->size;
    }
  }
  return stats;
}

std::vector<ObjectInfo> NodeStore::List() const {
  std::vector<ObjectInfo> list;
  list.reserve(objects_.size());
  for (const auto& [id, entry] : objects_) {
    list.push_back(ObjectInfo{id, entry->owner, entry->size, entry->sealed, entry->primary,
                              entry->offset.has_value(), entry->spilled, entry->num_pins});
  }
  return list;
}

absl::StatusOr<uint64_t> NodeStore::AllocateWithRoom(uint64_t size, const ObjectId* keep) {
  if (size > capacity()) {
    return absl::ResourceExhaustedError(absl::StrCat("object store full: the object is ",
                                                     FormatBytes(size), " but the whole store is ",
                                                     FormatBytes(capacity())));
  }
  spill_error_.clear();
  while (true) {
    // The capacity is enforced here; the allocator can still refuse a block that would
    // fit by count when the free space is fragmented, and then more must go as well.
    if (used_ + size <= capacity()) {
      std::optional<uint64_t> offset =
          size == 0 ? std::optional<uint64_t>(0) : allocator_->Allocate(size);
      if (offset) {
        used_ += size;
        return *offset;
      }
    }
    if (!EvictOne(keep) && !SpillOne(keep)) {
      return absl::ResourceExhaustedError(FullMessage(size));
    }
  }
}

bool NodeStore::EvictOne(const ObjectId* keep) {
  for (const ObjectId& candidate : lru_) {
    Entry& entry = *objects_.at(candidate);
    // A primary without a spill file is the only copy: it must be spilled, not dropped.
    // Empty objects free nothing.
    if (entry.num_pins > 0 || entry.size == 0 || (entry.primary && !entry.spilled)) continue;
    if (keep != nullptr && candidate == *keep) continue;
    ObjectId id = candidate;  // `candidate` lives in lru_, which the next lines change
    ++totals_.total_evicted;
    if (entry.spilled) {
      DropMemory(entry);
    } else {
      Erase(id);
    }
    return true;
  }
  return false;
}

bool NodeStore::SpillOne(const ObjectId* keep) {
  for (const ObjectId& candidate : lru_) {
    Entry& entry = *objects_.at(candidate);
    if (entry.num_pins > 0 || entry.size == 0 || !entry.primary || entry.spilled) continue;
    if (keep != nullptr && candidate == *keep) continue;
    absl::Status written =
        WriteSpillFile(spill_dir_, SpillPath(candidate), base() + *entry.offset, entry.size);
    if (!written.ok()) {
      // Try the next one: the disk may still take a smaller object.
      spill_error_ = std::string(written.message());
      continue;
    }
    entry.spilled = true;
    ++totals_.total_spilled;
    DropMemory(entry);
    return true;
  }
  return false;
}

absl::Status NodeStore::Restore(const ObjectId& id, Entry& entry) {
  LUMEN_ASSIGN_OR_RETURN(uint64_t offset, AllocateWithRoom(entry.size, &id));
  absl::Status read = ReadSpillFile(SpillPath(id), base() + offset, entry.size);
  if (!read.ok()) {
    if (entry.size > 0) allocator_->Free(offset);
    used_ -= entry.size;
    return read;
  }
  // Still primary, and the file stays: this copy can be dropped again without a write.
  entry.offset = offset;
  entry.lru_pos = lru_.insert(lru_.end(), id);
  entry.in_lru = true;
  ++totals_.total_restored;
  return absl::OkStatus();
}

void NodeStore::DropMemory(Entry& entry) {
  if (entry.in_lru) {
    lru_.erase(entry.lru_pos);
    entry.in_lru = false;
  }
  if (!entry.offset) return;
  if (entry.size > 0) allocator_->Free(*entry.offset);
  used_ -= entry.size;
  entry.offset.reset();
}

void NodeStore::Erase(const ObjectId& id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return;
  DropMemory(*it->second);
  if (it->second->spilled) {
    std::error_code ignored;
    std::filesystem::remove(SpillPath(id), ignored);
  }
  objects_.erase(it);
}

void NodeStore::Touch(const ObjectId& id, Entry& entry) {
  if (entry.in_lru) lru_.splice(lru_.end(), lru_, entry.lru_pos);
}

std::string NodeStore::SpillPath(const ObjectId& id) const {
  return (std::filesystem::path(spill_dir_) / id.Hex()).string();
}

std::string NodeStore::FullMessage(uint64_t size) const {
  uint64_t pinned = 0, creating = 0;
  for (const auto& [id, entry] : objects_) {
    if (!entry->sealed) {
      creating += entry->size;
    } else if (entry->offset && entry->num_pins > 0) {
      pinned += entry->size;
    }
  }
  std::string message = absl::StrCat(
      "object store full: cannot fit ", FormatBytes(size), ": capacity ", FormatBytes(capacity()),
      ", in use ", FormatBytes(used_), ", of which ", ReadableBytes(pinned),
      " pinned by readers and ", ReadableBytes(creating), " being created");
  if (used_ + size <= capacity()) absl::StrAppend(&message, "; the free space is fragmented");
  if (!spill_error_.empty()) absl::StrAppend(&message, "; spilling failed: ", spill_error_);
  return message;
}

}  // namespace lumen::object_store
