// A core worker's connection to its node's object store. The raylet keeps the object
// table; this client writes and reads the bytes straight in the shared-memory segment.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/ids.h"
#include "object_store/allocator.h"
#include "raylet.grpc.pb.h"

namespace lumen::core {

/// Thread-safe. Views handed out stay valid (mapped and pinned) until their last
/// `pin` is dropped, even after the client itself is destroyed.
class StoreClient {
 public:
  struct View {
    const uint8_t* data = nullptr;   // nullptr: not found; see `error`
    uint64_t size = 0;
    std::shared_ptr<const void> pin;
    bool full = false;               // could not be restored for lack of room
    std::string error;
  };

  /// Maps the segment the raylet described at registration.
  static absl::StatusOr<std::unique_ptr<StoreClient>> Connect(
      std::shared_ptr<rpc::RayletService::Stub> raylet, std::string client_id,
      const rpc::ObjectStoreInfo& info);
  ~StoreClient();

  /// Values above this size go to the store.
  uint64_t max_inline_bytes() const { return max_inline_bytes_; }
  uint64_t capacity() const { return capacity_; }

  /// Creates `id` with `size` bytes, lets `write` fill them, and seals it. An id that is
  /// already there (a retried task's result) is left as it is. ResourceExhausted (the
  /// store's "object store full" message) when it cannot fit.
  absl::Status Put(const ObjectId& id, const std::string& owner, uint64_t size,
                   const std::function<void(uint8_t*)>& write);
  /// One view per id, each pinned until its `pin` is dropped.
  absl::StatusOr<std::vector<View>> Get(const std::vector<ObjectId>& ids);
  /// What the store holds (blocking).
  absl::StatusOr<rpc::GetStoreStatsReply> Stats(bool include_objects);
  /// The owner is done with these objects (asynchronous): freed here and, through this
  /// node's raylet, on `nodes` (binary node ids holding copies).
  void Free(const std::vector<ObjectId>& ids, const std::vector<std::string>& nodes = {});
  /// An object held by other nodes' stores, to be made local.
  struct Remote {
    ObjectId id;
    std::string owner;               // its owner's endpoint
    std::vector<std::string> nodes;  // binary node ids holding it, the primary first
  };
  /// Copies them into this node's store (blocking, while the transfer runs); per object,
  /// empty when it is here now, else why not.
  absl::StatusOr<std::vector<std::string>> Pull(const std::vector<Remote>& objects);
  /// Testing: how long Put waits between create and seal (LUMEN_TESTING_STORE_WRITE_DELAY_MS).
  static int64_t TestingWriteDelayMs();

 private:
  struct Shared;
  explicit StoreClient(std::shared_ptr<Shared> shared, uint64_t max_inline, uint64_t capacity);
  std::shared_ptr<Shared> shared_;
  uint64_t max_inline_bytes_;
  uint64_t capacity_;
};

}  // namespace lumen::core
