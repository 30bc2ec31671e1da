// lumen::GetMemoryInfo and MemorySummary: the node store's statistics, from the raylet.
#include <algorithm>
#include <map>
#include <sstream>

#include "api/convert.h"
#include "api/runtime.h"
#include "common/ids.h"
#include "lumen/lumen.h"
#include "object_store/format_bytes.h"

namespace lumen {

MemoryInfo GetMemoryInfo(bool include_objects) {
  auto runtime = api::Require("GetMemoryInfo");
  core::StoreClient* store = runtime->core->store_client();
  if (store == nullptr) throw Error("lumen: GetMemoryInfo: no object store connected");
  auto stats = store->Stats(include_objects);
  if (!stats.ok()) detail::ThrowStatus(stats.status());
  MemoryInfo info;
  info.capacity = stats->capacity();
  info.used = stats->used();
  info.num_objects = stats->num_objects();
  info.num_spilled = stats->num_spilled();
  info.spilled_bytes = stats->spilled_bytes();
  info.total_spilled = stats->total_spilled();
  info.total_restored = stats->total_restored();
  info.total_evicted = stats->total_evicted();
  info.total_pulled = stats->total_pulled();
  info.pulled_bytes = stats->pulled_bytes();
  info.spill_dir = stats->spill_dir();
  info.tracked_in_process = runtime->core->NumTrackedRefs();
  for (const auto& object : stats->objects()) {
    StoredObjectInfo out;
    out.id = ObjectId::FromBinary(object.id()).Hex();
    out.owner = object.owner();
    out.size = object.size();
    out.sealed = object.sealed();
    out.in_memory = object.in_memory();
    out.spilled = object.spilled();
    out.readers = object.readers();
    info.objects.push_back(std::move(out));
  }
  return info;
}

std::string MemorySummary() {
  using object_store::ReadableBytes;
  MemoryInfo info = GetMemoryInfo(true);
  std::ostringstream out;
  out << "object store: " << ReadableBytes(info.used) << " of " << ReadableBytes(info.capacity)
      << " used, " << info.num_objects << " object(s), " << info.num_spilled << " spilled ("
      << ReadableBytes(info.spilled_bytes) << " in " << info.spill_dir << ")\n"
      << "since start: " << info.total_spilled << " spilled, " << info.total_restored
      << " restored, " << info.total_evicted << " evicted, " << info.total_pulled
      << " pulled from other nodes (" << ReadableBytes(info.pulled_bytes) << ")\n"
      << "this process owns or borrows " << info.tracked_in_process << " live object(s)\n";
  std::map<std::string, std::vector<const StoredObjectInfo*>> by_owner;
  for (const auto& object : info.objects) by_owner[object.owner].push_back(&object);
  for (auto& [owner, objects] : by_owner) {
    uint64_t bytes = 0;
    for (const auto* object : objects) bytes += object->size;
    out << "owner " << owner << ": " << objects.size() << " object(s), "
        << ReadableBytes(bytes) << "\n";
    std::sort(objects.begin(), objects.end(),
              [](auto* a, auto* b) { return a->size > b->size; });
    for (const auto* object : objects) {
      out << "  " << object->id << "  " << ReadableBytes(object->size)
          << (object->in_memory ? "  in memory" : "") << (object->spilled ? "  spilled" : "")
          << (object->sealed ? "" : "  being created");
      if (object->readers > 0) out << "  pinned by " << object->readers << " reader(s)";
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace lumen
