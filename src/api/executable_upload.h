// The driver's executable, registered with the GCS by content: raylets fetch it by digest
// and run the job's workers from their cache, on every node, this one included.
#pragma once

#include "absl/status/statusor.h"
#include "common.pb.h"
#include "gcs.grpc.pb.h"

namespace lumen::api {

/// Digests this process's executable (once per process), uploads it in chunks unless the
/// GCS already holds that content, and returns how raylets launch it: the digest and
/// size, this process's path and command line. Blocking; errors name what failed (the
/// file, or the GCS's answer).
absl::StatusOr<rpc::JobLaunchInfo> UploadExecutable(rpc::GcsService::Stub& gcs);

}  // namespace lumen::api
