// One lumen node: the raylet of this machine and, on the head node, the GCS, with the
// session directory they run in. The same code hosts the embedded one-node cluster of
// `lumen::Init()` and the `lumen start` daemons.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/ids.h"
#include "common/session.h"

namespace lumen::gcs {
class GcsServer;
}  // namespace lumen::gcs
namespace lumen::raylet {
class Raylet;
}  // namespace lumen::raylet

namespace lumen::node {

struct NodeOptions {
  /// True: this node hosts the GCS. False: it joins the GCS at `gcs_address`.
  bool head = true;
  /// The head's GCS ("host:port"), for a node that joins.
  std::string gcs_address;
  /// The address this node's TCP listeners bind to and that other nodes reach it at.
  std::string node_ip = "127.0.0.1";
  /// The GCS's port on a head node; 0 picks a free one.
  int gcs_port = 0;
  /// Logical resources: CPU, GPU and custom names (amounts >= 0).
  std::map<std::string, double> resources;
  /// Workers started per job when its driver registers, and kept when idle.
  int num_prestart_workers = 1;
  /// Bytes of the shared-memory store; -1: 30% of memory, capped by /dev/shm.
  int64_t object_store_memory = -1;
  uint64_t max_inline_bytes = 100 * 1024;
  /// Where the store spills; empty: <session>/spill.
  std::string spill_dir;
  /// Session::Create's argument: empty for /tmp/lumen/session_<time>_<pid>, an existing
  /// folder to make the session inside it, a new path to use as the session itself.
  std::string session_dir;
  /// Also point `<parent of the session>/session_latest` at the session (daemons).
  bool link_latest = false;
  /// The runtime's log goes to <session>/logs/{gcs,raylet}.log (daemons), switched before
  /// any of the node's threads starts logging.
  bool log_to_files = false;
  std::string log_level = "warn";
  /// On a head: nodes report liveness every period; one silent for `threshold` periods
  /// is declared dead.
  int64_t health_check_period_ms = 1000;
  int health_check_failure_threshold = 5;
  /// On a head: the HTTP server of the state API (and dashboard) at host:port (port 0:
  /// a free one); empty host: none (the embedded cluster).
  std::string dashboard_host;
  int dashboard_port = 0;
  /// On a head: task attempts the state API keeps.
  size_t max_task_events = 100000;
  /// The GCS declared this node dead (see RayletOptions::on_declared_dead).
  std::function<void(const std::string& why)> on_declared_dead;
};

/// A running node. Start it, use its endpoints, Stop it (also on destruction). Not
/// thread-safe: one owner starts and stops it.
class Node {
 public:
  /// Creates the session, starts the GCS (head) and the raylet, and registers the node.
  /// On failure nothing is left running and the session is removed.
  static absl::StatusOr<std::unique_ptr<Node>> Start(const NodeOptions& options);
  ~Node();

  /// Stops the raylet and its workers (what they printed last is published to the GCS).
  /// Idempotent; Stop does it too.
  void StopRaylet();
  /// Stops the raylet, then the GCS; removes the session unless `keep_session`.
  /// Idempotent.
  void Stop(bool keep_session = false);

  const NodeId& node_id() const { return node_id_; }
  /// The GCS this node belongs to ("host:port").
  const std::string& gcs_address() const { return gcs_address_; }
  /// The raylet's local endpoint ("unix:...") for this machine's processes.
  const std::string& raylet_endpoint() const { return raylet_endpoint_; }
  const Session& session() const { return session_; }
  bool is_head() const { return gcs_ != nullptr; }
  /// "host:port" of the head's HTTP server (state API, dashboard); empty when none.
  const std::string& dashboard_address() const { return dashboard_address_; }

 private:
  Node() = default;

  Session session_;
  std::unique_ptr<gcs::GcsServer> gcs_;
  std::unique_ptr<raylet::Raylet> raylet_;
  NodeId node_id_;
  std::string gcs_address_;
  std::string raylet_endpoint_;
  std::string dashboard_address_;
  bool stopped_ = false;
};

}  // namespace lumen::node
