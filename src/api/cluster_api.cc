// Joining a running cluster (the address, the GCS, the node on this machine), and
// lumen::Nodes / ClusterResources / AvailableResources.
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "api/runtime.h"
#include "common/ids.h"
#include "common/resources.h"
#include "common/session.h"
#include "lumen/cluster.h"
#include "lumen/errors.h"
#include "rpc/rpc.h"

namespace lumen {
namespace api {
namespace {

constexpr int64_t kJoinTimeoutMs = 5000;

// "host:port" with a non-empty host and a port in 1..65535.
bool WellFormed(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  std::string port = address.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  int value = std::atoi(port.c_str());
  return value >= 1 && value <= 65535;
}

bool IsSocket(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

std::string ResolveAddress(const std::string& address) {
  if (address != "auto") return address;
  std::ifstream in(Session::CurrentClusterFile());
  std::string found;
  if (!(in >> found) || found.empty()) {
    throw ConfigError("lumen: address \"auto\": no cluster was started on this machine (" +
                      Session::CurrentClusterFile() +
                      " is missing); start one with `lumen start --head`");
  }
  return found;
}

}  // namespace

JoinTarget ResolveJoin(const Config& config) {
  JoinTarget target;
  target.gcs_address = ResolveAddress(config.address);
  if (!WellFormed(target.gcs_address)) {
    throw ConfigError("lumen: malformed cluster address '" + target.gcs_address +
                      "': expected host:port, e.g. 127.0.0.1:6380, or \"auto\"");
  }
  auto stub = rpc::GcsService::NewStub(rpc::MakeChannel(target.gcs_address));
  auto nodes = rpc::CallBlocking<rpc::GetAllNodesRequest, rpc::GetAllNodesReply>(
      [&](auto* ctx, const auto& req, auto* rep) { return stub->GetAllNodes(ctx, req, rep); },
      rpc::GetAllNodesRequest(), kJoinTimeoutMs);
  if (!nodes.ok()) {
    throw ConfigError("lumen: cannot join the cluster at " + target.gcs_address +
                      ": no lumen GCS answered there (" + std::string(nodes.status().message()) +
                      "); is `lumen start --head` running, and is the port right?");
  }
  const rpc::NodeInfo* chosen = nullptr;
  for (const rpc::NodeInfo& node : nodes->nodes()) {
    if (!node.alive()) continue;
    if (!config.node_ip_address.empty() && node.node_ip() != config.node_ip_address) continue;
    // A node of this machine: its raylet's socket is here.
    if (!IsSocket(node.raylet_endpoint().substr(node.raylet_endpoint().find(':') + 1))) {
      continue;
    }
    if (chosen == nullptr || (node.is_head() && !chosen->is_head())) chosen = &node;
  }
  if (chosen == nullptr) {
    std::string which = config.node_ip_address.empty()
                            ? "no node of it runs on this machine"
                            : "no node with IP " + config.node_ip_address + " runs on this machine";
    throw ConfigError("lumen: cannot join the cluster at " + target.gcs_address + ": " + which +
                      "; start one here with `lumen start --address=" + target.gcs_address +
                      "`");
  }
  target.node = *chosen;
  return target;
}

namespace {
std::vector<rpc::NodeInfo> FetchNodes(const char* call) {
  auto runtime = Require(call);
  auto nodes = rpc::CallBlocking<rpc::GetAllNodesRequest, rpc::GetAllNodesReply>(
      [&](auto* ctx, const auto& req, auto* rep) {
        return runtime->gcs->GetAllNodes(ctx, req, rep);
      },
      rpc::GetAllNodesRequest(), 10000);
  if (!nodes.ok()) {
    throw Error(std::string("lumen: ") + call + ": the GCS did not answer: " +
                std::string(nodes.status().message()));
  }
  return {nodes->nodes().begin(), nodes->nodes().end()};
}

std::map<std::string, double> Sum(const char* call, bool available) {
  ResourceSet sum;
  for (const rpc::NodeInfo& node : FetchNodes(call)) {
    if (!node.alive()) continue;
    const auto& amounts = available ? node.available() : node.total();
    sum.Add(ResourceSet::FromMap({amounts.begin(), amounts.end()}));
  }
  std::map<std::string, double> out;
  for (const auto& [name, amount] : sum.ToMap()) {
    if (amount > 0) out[name] = amount;
  }
  return out;
}
}  // namespace

}  // namespace api

std::vector<NodeInfo> Nodes() {
  std::vector<NodeInfo> out;
  for (const rpc::NodeInfo& node : api::FetchNodes("Nodes")) {
    NodeInfo info;
    info.node_id = NodeId::FromBinary(node.node_id()).Hex();
    info.address = node.node_ip();
    info.alive = node.alive();
    info.is_head = node.is_head();
    info.total = {node.total().begin(), node.total().end()};
    info.available = {node.available().begin(), node.available().end()};
    out.push_back(std::move(info));
  }
  return out;
}

std::map<std::string, double> ClusterResources() { return api::Sum("ClusterResources", false); }

std::map<std::string, double> AvailableResources() {
  return api::Sum("AvailableResources", true);
}

}  // namespace lumen
