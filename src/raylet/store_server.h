// The raylet's side of the node object store: owns the shared-memory segment and the
// NodeStore, and answers the store RPCs of the node's core workers on a loop of its own
// (so that large copies during spilling never hold up leasing).
#pragma once

#include <memory>
#include <string>

#include "common/event_loop.h"
#include "object_manager/object_manager.h"
#include "object_store/node_store.h"
#include "raylet.pb.h"
#include "rpc/rpc.h"

namespace lumen::raylet {

struct StoreOptions {
  std::string shm_name;           // POSIX name, unique per node and session
  int64_t capacity = -1;          // bytes; -1: 30% of memory, capped by /dev/shm
  std::string spill_dir;          // where pinned objects go when the store is full
  uint64_t max_inline_bytes = 100 * 1024;
};

class StoreServer : public object_manager::LocalStore {
 public:
  /// Creates the segment. InvalidArgument / ResourceExhausted (with the sizes) when the
  /// requested capacity cannot be had.
  static absl::StatusOr<std::unique_ptr<StoreServer>> Create(const StoreOptions& options);
  ~StoreServer() override;  // stops the loop, removes the segment and the spill files

  /// What clients need to map the store (sent with the registration reply).
  rpc::ObjectStoreInfo Info() const;

  void HandleCreateObject(const rpc::CreateObjectRequest& request,
                          rpc::CreateObjectReply* reply, rpc::Done done);
  void HandleSealObject(const rpc::SealObjectRequest& request, rpc::SealObjectReply* reply,
                        rpc::Done done);
  void HandleGetObjects(const rpc::GetObjectsRequest& request, rpc::GetObjectsReply* reply,
                        rpc::Done done);
  void HandleReleaseObjects(const rpc::ReleaseObjectsRequest& request,
                            rpc::ReleaseObjectsReply* reply, rpc::Done done);
  void HandleFreeObjects(const rpc::FreeObjectsRequest& request, rpc::FreeObjectsReply* reply,
                         rpc::Done done);
  void HandleGetStoreStats(const rpc::GetStoreStatsRequest& request,
                           rpc::GetStoreStatsReply* reply, rpc::Done done);

  // The object manager's access (LocalStore): copies it makes are secondary, created by
  // a client of its own.
  void HasSealed(const ObjectId& id, std::function<void(bool)> done) override;
  void CreateCopy(const ObjectId& id, uint64_t size, const std::string& owner,
                  std::function<void(absl::StatusOr<uint8_t*>)> done) override;
  void FinishCopy(const ObjectId& id, bool abort, std::function<void(absl::Status)> done) override;
  void Pin(const ObjectId& id,
           std::function<void(absl::StatusOr<object_manager::PinnedObject>)> done) override;
  void Unpin(const ObjectId& id) override;

  /// An owner on another node exited: what it owned here is freed.
  void OnOwnerGone(const std::string& owner);
  /// A worker or driver exited: drop its unsealed objects and its pins, and free what it
  /// owned (`endpoint` may be empty when it never served).
  void OnClientExit(const std::string& client, const std::string& endpoint);

 private:
  StoreServer(StoreOptions options, std::unique_ptr<object_store::NodeStore> store,
              rpc::ObjectStoreInfo info);

  StoreOptions options_;
  rpc::ObjectStoreInfo info_;
  std::unique_ptr<object_store::NodeStore> store_;  // loop-only
  EventLoop loop_{"lumen-store"};
};

/// The default capacity: 30% of physical memory, capped by what /dev/shm can take.
uint64_t DefaultStoreCapacity();

}  // namespace lumen::raylet
