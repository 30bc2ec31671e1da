// The core worker's actor calls: create, call, kill, look up by name, exit.
#include "common/logging.h"
#include "common/status.h"
#include "core_worker/core_worker.h"
#include "core_worker/task_deps.h"

namespace lumen::core {

absl::StatusOr<CreatedActor> CoreWorker::CreateActor(const std::string& factory,
                                                    const std::string& class_name,
                                                    std::vector<rpc::TaskArg> args,
                                                    const ActorCreationOptions& options) {
  ActorId actor_id = ActorId::FromRandom();
  rpc::RegisterActorRequest request;
  rpc::ActorSpec* spec = request.mutable_spec();
  spec->set_actor_id(actor_id.Binary());
  spec->set_job_id(options_.job_id.Binary());
  spec->set_owner_worker_id(options_.worker_id.Binary());
  spec->set_owner_endpoint(endpoint_);
  spec->set_name(options.name);
  spec->set_namespace_(options.namespace_);
  spec->set_detached(options.detached);
  spec->set_max_restarts(options.max_restarts);
  spec->set_max_task_retries(options.max_task_retries);
  spec->set_max_concurrency(options.max_concurrency);
  for (const auto& [name, amount] : options.resources) {
    if (amount > 0) (*spec->mutable_resources())[name] = amount;
  }
  spec->set_class_name(class_name);
  *spec->mutable_scheduling() = options.scheduling;
  PlaceInBundle(options.scheduling, spec->mutable_resources());
  auto registered = rpc::CallBlocking<rpc::RegisterActorRequest, rpc::RegisterActorReply>(
      [this](auto* ctx, const auto& req, auto* rep) { return gcs_->RegisterActor(ctx, req, rep); },
      request, 10000);
  if (!registered.ok()) return registered.status();
  CreatedActor created;
  created.actor_id = actor_id.Binary();
  if (options.name.empty() && !options.detached) {
    ObjectId handle = ObjectId::ForActorHandle(actor_id);
    refs_.AddOwned(handle);
    created.handle.set_id(handle.Binary());
    created.handle.set_owner(endpoint_);
  }

  auto creation = std::make_shared<rpc::TaskSpec>();
  creation->set_task_id(TaskId::FromRandom().Binary());
  creation->set_job_id(options_.job_id.Binary());
  creation->set_function_name(factory);
  creation->set_name(options.name.empty() ? factory : options.name);
  for (auto& arg : args) *creation->add_args() = std::move(arg);
  creation->set_num_returns(1);
  *creation->mutable_resources() = spec->resources();
  creation->set_owner(endpoint_);
  if (options_.is_worker) creation->set_parent_task_id(executor_->CurrentContext().task_id);
  // Arguments owned here are waited for and inlined: the GCS keeps the call for restarts.
  auto uses = std::make_shared<std::vector<ObjectId>>();
  auto nested = std::make_shared<bool>(false);
  {
    MutexLock lock(&creation_mutex_);
    creation_uses_[actor_id];  // resolving
  }
  rpcs_.Begin();
  ResolveOwnedArgs(creation.get(), endpoint_, &store_, &refs_, uses.get(), nested.get(),
                   [this, actor_id, creation, uses, nested](ObjectPtr failed) {
                     if (failed) {
                       actor_submitter_->MarkDead(
                           actor_id, "an argument of its factory failed: " +
                                         failed->error_message);
                       // A blocking GCS call: not on the thread that stored the argument.
                       timers_.Post([this, actor_id] {
                         KillActor(actor_id.Binary(), /*no_restart=*/true).IgnoreError();
                       });
                     } else if (!shutdown_) {
                       SendActorCreation(actor_id, *creation);
                     }
                     bool kept = false;
                     if (!failed && !shutdown_) {
                       MutexLock lock(&creation_mutex_);
                       auto it = creation_uses_.find(actor_id);
                       if (it != creation_uses_.end()) {
                         it->second = std::move(*uses);
                         kept = true;
                       }
                     }
                     if (!kept) {
                       for (const ObjectId& id : *uses) refs_.RemoveTaskUse(id);
                     }
                     rpcs_.End();
                   });
  return created;
}

void CoreWorker::SendActorCreation(const ActorId& actor_id, const rpc::TaskSpec& creation) {
  rpc::CreateActorRequest request;
  request.set_actor_id(actor_id.Binary());
  *request.mutable_creation_task() = creation;
  rpcs_.Begin();
  rpc::CallUnary<rpc::CreateActorRequest, rpc::CreateActorReply>(
      [this](auto... args) { gcs_->async()->CreateActor(args...); }, std::move(request),
      [this, actor_id](absl::Status status, rpc::CreateActorReply&&) {
        if (!status.ok() && !shutdown_) {
          actor_submitter_->MarkDead(actor_id, "the GCS did not take its creation: " +
                                                   std::string(status.message()));
        }
        rpcs_.End();
      },
      30000);
}

absl::StatusOr<rpc::ObjectRefProto> CoreWorker::SubmitActorTask(const std::string& actor_id,
                                                                const std::string& handle,
                                                                const std::string& method,
                                                                std::vector<rpc::TaskArg> args,
                                                                const std::string& name) {
  std::vector<ObjectId> promoted;
  LUMEN_RETURN_IF_ERROR(PromoteLargeArgs(&args, &promoted));
  rpc::TaskSpec spec;
  TaskId task_id = TaskId::FromRandom();
  spec.set_task_id(task_id.Binary());
  spec.set_job_id(options_.job_id.Binary());
  spec.set_function_name(method);
  spec.set_name(name);
  for (auto& arg : args) *spec.add_args() = std::move(arg);
  spec.set_num_returns(1);
  spec.set_owner(endpoint_);
  spec.set_actor_id(actor_id);
  if (options_.is_worker) spec.set_parent_task_id(executor_->CurrentContext().task_id);
  ObjectId return_id = ObjectId::ForTaskReturn(task_id, 1);
  refs_.AddOwned(return_id);
  absl::Status submitted = actor_submitter_->Submit(ActorId::FromBinary(actor_id), std::move(spec),
                                                    ObjectId::FromBinary(handle));
  ReleasePromoted(promoted);  // the pending call holds them now
  if (!submitted.ok()) {
    refs_.RemoveLocal(return_id);
    return submitted;
  }
  rpc::ObjectRefProto ref;
  ref.set_id(return_id.Binary());
  ref.set_owner(endpoint_);
  return ref;
}

absl::Status CoreWorker::KillActor(const std::string& actor_id, bool no_restart) {
  rpc::KillActorRequest request;
  request.set_actor_id(actor_id);
  request.set_no_restart(no_restart);
  auto killed = rpc::CallBlocking<rpc::KillActorRequest, rpc::KillActorReply>(
      [this](auto* ctx, const auto& req, auto* rep) { return gcs_->KillActor(ctx, req, rep); },
      request, 10000);
  if (!killed.ok()) return killed.status();
  if (no_restart) {
    actor_submitter_->MarkDead(ActorId::FromBinary(actor_id), "it was killed by Kill()");
  } else if (killed->killed_incarnation() >= 0) {
    actor_submitter_->MarkRestarting(ActorId::FromBinary(actor_id), killed->killed_incarnation());
  }
  return absl::OkStatus();
}

void CoreWorker::ReleaseCreationUses(const ActorId& actor) {
  std::vector<ObjectId> uses;
  {
    MutexLock lock(&creation_mutex_);
    auto it = creation_uses_.find(actor);
    if (it == creation_uses_.end()) return;
    uses = std::move(it->second);
    creation_uses_.erase(it);
  }
  for (const ObjectId& id : uses) refs_.RemoveTaskUse(id);
}

void CoreWorker::OnActorOutOfScope(const ActorId& actor) {
  ReleaseCreationUses(actor);
  rpc::KillActorRequest request;
  request.set_actor_id(actor.Binary());
  request.set_no_restart(true);
  request.set_out_of_scope(true);
  rpcs_.Begin();
  rpc::CallUnary<rpc::KillActorRequest, rpc::KillActorReply>(
      [this](auto... args) { gcs_->async()->KillActor(args...); }, std::move(request),
      [this, actor](absl::Status status, rpc::KillActorReply&&) {
        if (!status.ok()) {
          LUMEN_LOG_WARN("core worker: cannot end actor {}, whose handles are all gone: {}",
                         actor.Hex(), status.ToString());
        }
        rpcs_.End();
      },
      10000);
}

absl::StatusOr<rpc::GetNamedActorReply> CoreWorker::GetNamedActor(const std::string& name,
                                                                  const std::string& ns) {
  rpc::GetNamedActorRequest request;
  request.set_name(name);
  request.set_namespace_(ns);
  request.set_job_id(options_.job_id.Binary());
  return rpc::CallBlocking<rpc::GetNamedActorRequest, rpc::GetNamedActorReply>(
      [this](auto* ctx, const auto& req, auto* rep) { return gcs_->GetNamedActor(ctx, req, rep); },
      request, 10000);
}

void CoreWorker::ReportActorExit(const std::string& actor_id) {
  rpc::ReportActorExitRequest request;
  request.set_actor_id(actor_id);
  request.set_worker_id(options_.worker_id.Binary());
  auto reported = rpc::CallBlocking<rpc::ReportActorExitRequest, rpc::ReportActorExitReply>(
      [this](auto* ctx, const auto& req, auto* rep) {
        return gcs_->ReportActorExit(ctx, req, rep);
      },
      request, 10000);
  if (!reported.ok()) {
    LUMEN_LOG_WARN("actor {}: cannot report ExitActor to the GCS: {}",
                   ActorId::FromBinary(actor_id).Hex(), reported.status().ToString());
  }
}

}  // namespace lumen::core
