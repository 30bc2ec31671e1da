#include "core_worker/reference_counter.h"

namespace lumen::core {

void ReferenceCounter::AddOwned(const ObjectId& id) {
  MutexLock lock(&mutex_);
  Entry& entry = entries_[id];
  entry.owned = true;
  entry.local += 1;
}

void ReferenceCounter::AddLocal(const ObjectId& id, const std::string& owner) {
  MutexLock lock(&mutex_);
  Entry& entry = entries_[id];
  entry.local += 1;
  if (!entry.owned && entry.owner.empty()) entry.owner = owner;
}

void ReferenceCounter::MaybeFree(const ObjectId& id, Entry& entry, bool* freed,
                                 bool* owned) {
  if (entry.local > 0 || entry.task_uses > 0 || entry.escaped) return;
  *owned = entry.owned;
  entries_.erase(id);
  *freed = true;
}

void ReferenceCounter::RemoveLocal(const ObjectId& id) {
  bool freed = false, owned = false;
  {
    MutexLock lock(&mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    it->second.local -= 1;
    MaybeFree(id, it->second, &freed, &owned);
  }
  if (freed) on_free_(id, owned);
}

void ReferenceCounter::AddTaskUse(const ObjectId& id) {
  MutexLock lock(&mutex_);
  entries_[id].task_uses += 1;
}

void ReferenceCounter::RemoveTaskUse(const ObjectId& id) {
  bool freed = false, owned = false;
  {
    MutexLock lock(&mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    it->second.task_uses -= 1;
    MaybeFree(id, it->second, &freed, &owned);
  }
  if (freed) on_free_(id, owned);
}

void ReferenceCounter::MarkEscaped(const ObjectId& id) {
  MutexLock lock(&mutex_);
  auto it = entries_.find(id);
  if (it != entries_.end() && it->second.owned) it->second.escaped = true;
}

bool ReferenceCounter::IsOwnedAndLive(const ObjectId& id) {
  MutexLock lock(&mutex_);
  auto it = entries_.find(id);
  return it != entries_.end() && it->second.owned;
}

std::string ReferenceCounter::OwnerOf(const ObjectId& id) {
  MutexLock lock(&mutex_);
  auto it = entries_.find(id);
  return it == entries_.end() ? "" : it->second.owner;
}

size_t ReferenceCounter::NumTracked() {
  MutexLock lock(&mutex_);
  return entries_.size();
}

}  // namespace lumen::core
