#include "core_worker/task_deps.h"

#include <atomic>
#include <memory>

#include "common/mutex.h"

namespace lumen::core {

void ResolveOwnedArgs(rpc::TaskSpec* spec, const std::string& self_endpoint,
                      MemoryStore* store, ReferenceCounter* refs,
                      std::vector<ObjectId>* task_uses, bool* has_nested,
                      std::function<void(ObjectPtr failed)> done) {
  struct Resolution {
    std::atomic<int> remaining{1};
    Mutex mutex;
    ObjectPtr failed;
    std::function<void(ObjectPtr)> done;
  };
  auto resolution = std::make_shared<Resolution>();
  resolution->done = std::move(done);
  std::vector<std::pair<int, ObjectId>> local;
  for (int i = 0; i < spec->args_size(); ++i) {
    const rpc::TaskArg& arg = spec->args(i);
    if (arg.nested_size() > 0) *has_nested = true;
    for (const rpc::ObjectRefProto& nested : arg.nested()) {  // kept until the reply
      ObjectId id = ObjectId::FromBinary(nested.id());
      refs->AddTaskUse(id);
      task_uses->push_back(id);
    }
    if (!arg.has_ref()) continue;
    ObjectId id = ObjectId::FromBinary(arg.ref().id());
    refs->AddTaskUse(id);
    task_uses->push_back(id);
    if (arg.ref().owner() == self_endpoint) local.emplace_back(i, id);
  }
  resolution->remaining += int(local.size());
  auto on_resolved = [resolution] {
    if (--resolution->remaining > 0) return;
    ObjectPtr failed;
    {
      MutexLock lock(&resolution->mutex);
      failed = resolution->failed;
    }
    resolution->done(failed);
  };
  for (const auto& [index, id] : local) {
    store->OnReady(id, [spec, has_nested, resolution, index = index,
                        on_resolved](ObjectPtr object) {
      {
        MutexLock lock(&resolution->mutex);
        if (object == nullptr) {
          resolution->failed = StoredObject::MakeError(
              ErrorKind::kObjectLost, "an argument of the task was lost at shutdown");
        } else if (object->IsError()) {
          resolution->failed = object;
        } else if (object->in_store) {
          // Stays a reference: the worker reads it from the node store, without a copy.
        } else {
          rpc::TaskArg* arg = spec->mutable_args(index);
          arg->set_value(object->data);
          for (const auto& nested : object->nested) *arg->add_nested() = nested;
          if (!object->nested.empty()) *has_nested = true;
        }
      }
      on_resolved();
    });
  }
  on_resolved();
}

std::string TaskLabel(const rpc::TaskSpec& spec) {
  return spec.name().empty() ? spec.function_name() : spec.name();
}

void RunAll(std::vector<std::function<void()>>& actions) {
  for (auto& action : actions) action();
  actions.clear();
}

bool IsConnectionLoss(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

void StoreTaskReturns(const rpc::TaskSpec& spec, const rpc::TaskResult* result,
                      ObjectPtr error, const std::vector<ObjectId>& task_uses,
                      MemoryStore* store, ReferenceCounter* refs,
                      const FreeStored& free_stored) {
  for (int i = 0; i < spec.num_returns(); ++i) {
    ObjectId id = ObjectId::ForTaskReturn(TaskId::FromBinary(spec.task_id()), i + 1);
    const rpc::ReturnObject* ret =
        !error && result && i < result->returns_size() ? &result->returns(i) : nullptr;
    bool in_store = ret != nullptr && ret->in_store() && !ret->is_error();
    // The worker registered this process as a borrower of the refs inside the result;
    // the result keeps them (and lets them go now if nobody wants it).
    if (ret != nullptr) refs->AddContained(id, ret->nested(), spec.owner(), /*registered=*/true);
    if (!refs->IsOwnedAndLive(id)) {  // nobody wants it any more
      if (in_store && free_stored) free_stored(id, ret->store_node_id());
      continue;
    }
    ObjectPtr object = error;
    if (ret != nullptr) {
      auto stored = StoredObject::FromProto(ret->data(), ret->is_error(), ret->error(),
                                            ret->in_store(), ret->store_node_id(),
                                            ret->size());
      stored->nested.assign(ret->nested().begin(), ret->nested().end());
      object = stored;
    }
    if (!object) {
      object = StoredObject::MakeError(ErrorKind::kInternal, "the worker returned no value");
    }
    store->Put(id, object);
    // The last ref may have gone between the check and the Put: then nobody frees it.
    if (!refs->IsOwnedAndLive(id)) {
      store->Erase(id);
      if (in_store && free_stored) free_stored(id, ret->store_node_id());
    }
  }
  for (const ObjectId& id : task_uses) refs->RemoveTaskUse(id);
}

}  // namespace lumen::core
