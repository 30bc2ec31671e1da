#include "core_worker/task_executor.h"

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <typeinfo>

#include "common/ids.h"
#include "lumen/detail/registry.h"

namespace lumen::core {
namespace {

std::string Demangle(const char* name) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = (status == 0 && demangled) ? demangled : name;
  std::free(demangled);
  return out;
}

void SetError(rpc::TaskResult* result, const rpc::TaskSpec& spec, ErrorKind kind,
              const std::string& type, const std::string& message) {
  result->clear_returns();
  result->set_is_application_error(kind == ErrorKind::kTaskError);
  for (int i = 0; i < spec.num_returns(); ++i) {
    rpc::ReturnObject* ret = result->add_returns();
    ret->set_id(
        ObjectId::ForTaskReturn(TaskId::FromBinary(spec.task_id()), uint32_t(i + 1)).Binary());
    ret->set_is_error(true);
    ret->mutable_error()->set_kind(int(kind));
    ret->mutable_error()->set_type_name(type);
    ret->mutable_error()->set_message(message);
  }
}

}  // namespace

void TaskExecutor::Enqueue(const rpc::PushTasksRequest* request, rpc::PushTasksReply* reply,
                           rpc::Done done) {
  {
    MutexLock lock(&mutex_);
    if (!stopped_) {
      queue_.push_back(Item{request, reply, std::move(done)});
      work_.Signal();
      return;
    }
  }
  done(absl::UnavailableError("worker is exiting"));
}

void TaskExecutor::Stop() {
  std::deque<Item> left;
  {
    MutexLock lock(&mutex_);
    stopped_ = true;
    left.swap(queue_);
    work_.SignalAll();
  }
  for (Item& item : left) item.done(absl::UnavailableError("worker is exiting"));
}

void TaskExecutor::RejectQueued() {
  std::deque<Item> rejected;
  {
    MutexLock lock(&mutex_);
    rejected.swap(queue_);
  }
  for (Item& item : rejected) {
    item.reply->set_rejected(true);
    item.done(absl::OkStatus());
  }
}

TaskContext TaskExecutor::CurrentContext() {
  MutexLock lock(&mutex_);
  return context_;
}

void TaskExecutor::Run() {
  while (true) {
    Item item;
    {
      MutexLock lock(&mutex_);
      while (!stopped_ && queue_.empty()) work_.Wait(&mutex_);
      if (stopped_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    std::vector<int> gpu_ids(item.request->gpu_ids().begin(), item.request->gpu_ids().end());
    // A task sees exactly the devices it holds; others see what the worker inherited.
    static const std::optional<std::string> inherited = [] {
      const char* value = std::getenv("CUDA_VISIBLE_DEVICES");
      return value ? std::optional<std::string>(value) : std::nullopt;
    }();
    if (!gpu_ids.empty()) {
      std::string visible;
      for (int id : gpu_ids) {
        if (!visible.empty()) visible += ',';
        visible += std::to_string(id);
      }
      setenv("CUDA_VISIBLE_DEVICES", visible.c_str(), 1);
    } else if (inherited) {
      setenv("CUDA_VISIBLE_DEVICES", inherited->c_str(), 1);
    } else {
      unsetenv("CUDA_VISIBLE_DEVICES");
    }
    for (const rpc::TaskSpec& spec : item.request->tasks()) {
      {
        MutexLock lock(&mutex_);
        context_.task_id = spec.task_id();
        context_.resources = {spec.resources().begin(), spec.resources().end()};
        context_.gpu_ids = gpu_ids;
      }
      Execute(spec, item.reply->add_results());
    }
    {
      MutexLock lock(&mutex_);
      context_ = TaskContext{};
    }
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    item.done(absl::OkStatus());
  }
}

void TaskExecutor::Execute(const rpc::TaskSpec& spec, rpc::TaskResult* result) {
  result->set_task_id(spec.task_id());
  const detail::Invoker* invoker = detail::FindInvoker(spec.function_name());
  if (invoker == nullptr) {
    return SetError(result, spec, ErrorKind::kFunctionNotFound, "",
                    "function '" + spec.function_name() +
                        "' is not registered in the worker's executable (LUMEN_REMOTE)");
  }
  // Resolve arguments; borrowed ones are fetched from their owners.
  std::vector<ObjectPtr> fetched;
  std::vector<detail::ArgView> args;
  args.reserve(spec.args_size());
  for (const rpc::TaskArg& arg : spec.args()) {
    if (arg.has_ref()) {
      ObjectPtr object = fetch_(arg.ref());
      if (object->IsError()) {
        return SetError(result, spec, object->error, object->error_type,
                        object->error_message);
      }
      fetched.push_back(object);
      args.push_back({object->data.data(), object->data.size()});
    } else {
      args.push_back({arg.value().data(), arg.value().size()});
    }
  }
  std::string out;
  std::vector<detail::RefData> nested;
  try {
    (*invoker)(args, &out, &nested);
  } catch (const std::exception& e) {
    return SetError(result, spec, ErrorKind::kTaskError, Demangle(typeid(e).name()), e.what());
  } catch (...) {
    return SetError(result, spec, ErrorKind::kTaskError, "unknown",
                    "a non-std::exception was thrown");
  }
  rpc::ReturnObject* ret = result->add_returns();
  ret->set_id(ObjectId::ForTaskReturn(TaskId::FromBinary(spec.task_id()), 1).Binary());
  ret->set_data(std::move(out));
  for (const auto& ref : nested) {
    rpc::ObjectRefProto* proto = ret->add_nested();
    proto->set_id(ref.id);
    proto->set_owner(ref.owner);
  }
}

}  // namespace lumen::core
