#include "core_worker/memory_store.h"

#include <algorithm>

namespace lumen::core {

void MemoryStore::Put(const ObjectId& id, ObjectPtr object) {
  std::vector<Callback> callbacks;
  std::vector<std::shared_ptr<Waker>> sleepers;
  {
    MutexLock lock(&mutex_);
    objects_[id] = object;
    auto it = callbacks_.find(id);
    if (it != callbacks_.end()) {
      callbacks = std::move(it->second);
      callbacks_.erase(it);
    }
    if (!sleepers_.empty()) sleepers = sleepers_;
  }
  ready_.SignalAll();
  for (const auto& waker : sleepers) waker->Wake();
  for (auto& callback : callbacks) callback(object);
}

ObjectPtr MemoryStore::GetIfReady(const ObjectId& id) {
  MutexLock lock(&mutex_);
  auto it = objects_.find(id);
  return it == objects_.end() ? nullptr : it->second;
}

void MemoryStore::Erase(const ObjectId& id) {
  MutexLock lock(&mutex_);
  objects_.erase(id);
}

void MemoryStore::OnReady(const ObjectId& id, Callback callback) {
  ObjectPtr object;
  {
    MutexLock lock(&mutex_);
    auto it = objects_.find(id);
    if (it != objects_.end()) {
      object = it->second;
    } else if (!shutdown_) {
      callbacks_[id].push_back(std::move(callback));
      return;
    }
  }
  callback(object);
}

size_t MemoryStore::Wait(const std::vector<ObjectId>& ids, size_t num_required,
                         std::chrono::steady_clock::time_point deadline,
                         std::vector<ObjectPtr>* out, const Sleeper* sleeper) {
  out->assign(ids.size(), nullptr);
  // Whether ids[i] is here (looked up at most until found).
  auto here = [&](size_t i) {
    if ((*out)[i] == nullptr) {
      auto it = objects_.find(ids[i]);
      if (it != objects_.end()) (*out)[i] = it->second;
    }
    return (*out)[i] != nullptr;
  };
  // Waiting for all of them: each scan stops at the first one missing (results come
  // mostly in order), so that a Get of n results woken n times costs O(n) lookups, not
  // O(n^2). `prefix` of them are known to be here.
  const bool all = num_required >= ids.size();
  size_t prefix = 0;
  MutexLock lock(&mutex_);
  while (true) {
    size_t ready = 0;
    if (all) {
      while (prefix < ids.size() && here(prefix)) ++prefix;
      ready = prefix;
    } else {
      for (size_t i = 0; i < ids.size(); ++i) ready += here(i);
    }
    if (ready >= num_required) return ready;
    bool timed_out = deadline != std::chrono::steady_clock::time_point::max() &&
                     std::chrono::steady_clock::now() >= deadline;
    if (shutdown_ || timed_out) {
      // Giving up: report everything that is here, past the first missing one too.
      for (size_t i = all ? prefix : ids.size(); i < ids.size(); ++i) ready += here(i);
      return ready;
    }
    if (sleeper != nullptr) {
      sleepers_.push_back(sleeper->waker);
      mutex_.Unlock();
      bool can = sleeper->sleep(deadline);
      mutex_.Lock();
      sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), sleeper->waker));
      if (!can) sleeper = nullptr;
    } else if (deadline == std::chrono::steady_clock::time_point::max()) {
      ready_.Wait(&mutex_);
    } else {
      ready_.WaitUntil(&mutex_, deadline);
    }
  }
}

void MemoryStore::Shutdown() {
  absl::flat_hash_map<ObjectId, std::vector<Callback>> callbacks;
  std::vector<std::shared_ptr<Waker>> sleepers;
  {
    MutexLock lock(&mutex_);
    shutdown_ = true;
    callbacks.swap(callbacks_);
    sleepers = sleepers_;
  }
  ready_.SignalAll();
  for (const auto& waker : sleepers) waker->Wake();
  for (auto& [id, list] : callbacks) {
    for (auto& callback : list) callback(nullptr);
  }
}

size_t MemoryStore::Size() {
  MutexLock lock(&mutex_);
  return objects_.size();
}

}  // namespace lumen::core
