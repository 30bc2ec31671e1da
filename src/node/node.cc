#include "node/node.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "common/logging.h"
#include "common/resources.h"
#include "gcs/gcs_server.h"
#include "raylet/raylet.h"

namespace lumen::node {
namespace {

// `<parent>/session_latest` -> the session, replaced atomically (a rename over the old
// link), so a reader never finds it missing.
void LinkLatest(const std::string& session_dir) {
  namespace fs = std::filesystem;
  fs::path session(session_dir);
  fs::path link = session.parent_path() / "session_latest";
  fs::path temp = session.parent_path() / (".session_latest." + std::to_string(getpid()));
  std::error_code ec;
  fs::remove(temp, ec);
  fs::create_directory_symlink(session.filename(), temp, ec);
  if (!ec) fs::rename(temp, link, ec);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Node>> Node::Start(const NodeOptions& options) {
  auto session = Session::Create(options.session_dir);
  if (!session.ok()) return session.status();
  std::unique_ptr<Node> node(new Node());
  node->session_ = *session;
  if (options.log_to_files && !LogToFiles(node->session_.LogsDir())) {
    node->session_.Remove();
    return absl::FailedPreconditionError("cannot open the log files in " +
                                         node->session_.LogsDir());
  }
  auto fail = [&node](const std::string& what, const absl::Status& status) {
    node->Stop();
    return absl::Status(status.code(), what + ": " + std::string(status.message()));
  };

  if (options.head) {
    gcs::GcsOptions gcs_options;
    gcs_options.listen_address = options.node_ip + ":" + std::to_string(options.gcs_port);
    gcs_options.storage_dir = node->session_.dir() + "/gcs";
    gcs_options.health_check_period_ms = options.health_check_period_ms;
    gcs_options.health_check_failure_threshold = options.health_check_failure_threshold;
    gcs_options.http_host = options.dashboard_host;
    gcs_options.http_port = options.dashboard_port;
    gcs_options.max_task_events = options.max_task_events;
    node->gcs_ = std::make_unique<gcs::GcsServer>(gcs_options);
    auto endpoint = node->gcs_->Start();
    if (!endpoint.ok()) return fail("cannot start the GCS", endpoint.status());
    node->gcs_address_ = *endpoint;
    if (node->gcs_->http_port() != 0) {
      node->dashboard_address_ =
          options.dashboard_host + ":" + std::to_string(node->gcs_->http_port());
    }
  } else {
    node->gcs_address_ = options.gcs_address;
  }

  raylet::RayletOptions raylet_options;
  raylet_options.session_dir = node->session_.dir();
  raylet_options.logs_dir = node->session_.LogsDir();
  raylet_options.socket_path = node->session_.SocketPath("raylet");
  raylet_options.gcs_endpoint = node->gcs_address_;
  raylet_options.node_ip = options.node_ip;
  raylet_options.is_head = options.head;
  raylet_options.total = ResourceSet::FromMap(options.resources);
  raylet_options.num_prestart_workers = options.num_prestart_workers;
  raylet_options.log_level = options.log_level;
  raylet_options.store.shm_name = node->session_.ShmName("store");
  raylet_options.store.capacity = options.object_store_memory;
  raylet_options.store.spill_dir =
      options.spill_dir.empty() ? node->session_.dir() + "/spill" : options.spill_dir;
  raylet_options.store.max_inline_bytes = options.max_inline_bytes;
  raylet_options.on_declared_dead = options.on_declared_dead;
  node->raylet_ = std::make_unique<raylet::Raylet>(raylet_options);
  auto raylet_endpoint = node->raylet_->Start();
  if (!raylet_endpoint.ok()) return fail("cannot start the raylet", raylet_endpoint.status());
  node->raylet_endpoint_ = *raylet_endpoint;
  node->node_id_ = node->raylet_->node_id();
  if (options.link_latest) LinkLatest(node->session_.dir());
  return node;
}

Node::~Node() { Stop(); }

void Node::StopRaylet() {
  if (raylet_) raylet_->Stop();
}

void Node::Stop(bool keep_session) {
  if (stopped_) return;
  stopped_ = true;
  StopRaylet();
  if (gcs_) gcs_->Stop();
  if (!keep_session) session_.Remove();
}

}  // namespace lumen::node
