#include "core_worker/reference_counter.h"

namespace lumen::core {

template <typename Change>
void ReferenceCounter::Update(const ObjectId& id, Change&& change) {
  std::vector<Freed> freed;
  {
    MutexLock lock(&mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    change(it->second);
    MaybeFree(id, &freed);
  }
  RunCallbacks(freed);
}

void ReferenceCounter::MaybeFree(const ObjectId& id, std::vector<Freed>* freed) {
  std::vector<ObjectId> pending{id};
  while (!pending.empty()) {
    ObjectId next = pending.back();
    pending.pop_back();
    auto it = entries_.find(next);
    if (it == entries_.end() || it->second.Live()) continue;
    Entry& entry = it->second;
    freed->push_back(Freed{next, entry.owned, entry.owner, entry.registrations});
    std::vector<ObjectId> inners = std::move(entry.contains);
    entries_.erase(it);
    unregistered_.erase(next);
    for (const ObjectId& inner : inners) {
      auto inner_it = entries_.find(inner);
      if (inner_it == entries_.end()) continue;
      inner_it->second.contained -= 1;
      pending.push_back(inner);
    }
  }
}

void ReferenceCounter::RunCallbacks(const std::vector<Freed>& freed) {
  for (const Freed& f : freed) on_free_(f);
}

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
  if (!entry.owned && entry.owner.empty() && !owner.empty()) {
    entry.owner = owner;
    if (entry.registrations == 0) {
      unregistered_.insert(id);
      any_unregistered_.store(true, std::memory_order_relaxed);
    }
  }
}

void ReferenceCounter::RemoveLocal(const ObjectId& id) {
  Update(id, [](Entry& entry) { entry.local -= 1; });
}

void ReferenceCounter::AddTaskUse(const ObjectId& id) {
  MutexLock lock(&mutex_);
  entries_[id].task_uses += 1;
}

void ReferenceCounter::RemoveTaskUse(const ObjectId& id) {
  Update(id, [](Entry& entry) { entry.task_uses -= 1; });
}

void ReferenceCounter::AddContained(
    const ObjectId& outer, const google::protobuf::RepeatedPtrField<rpc::ObjectRefProto>& inners,
    const std::string& self, bool registered) {
  if (inners.empty()) return;
  std::vector<Freed> freed;
  {
    MutexLock lock(&mutex_);
    std::vector<ObjectId> ids;
    ids.reserve(inners.size());
    for (const rpc::ObjectRefProto& inner : inners) {
      ObjectId id = ObjectId::FromBinary(inner.id());
      Entry& entry = entries_[id];
      entry.contained += 1;
      if (!entry.owned && inner.owner() != self) {
        if (entry.owner.empty()) entry.owner = inner.owner();
        if (registered) entry.registrations += 1;
      }
      ids.push_back(id);
    }
    auto it = entries_.find(outer);
    if (it != entries_.end()) {
      Entry& entry = it->second;
      entry.contains.insert(entry.contains.end(), ids.begin(), ids.end());
    } else {  // the outer object is already gone: so are its holds
      for (const ObjectId& id : ids) {
        entries_[id].contained -= 1;
        MaybeFree(id, &freed);
      }
    }
  }
  RunCallbacks(freed);
}

bool ReferenceCounter::AddBorrower(const ObjectId& id, const std::string& borrower) {
  MutexLock lock(&mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.owned) return false;
  it->second.borrowers[borrower] += 1;
  return true;
}

void ReferenceCounter::RemoveBorrower(const ObjectId& id, const std::string& borrower,
                                      int64_t count) {
  Update(id, [&](Entry& entry) {
    auto found = entry.borrowers.find(borrower);
    if (found == entry.borrowers.end()) return;
    found->second -= count;
    if (found->second <= 0) entry.borrowers.erase(found);
  });
}

void ReferenceCounter::RemoveBorrowerEverywhere(const std::string& borrower) {
  std::vector<Freed> freed;
  {
    MutexLock lock(&mutex_);
    std::vector<ObjectId> touched;
    for (auto& [id, entry] : entries_) {
      if (entry.borrowers.erase(borrower) > 0) touched.push_back(id);
    }
    for (const ObjectId& id : touched) MaybeFree(id, &freed);
  }
  RunCallbacks(freed);
}

std::vector<ReferenceCounter::Unregistered> ReferenceCounter::TakeUnregistered() {
  std::vector<Unregistered> out;
  if (!any_unregistered_.load(std::memory_order_relaxed)) return out;
  MutexLock lock(&mutex_);
  for (const ObjectId& id : unregistered_) {
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.owned || it->second.registrations > 0) continue;
    it->second.task_uses += 1;  // held until FinishRegistration
    out.push_back({id, it->second.owner});
  }
  unregistered_.clear();
  any_unregistered_.store(false, std::memory_order_relaxed);
  return out;
}

void ReferenceCounter::FinishRegistration(const ObjectId& id, bool ok) {
  Update(id, [ok](Entry& entry) {
    if (ok) entry.registrations += 1;
    entry.task_uses -= 1;
  });
}

std::vector<ReferenceCounter::Freed> ReferenceCounter::TakeAllRegistered() {
  std::vector<Freed> out;
  MutexLock lock(&mutex_);
  for (auto& [id, entry] : entries_) {
    if (entry.owned || entry.registrations <= 0) continue;
    out.push_back(Freed{id, false, entry.owner, entry.registrations});
    entry.registrations = 0;
  }
  return out;
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

int64_t ReferenceCounter::BorrowerCount(const ObjectId& id, const std::string& borrower) {
  MutexLock lock(&mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return 0;
  auto found = it->second.borrowers.find(borrower);
  return found == it->second.borrowers.end() ? 0 : found->second;
}

}  // namespace lumen::core
