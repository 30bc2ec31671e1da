// The node's object manager (one per raylet): makes objects that live in other nodes'
// stores local, and serves this node's store to the others.
//
//   core worker ──PullObjects──► object manager ──ReadObjectChunk × N──► other node's
//       ▲                             │  (chunks written straight into a         object
//       └──── reads its node store ◄──┘   secondary copy, then sealed)           manager
//
// One pull per object however many ask (later askers wait on the first); chunks of
// several pulls in flight at once, at most `max_chunks_in_flight` over all of them, so
// a transfer holds at most that many chunks in memory besides the store. A pulled copy
// is secondary: the store may evict it when it needs room; the owner frees it with the
// primary (it learnt of the copy when the puller asked it where the object is).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/ids.h"
#include "common/mutex.h"
#include "raylet.grpc.pb.h"
#include "rpc/rpc.h"

namespace lumen::object_manager {

/// What the object manager needs of its node's store (the raylet's StoreServer).
/// Callbacks may run on any thread.
class LocalStore {
 public:
  virtual ~LocalStore() = default;
  /// Whether a sealed copy of `id` is here.
  virtual void HasSealed(const ObjectId& id, std::function<void(bool)> done) = 0;
  /// Reserves a secondary copy of `size` bytes and gives where to write it (mapped in
  /// this process until it is sealed or aborted). AlreadyExists when the id is known.
  virtual void CreateCopy(const ObjectId& id, uint64_t size, const std::string& owner,
                          std::function<void(absl::StatusOr<uint8_t*>)> done) = 0;
  /// Seals (or, `abort`, drops) a copy made by CreateCopy.
  virtual void FinishCopy(const ObjectId& id, bool abort,
                          std::function<void(absl::Status)> done) = 0;
  /// Appends bytes [offset, offset + length) of sealed `id` (clipped to its size) to
  /// `out`, pinning it meanwhile; gives the object's size. NotFound when it is not here.
  virtual void ReadChunk(const ObjectId& id, uint64_t offset, uint64_t length,
                         std::string* out, std::function<void(absl::StatusOr<uint64_t>)> done) = 0;
};

struct ObjectManagerOptions {
  uint64_t chunk_bytes = 8ull << 20;
  int max_chunks_in_flight = 8;     // over all pulls
  int64_t chunk_timeout_ms = 60000;  // per chunk: a dead peer fails the pull
  /// Cluster-view refreshes to wait for a source node this node has not heard of yet.
  int max_view_waits = 4;
};

class ObjectManager {
 public:
  ObjectManager(NodeId self, LocalStore* store, ObjectManagerOptions options = {});
  ~ObjectManager();  // Stop()

  /// The other nodes' raylet addresses (binary node id → host:port), from the cluster
  /// view; pulls waiting for a node not known yet look again.
  void SetNodes(std::map<std::string, std::string> addresses);

  void HandlePullObjects(const rpc::PullObjectsRequest& request, rpc::PullObjectsReply* reply,
                         rpc::Done done);
  void HandleReadObjectChunk(const rpc::ReadObjectChunkRequest& request,
                             rpc::ReadObjectChunkReply* reply, rpc::Done done);
  /// The owner freed these objects: pulls of them stop (their askers hear why), and the
  /// free goes on to the raylets of `nodes` (copies there).
  void Free(const std::vector<ObjectId>& ids, const std::vector<std::string>& nodes);

  /// Fails every pull, cancels calls in flight and waits for them. Idempotent.
  void Stop();

 private:
  struct Pull;
  using PullPtr = std::shared_ptr<Pull>;
  struct Chunk {
    PullPtr pull;
    uint64_t offset;
    uint64_t length;
    std::string address;  // the source's raylet
  };

  /// Asks `pull`'s next source for its first chunk (the size comes with it).
  void StartFromNextSource(const PullPtr& pull);
  void OnFirstChunk(const PullPtr& pull, absl::Status status, rpc::ReadObjectChunkReply&& reply);
  void OnChunk(const Chunk& chunk, absl::Status status, rpc::ReadObjectChunkReply&& reply);
  /// Starts chunk reads while the in-flight bound allows.
  void IssueChunks();
  void ReadRemote(const std::string& address, const ObjectId& id, uint64_t offset,
                  uint64_t length,
                  std::function<void(absl::Status, rpc::ReadObjectChunkReply&&)> done);
  /// Once nothing of `pull` is in flight: seals its copy (all written) or drops it
  /// (failing), then answers its askers.
  void MaybeComplete(const PullPtr& pull);
  void Finish(const PullPtr& pull, const std::string& error);
  std::shared_ptr<rpc::RayletService::Stub> StubFor(const std::string& address);
  /// A context for an outgoing call that Stop can cancel; nullptr once stopping.
  std::shared_ptr<grpc::ClientContext> BeginCall();
  void EndCall(const std::shared_ptr<grpc::ClientContext>& context);
  /// One asynchronous operation (a call, a store request) has ended.
  void EndOutstanding();

  const NodeId self_;
  LocalStore* const store_;
  const ObjectManagerOptions options_;
  Mutex mutex_;
  CondVar idle_;  // outstanding_ reached 0
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
  std::map<std::string, std::string> nodes_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::shared_ptr<rpc::RayletService::Stub>> stubs_
      ABSL_GUARDED_BY(mutex_);
  std::map<ObjectId, PullPtr> pulls_ ABSL_GUARDED_BY(mutex_);
  std::vector<PullPtr> awaiting_nodes_ ABSL_GUARDED_BY(mutex_);
  int chunks_in_flight_ ABSL_GUARDED_BY(mutex_) = 0;
  int outstanding_ ABSL_GUARDED_BY(mutex_) = 0;  // what Stop waits for
  std::set<std::shared_ptr<grpc::ClientContext>> calls_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace lumen::object_manager
