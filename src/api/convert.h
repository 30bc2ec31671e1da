// Conversions between the API's types and the core worker's, and from errors to the
// typed exceptions users catch: used by every detail:: entry point of liblumen.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common.pb.h"
#include "core_worker/stored_object.h"
#include "lumen/detail/runtime.h"

namespace lumen::detail {

rpc::ObjectRefProto ToProto(const RefData& ref);
RefData FromProto(const rpc::ObjectRefProto& proto);
std::vector<rpc::ObjectRefProto> ToProtos(const std::vector<RefData>& refs);
/// Throws ConfigError, naming `call` and the session, for a ref kept from an earlier
/// session (Init, Shutdown, Init again).
void CheckSession(const RefData& ref, const char* call);
void CheckSession(const std::vector<RefData>& refs, const char* call);
/// Task arguments as the core worker takes them (moves the serialized bytes).
std::vector<rpc::TaskArg> ToTaskArgs(std::vector<SerializedArg> args);

/// The strategy as it travels (node ids in binary).
rpc::SchedulingStrategy ToProto(const SchedulingStrategy& strategy);
/// With a placement group: PLACEMENT_GROUP, once `demand` is checked to fit the bundle
/// (ConfigError naming `call` otherwise).
rpc::SchedulingStrategy ToProto(const SchedulingStrategy& strategy,
                                const std::optional<PlacementTarget>& placement,
                                const std::map<std::string, double>& demand, const char* call);

/// Throws the lumen::Error subclass matching an object's error.
[[noreturn]] void ThrowObjectError(const core::StoredObject& object);
/// Throws the lumen::Error subclass matching a failed call of the core worker.
[[noreturn]] void ThrowStatus(const absl::Status& status);

}  // namespace lumen::detail
