// The detail:: actor entry points behind lumen/actor.h.
#include "api/convert.h"
#include "api/runtime.h"
#include "common/demangle.h"
#include "lumen/lumen.h"

namespace lumen::detail {

CreatedActor CreateActor(const std::string& factory_name, const std::string& class_name,
                        std::vector<SerializedArg> args, const ActorOptions& options) {
  auto runtime = api::Require("Actor(...).Remote");
  core::ActorCreationOptions internal{options.name,
                                      options.namespace_,
                                      options.detached,
                                      options.resources,
                                      options.max_restarts,
                                      options.max_task_retries,
                                      options.max_concurrency,
                                      ToProto(options.scheduling, options.placement,
                                              options.resources, "Actor(...).Remote")};
  auto created = runtime->core->CreateActor(factory_name, class_name,
                                            ToTaskArgs(std::move(args)), internal);
  if (created.ok()) {
    CreatedActor out{created->actor_id, {}};
    if (!created->handle.id().empty()) out.handle = FromProto(created->handle);
    return out;
  }
  std::string why(created.status().message());
  if (created.status().code() == absl::StatusCode::kAlreadyExists) {
    throw ConfigError("lumen: cannot create the actor: " + why);
  }
  throw Error("lumen: cannot create the actor: " + why);
}

RefData SubmitActorTask(const std::string& actor_id, const std::string& handle_id,
                        const std::string& method_name, std::vector<SerializedArg> args,
                        const std::string& name) {
  auto runtime = api::Require("ActorHandle::Task(...).Remote");
  auto ref = runtime->core->SubmitActorTask(actor_id, handle_id, method_name,
                                            ToTaskArgs(std::move(args)), name);
  if (ref.ok()) return FromProto(*ref);
  if (ref.status().code() == absl::StatusCode::kFailedPrecondition) {
    throw ActorDiedError("lumen: " + std::string(ref.status().message()));
  }
  ThrowStatus(ref.status());
}

void KillActor(const std::string& actor_id, bool no_restart) {
  auto runtime = api::Require("ActorHandle::Kill");
  if (actor_id.empty()) throw ActorDiedError("lumen: Kill on a nil ActorHandle");
  absl::Status killed = runtime->core->KillActor(actor_id, no_restart);
  if (killed.ok()) return;
  if (killed.code() == absl::StatusCode::kNotFound) {
    throw ActorDiedError("lumen: Kill: the GCS knows no actor with this id");
  }
  throw Error("lumen: Kill: " + std::string(killed.message()));
}

std::string GetNamedActor(const std::string& name, const std::string& namespace_,
                          const std::string& class_name) {
  auto runtime = api::Require("GetActor");
  auto reply = runtime->core->GetNamedActor(name, namespace_);
  if (!reply.ok()) throw Error("lumen: GetActor: " + std::string(reply.status().message()));
  if (!reply->found()) return "";
  if (reply->info().class_name() != class_name) {
    throw ConfigError("lumen: GetActor: the actor named '" + name + "' is a " +
                      Demangle(reply->info().class_name().c_str()) + ", not a " +
                      Demangle(class_name.c_str()));
  }
  return reply->info().actor_id();
}

void ExitActor() {
  auto runtime = api::Require("ExitActor");
  if (runtime->core->ActorIncarnation() < 0 || runtime->core->CurrentTask().task_id.empty()) {
    throw ConfigError("lumen: ExitActor called outside an actor method");
  }
  throw ActorExitSignal{};
}

bool WasCurrentActorRestarted() {
  auto runtime = api::Require("WasCurrentActorRestarted");
  return runtime->core->ActorIncarnation() > 0;
}

}  // namespace lumen::detail
