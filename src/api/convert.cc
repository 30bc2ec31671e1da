#include "api/convert.h"

#include "api/runtime.h"
#include "common/bundles.h"
#include "common/ids.h"
#include "lumen/errors.h"
#include "lumen/object_ref.h"

namespace lumen::detail {

namespace {
bool IsNodeIdHex(const std::string& hex) {
  return hex.size() == 2 * NodeId::Size() &&
         hex.find_first_not_of("0123456789abcdef") == std::string::npos;
}
}  // namespace

void ValidateStrategy(const SchedulingStrategy& strategy) {
  if (const auto* affinity = std::get_if<NodeAffinityStrategy>(&strategy)) {
    if (!IsNodeIdHex(affinity->node_id)) {
      throw ConfigError("lumen: NodeAffinityStrategy needs a node id (32 hex digits, as "
                        "lumen::Nodes() gives it), got '" + affinity->node_id + "'");
    }
  }
}

rpc::SchedulingStrategy ToProto(const SchedulingStrategy& strategy) {
  rpc::SchedulingStrategy out;
  if (std::holds_alternative<SpreadStrategy>(strategy)) {
    out.set_kind(rpc::SchedulingStrategy::SPREAD);
  } else if (const auto* affinity = std::get_if<NodeAffinityStrategy>(&strategy)) {
    out.set_kind(rpc::SchedulingStrategy::NODE_AFFINITY);
    out.set_node_id(NodeId::FromHex(affinity->node_id).Binary());
    out.set_soft(affinity->soft);
  }
  return out;
}

rpc::SchedulingStrategy ToProto(const SchedulingStrategy& strategy,
                                const std::optional<PlacementTarget>& placement,
                                const std::map<std::string, double>& demand, const char* call) {
  if (!placement) return ToProto(strategy);
  std::map<std::string, double> wanted;
  for (const auto& [name, amount] : demand) {
    if (amount > 0) wanted[name] = amount;
  }
  absl::Status fits = CheckFitsBundle(wanted, placement->bundles, placement->bundle_index);
  if (!fits.ok()) {
    throw ConfigError(std::string("lumen: ") + call + ": placement group " +
                      placement->group_id + ": " + std::string(fits.message()));
  }
  rpc::SchedulingStrategy out;
  out.set_kind(rpc::SchedulingStrategy::PLACEMENT_GROUP);
  out.set_placement_group_id(PlacementGroupId::FromHex(placement->group_id).Binary());
  out.set_bundle_index(placement->bundle_index);
  return out;
}

rpc::ObjectRefProto ToProto(const RefData& ref) {
  rpc::ObjectRefProto proto;
  proto.set_id(ref.id);
  proto.set_owner(ref.owner);
  return proto;
}

RefData FromProto(const rpc::ObjectRefProto& proto) {
  return RefData{proto.id(), proto.owner(), CurrentSession()};
}

void CheckSession(const RefData& ref, const char* call) {
  uint64_t now = CurrentSession();
  if (ref.id.empty() || ref.session == now) return;
  throw ConfigError(std::string("lumen: ") + call + ": ObjectRef " + HexOf(ref.id) +
                    " was made in lumen session " + std::to_string(ref.session) +
                    ", which was shut down" +
                    (now == 0 ? "" : " (this is session " + std::to_string(now) + ")") +
                    "; its value went with it. Keep ObjectRefs only until Shutdown.");
}

std::vector<rpc::ObjectRefProto> ToProtos(const std::vector<RefData>& refs) {
  std::vector<rpc::ObjectRefProto> out;
  out.reserve(refs.size());
  for (const auto& ref : refs) out.push_back(ToProto(ref));
  return out;
}

void CheckSession(const std::vector<RefData>& refs, const char* call) {
  for (const RefData& ref : refs) CheckSession(ref, call);
}

std::vector<rpc::TaskArg> ToTaskArgs(std::vector<SerializedArg> args) {
  for (const SerializedArg& arg : args) {
    if (arg.by_ref) CheckSession(arg.ref, "Remote");
    CheckSession(arg.nested, "Remote");
  }
  std::vector<rpc::TaskArg> protos;
  protos.reserve(args.size());
  for (auto& arg : args) {
    rpc::TaskArg proto;
    if (arg.by_ref) {
      *proto.mutable_ref() = ToProto(arg.ref);
    } else {
      proto.set_value(std::move(arg.data));
    }
    for (const auto& nested : arg.nested) *proto.add_nested() = ToProto(nested);
    protos.push_back(std::move(proto));
  }
  return protos;
}

[[noreturn]] void ThrowObjectError(const core::StoredObject& object) {
  api::ParkIfDyingBySignal();
  const std::string& message = object.error_message;
  switch (object.error) {
    case core::ErrorKind::kTaskError:
      throw TaskError("remote task threw " + object.error_type + ": " + message,
                      object.error_type);
    case core::ErrorKind::kWorkerCrashed:
      throw WorkerCrashedError("lumen: " + message);
    case core::ErrorKind::kFunctionNotFound:
      throw FunctionNotFoundError("lumen: " + message);
    case core::ErrorKind::kOwnerDied:
      throw OwnerDiedError("lumen: " + message);
    case core::ErrorKind::kObjectLost:
      throw ObjectLostError("lumen: " + message);
    case core::ErrorKind::kActorDied:
      throw ActorDiedError("lumen: " + message);
    case core::ErrorKind::kObjectStoreFull:
      throw ObjectStoreFullError("lumen: " + message);
    case core::ErrorKind::kTaskCancelled:
      throw TaskCancelledError("lumen: " + message);
    default:
      throw Error("lumen: " + message);
  }
}

[[noreturn]] void ThrowStatus(const absl::Status& status) {
  api::ParkIfDyingBySignal();
  std::string message = "lumen: " + std::string(status.message());
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      throw GetTimeoutError(message);
    case absl::StatusCode::kInvalidArgument:
      throw ObjectLostError(message);
    case absl::StatusCode::kResourceExhausted:
      throw ObjectStoreFullError(message);
    default:
      throw Error(message);
  }
}

}  // namespace lumen::detail
