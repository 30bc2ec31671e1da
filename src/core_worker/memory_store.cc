#include "core_worker/memory_store.h"

namespace lumen::core {

void MemoryStore::Put(const ObjectId& id, ObjectPtr object) {
  std::vector<Callback> callbacks;
  {
    MutexLock lock(&mutex_);
    objects_[id] = object;
    auto it = callbacks_.find(id);
    if (it != callbacks_.end()) {
      callbacks = std::move(it->second);
      callbacks_.erase(it);
    }
  }
  ready_.SignalAll();
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
                         std::vector<ObjectPtr>* out) {
  out->assign(ids.size(), nullptr);
  MutexLock lock(&mutex_);
  while (true) {
    size_t ready = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      if ((*out)[i] == nullptr) {
        auto it = objects_.find(ids[i]);
        if (it != objects_.end()) (*out)[i] = it->second;
      }
      ready += (*out)[i] != nullptr;
    }
    if (ready >= num_required || shutdown_) return ready;
    if (deadline == std::chrono::steady_clock::time_point::max()) {
      ready_.Wait(&mutex_);
    } else {
      if (std::chrono::steady_clock::now() >= deadline) return ready;
      ready_.WaitUntil(&mutex_, deadline);
    }
  }
}

void MemoryStore::Shutdown() {
  absl::flat_hash_map<ObjectId, std::vector<Callback>> callbacks;
  {
    MutexLock lock(&mutex_);
    shutdown_ = true;
    callbacks.swap(callbacks_);
  }
  ready_.SignalAll();
  for (auto& [id, list] : callbacks) {
    for (auto& callback : list) callback(nullptr);
  }
}

size_t MemoryStore::Size() {
  MutexLock lock(&mutex_);
  return objects_.size();
}

}  // namespace lumen::core
