// The node's object manager (one per raylet): makes objects that live in other nodes'
// stores local, and serves this node's store to the others.
//
//   core worker ──PullObjects──► object manager ──chunk reads × N──► other node's
//       ▲                             │  (TCP, chunk_wire.h: bytes go    object manager
//       └──── reads its node store ◄──┘   from store to store, no copy)  (its chunk server)
//
// One pull per object however many ask (later askers wait on the first); chunks of
// several pulls in flight at once, at most `max_chunks_in_flight` over all of them, so
// a transfer holds at most that many chunks in memory besides the store. A pulled copy
// is secondary: the store may evict it when it needs room; the owner frees it with the
// primary (it learnt of the copy when the puller asked it where the object is).
#pragma once

#include <atomic>
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
#include "object_manager/chunk_client.h"
#include "object_manager/chunk_server.h"
#include "object_manager/local_store.h"
#include "raylet.grpc.pb.h"
#include "rpc/rpc.h"

namespace lumen::object_manager {

struct ObjectManagerOptions {
  uint64_t chunk_bytes = 8ull << 20;
  int max_chunks_in_flight = 4;     // over all pulls (a reader thread each)
  int64_t chunk_timeout_ms = 60000;  // per chunk: a dead peer fails the pull
  /// Cluster-view refreshes to wait for a source node this node has not heard of yet.
  int max_view_waits = 4;
};

/// Where another node is reached (host:port each).
struct NodeAddresses {
  std::string raylet;   // its gRPC service (frees go there)
  std::string objects;  // its chunk server
};

class ObjectManager {
 public:
  ObjectManager(NodeId self, LocalStore* store, ObjectManagerOptions options = {});
  ~ObjectManager();  // Stop()

  /// Serves this node's store to the others on `ip`; gives the chunk server's address
  /// (NodeInfo.object_address).
  absl::StatusOr<std::string> Listen(const std::string& ip);

  /// The other nodes (binary node id → addresses), from the cluster view, and those
  /// declared dead (a pull goes on to its next source at once); pulls waiting for a node
  /// not known yet look again.
  void SetNodes(std::map<std::string, NodeAddresses> nodes, std::set<std::string> dead = {});

  void HandlePullObjects(const rpc::PullObjectsRequest& request, rpc::PullObjectsReply* reply,
                         rpc::Done done);
  /// The owner freed these objects: pulls of them stop (their askers hear why), and the
  /// free goes on to the raylets of `nodes` (copies there).
  void Free(const std::vector<ObjectId>& ids, const std::vector<std::string>& nodes);

  /// Fails every pull, cancels calls in flight and waits for them. Idempotent.
  void Stop();

  /// Objects pulled from other nodes since the start, and their bytes: shared, so that
  /// a reader may outlive the manager (the raylet's stats handler, at Stop).
  struct PullStats {
    std::atomic<uint64_t> objects{0};
    std::atomic<uint64_t> bytes{0};
  };
  std::shared_ptr<const PullStats> pull_stats() const { return pull_stats_; }

 private:
  struct Pull;
  using PullPtr = std::shared_ptr<Pull>;
  struct Chunk {
    PullPtr pull;
    uint64_t offset;
    uint64_t length;
    std::string address;  // the source's chunk server
  };

  /// Asks `pull`'s next source for the object's size.
  void StartFromNextSource(const PullPtr& pull);
  void OnSize(const PullPtr& pull, absl::StatusOr<ChunkRead> read);
  void OnChunk(const Chunk& chunk, absl::StatusOr<ChunkRead> read);
  /// Starts chunk reads while the in-flight bound allows.
  void IssueChunks();
  /// Once nothing of `pull` is in flight: seals its copy (all written) or drops it
  /// (failing), then answers its askers.
  void MaybeComplete(const PullPtr& pull);
  void Finish(const PullPtr& pull, const std::string& error);
  std::shared_ptr<rpc::RayletService::Stub> StubFor(const std::string& address);
  /// A context for an outgoing gRPC call that Stop can cancel; nullptr once stopping.
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
  std::shared_ptr<PullStats> pull_stats_ = std::make_shared<PullStats>();
  ChunkServer server_;
  ChunkClient client_;
  std::map<std::string, NodeAddresses> nodes_ ABSL_GUARDED_BY(mutex_);
  std::set<std::string> dead_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::shared_ptr<rpc::RayletService::Stub>> stubs_
      ABSL_GUARDED_BY(mutex_);
  std::map<ObjectId, PullPtr> pulls_ ABSL_GUARDED_BY(mutex_);
  std::vector<PullPtr> awaiting_nodes_ ABSL_GUARDED_BY(mutex_);
  int chunks_in_flight_ ABSL_GUARDED_BY(mutex_) = 0;
  int outstanding_ ABSL_GUARDED_BY(mutex_) = 0;  // what Stop waits for
  std::set<std::shared_ptr<grpc::ClientContext>> calls_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace lumen::object_manager
