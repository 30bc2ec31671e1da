// The detail:: functions behind the header templates: translate between the API's
// types and the core worker's, and Status into typed exceptions, once, here.
#include "api/convert.h"
#include "api/runtime.h"
#include "common/resources.h"
#include "lumen/lumen.h"

namespace lumen {
namespace detail {
namespace {

thread_local std::vector<std::vector<RefData>*> t_collectors;

}  // namespace

void AddLocalRef(const std::string& id, const std::string& owner) noexcept {
  if (auto runtime = api::Current()) runtime->core->AddLocalRef(id, owner);
}

void RemoveLocalRef(const std::string& id) noexcept {
  if (auto runtime = api::Current()) runtime->core->RemoveLocalRef(id);
}

RefData Put(std::string data, std::vector<RefData> nested) {
  auto runtime = api::Require("Put");
  auto ref = runtime->core->Put(std::move(data), ToProtos(nested));
  if (!ref.ok()) ThrowStatus(ref.status());
  return FromProto(*ref);
}

RefData PutWith(size_t size, const std::function<void(char*)>& write) {
  auto runtime = api::Require("Put");
  auto ref = runtime->core->PutWith(
      size, [&write](uint8_t* out) { write(reinterpret_cast<char*>(out)); });
  if (!ref.ok()) ThrowStatus(ref.status());
  return FromProto(*ref);
}

std::vector<Buffer> Get(const std::vector<RefData>& refs, std::chrono::milliseconds timeout) {
  CheckSession(refs, "Get");
  auto runtime = api::Require("Get");
  std::vector<rpc::ObjectRefProto> protos;
  protos.reserve(refs.size());
  for (const auto& ref : refs) {
    if (ref.id.empty()) throw ObjectLostError("lumen: Get of a nil ObjectRef");
    protos.push_back(ToProto(ref));
  }
  auto objects = runtime->core->Get(protos, timeout);
  if (!objects.ok()) ThrowStatus(objects.status());
  std::vector<Buffer> out;
  out.reserve(objects->size());
  for (const core::ObjectPtr& object : *objects) {
    if (object->IsError()) ThrowObjectError(*object);
    std::string_view bytes = object->Bytes();
    out.push_back(Buffer{bytes.data(), bytes.size(), object, object->view != nullptr});
  }
  return out;
}

std::vector<bool> Wait(const std::vector<RefData>& refs, int num_returns,
                       std::chrono::milliseconds timeout) {
  CheckSession(refs, "Wait");
  auto runtime = api::Require("Wait");
  if (num_returns < 0 || size_t(num_returns) > refs.size() ||
      (num_returns == 0 && !refs.empty())) {
    throw ConfigError("lumen: Wait: num_returns must be between 1 and the number of refs (" +
                      std::to_string(refs.size()) + "), got " + std::to_string(num_returns));
  }
  if (refs.empty()) return {};
  return runtime->core->Wait(ToProtos(refs), num_returns, timeout);
}

void Cancel(const RefData& ref, bool force) {
  CheckSession(ref, "Cancel");
  auto runtime = api::Require("Cancel");
  absl::Status status = runtime->core->Cancel(ToProto(ref), force);
  if (!status.ok()) throw ConfigError("lumen: " + std::string(status.message()));
}

RefData SubmitTask(const std::string& function_name, std::vector<SerializedArg> args,
                   const TaskOptions& options) {
  auto runtime = api::Require("Task(...).Remote");
  std::vector<rpc::TaskArg> protos = ToTaskArgs(std::move(args));
  std::map<std::string, double> demand = options.resources;
  if (demand.empty()) demand["CPU"] = 1;
  core::TaskOptionsInternal internal{
      options.name, options.resources, options.max_retries, options.retry_exceptions,
      ToProto(options.scheduling, options.placement, demand, "Task(...).Remote")};
  auto ref = runtime->core->SubmitTask(function_name, std::move(protos), internal);
  if (!ref.ok()) ThrowStatus(ref.status());
  return FromProto(*ref);
}

void ValidateResource(const std::string& name, double amount) {
  absl::Status status = ResourceSet::ValidateDemand(name, amount);
  if (!status.ok()) throw ConfigError("lumen: " + std::string(status.message()));
}

void PushRefCollector(std::vector<RefData>* out) noexcept { t_collectors.push_back(out); }

void PopRefCollector() noexcept {
  if (!t_collectors.empty()) t_collectors.pop_back();
}

void OnRefSerialized(const RefData& ref) noexcept {
  if (!t_collectors.empty() && t_collectors.back() != nullptr) {
    t_collectors.back()->push_back(ref);
  }
}

void HoldRefs(const std::vector<RefData>& refs) noexcept {
  if (refs.empty()) return;
  if (auto runtime = api::Current()) {
    for (const RefData& ref : refs) runtime->core->HoldRef(ref.id);
  }
}

void RegisterBorrowed() noexcept {
  if (auto runtime = api::Current()) runtime->core->RegisterBorrowed();
}

void CheckInitialized(const char* call) { api::Require(call); }

}  // namespace detail

RuntimeContext GetRuntimeContext() {
  auto runtime = api::Require("GetRuntimeContext");
  const core::CoreWorkerOptions& options = runtime->core->options();
  RuntimeContext context;
  context.job_id_ = options.job_id.Hex();
  context.node_id_ = options.node_id.Hex();
  context.worker_id_ = options.worker_id.Hex();
  context.is_worker_ = runtime->is_worker;
  if (runtime->is_worker) {
    core::TaskContext task = runtime->core->CurrentTask();
    if (!task.task_id.empty()) context.task_id_ = TaskId::FromBinary(task.task_id).Hex();
    if (!task.actor_id.empty()) context.actor_id_ = ActorId::FromBinary(task.actor_id).Hex();
    context.resources_ = task.resources;
    context.gpu_ids_ = task.gpu_ids;
  }
  return context;
}

}  // namespace lumen
