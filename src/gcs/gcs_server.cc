#include "gcs/gcs_server.h"

#include <chrono>

#include "common/clock.h"
#include "common/ids.h"
#include "common/logging.h"

namespace lumen::gcs {
namespace {

class GcsGrpcService final : public rpc::GcsService::CallbackService {
 public:
  explicit GcsGrpcService(GcsServer* handler) : handler_(handler) {}
  using rpc::GcsService::CallbackService::CallbackService;
  LUMEN_RPC_FORWARD(handler_, RegisterNode)
  LUMEN_RPC_FORWARD(handler_, NodeHeartbeat)
  LUMEN_RPC_FORWARD(handler_, GetAllNodes)
  LUMEN_RPC_FORWARD(handler_, RegisterJob)
  LUMEN_RPC_FORWARD(handler_, FinishJob)
  LUMEN_RPC_FORWARD(handler_, KvPut)
  LUMEN_RPC_FORWARD(handler_, KvGet)
  LUMEN_RPC_FORWARD(handler_, KvDel)
  LUMEN_RPC_FORWARD(handler_, KvKeys)

 private:
  GcsServer* handler_;
};

}  // namespace

GcsServer::GcsServer(GcsOptions options)
    : options_(std::move(options)), service_(std::make_unique<GcsGrpcService>(this)) {}

GcsServer::~GcsServer() { Stop(); }

absl::StatusOr<std::string> GcsServer::Start() {
  loop_.Start();
  loop_.RunEvery(std::chrono::milliseconds(1000), [this] { CheckNodeHealth(); });
  return server_.Start(options_.listen_address, {service_.get()});
}

void GcsServer::Stop() {
  server_.Shutdown();
  loop_.Stop();
}

void GcsServer::CheckNodeHealth() {
  int64_t now = NowMs();
  for (auto& [id, node] : nodes_) {
    if (node.alive() && now - node.last_heartbeat_ms() > options_.node_timeout_ms) {
      node.set_alive(false);
      LUMEN_LOG_WARN("gcs: node {} missed heartbeats for {} ms; marked dead",
                     NodeId::FromBinary(id).Hex(), options_.node_timeout_ms);
    }
  }
}

void GcsServer::HandleRegisterNode(const rpc::RegisterNodeRequest& request,
                                   rpc::RegisterNodeReply*, rpc::Done done) {
  loop_.Post([this, request, done] {
    if (request.node().node_id().size() != NodeId::Size()) {
      return done(absl::InvalidArgumentError("node id must be 16 bytes"));
    }
    rpc::NodeInfo node = request.node();
    node.set_alive(true);
    node.set_last_heartbeat_ms(NowMs());
    nodes_[node.node_id()] = node;
    LUMEN_LOG_INFO("gcs: node {} registered at {}", NodeId::FromBinary(node.node_id()).Hex(),
                   node.raylet_endpoint());
    done(absl::OkStatus());
  });
}

void GcsServer::HandleNodeHeartbeat(const rpc::NodeHeartbeatRequest& request,
                                    rpc::NodeHeartbeatReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    auto it = nodes_.find(request.node_id());
    reply->set_known(it != nodes_.end() && it->second.alive());
    if (reply->known()) it->second.set_last_heartbeat_ms(NowMs());
    done(absl::OkStatus());
  });
}

void GcsServer::HandleGetAllNodes(const rpc::GetAllNodesRequest&,
                                  rpc::GetAllNodesReply* reply, rpc::Done done) {
  loop_.Post([this, reply, done] {
    for (const auto& [id, node] : nodes_) *reply->add_nodes() = node;
    done(absl::OkStatus());
  });
}

void GcsServer::HandleRegisterJob(const rpc::RegisterJobRequest& request,
                                  rpc::RegisterJobReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    uint32_t job = next_job_++;
    jobs_[job].info = request;
    reply->set_job_id(JobId::FromInt(job).Binary());
    done(absl::OkStatus());
  });
}

void GcsServer::HandleFinishJob(const rpc::FinishJobRequest& request,
                                rpc::FinishJobReply*, rpc::Done done) {
  loop_.Post([this, request, done] {
    for (auto& [num, job] : jobs_) {
      if (JobId::FromInt(num).Binary() == request.job_id()) {
        job.finished = true;
        return done(absl::OkStatus());
      }
    }
    done(absl::NotFoundError("no such job"));
  });
}

void GcsServer::HandleKvPut(const rpc::KvPutRequest& request, rpc::KvPutReply* reply,
                            rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    auto& table = kv_[request.ns()];
    auto [it, added] = table.try_emplace(request.key(), request.value());
    if (!added && request.overwrite()) it->second = request.value();
    reply->set_added(added);
    done(absl::OkStatus());
  });
}

void GcsServer::HandleKvGet(const rpc::KvGetRequest& request, rpc::KvGetReply* reply,
                            rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    auto ns = kv_.find(request.ns());
    if (ns != kv_.end()) {
      auto it = ns->second.find(request.key());
      if (it != ns->second.end()) {
        reply->set_found(true);
        reply->set_value(it->second);
      }
    }
    done(absl::OkStatus());
  });
}

void GcsServer::HandleKvDel(const rpc::KvDelRequest& request, rpc::KvDelReply* reply,
                            rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    auto ns = kv_.find(request.ns());
    reply->set_deleted(ns != kv_.end() && ns->second.erase(request.key()) > 0);
    done(absl::OkStatus());
  });
}

void GcsServer::HandleKvKeys(const rpc::KvKeysRequest& request, rpc::KvKeysReply* reply,
                             rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    auto ns = kv_.find(request.ns());
    if (ns != kv_.end()) {
      for (auto it = ns->second.lower_bound(request.prefix());
           it != ns->second.end() && it->first.rfind(request.prefix(), 0) == 0; ++it) {
        reply->add_keys(it->first);
      }
    }
    done(absl::OkStatus());
  });
}

}  // namespace lumen::gcs
