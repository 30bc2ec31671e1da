// `lumen status`: the nodes of a cluster, their resources used / total, what waits, and
// the placement groups.
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "cli/cli.h"
#include "common/bundles.h"
#include "common/ids.h"
#include "common/session.h"
#include "gcs.grpc.pb.h"
#include "rpc/rpc.h"

namespace lumen::cli {
namespace {

std::string Amount(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", value);
  return buf;
}

std::string Shape(const google::protobuf::Map<std::string, double>& shape) {
  std::map<std::string, double> sorted(shape.begin(), shape.end());
  std::string out = "{";
  for (const auto& [name, amount] : sorted) {
    if (out.size() > 1) out += ", ";
    out += name + ": " + Amount(amount);
  }
  return out + "}";
}

std::string GroupLabel(const rpc::PlacementGroupInfo& group) {
  std::string id = PlacementGroupId::FromBinary(group.placement_group_id()).Hex();
  return group.name().empty() ? id : "'" + group.name() + "' " + id;
}

}  // namespace

std::string ResolveAddress(const std::string& address) {
  if (!address.empty() && address != "auto") return address;
  std::ifstream in(Session::CurrentClusterFile());
  std::string found;
  in >> found;
  return found;
}

int Status(const std::string& given) {
  std::string address = ResolveAddress(given);
  if (address.empty()) {
    std::fprintf(stderr, "lumen status: no cluster was started on this machine; give "
                 "--address=HOST:PORT of a head node\n");
    return 1;
  }
  auto stub = rpc::GcsService::NewStub(rpc::MakeChannel(address));
  auto nodes = rpc::CallBlocking<rpc::GetAllNodesRequest, rpc::GetAllNodesReply>(
      [&](auto* ctx, const auto& req, auto* rep) { return stub->GetAllNodes(ctx, req, rep); },
      rpc::GetAllNodesRequest(), 5000);
  if (!nodes.ok()) {
    std::fprintf(stderr, "lumen status: no lumen cluster answers at %s (%s)\n", address.c_str(),
                 std::string(nodes.status().message()).c_str());
    return 1;
  }
  int alive = 0;
  for (const auto& node : nodes->nodes()) alive += node.alive();
  std::printf("Cluster at %s: %d node%s alive", address.c_str(), alive, alive == 1 ? "" : "s");
  if (nodes->nodes_size() > alive) std::printf(", %d dead", nodes->nodes_size() - alive);
  std::printf("\n");
  std::map<std::string, double> used, total;
  for (const auto& node : nodes->nodes()) {
    std::printf("\nnode %s  %s%s%s\n", NodeId::FromBinary(node.node_id()).Hex().c_str(),
                node.node_ip().c_str(), node.is_head() ? "  head" : "",
                node.alive() ? "" : "  DEAD");
    std::map<std::string, double> sorted(node.total().begin(), node.total().end());
    for (const auto& [name, amount] : sorted) {
      if (IsBundleResource(name)) continue;  // shown with their group, below
      auto it = node.available().find(name);
      double free = it == node.available().end() ? 0 : it->second;
      std::printf("  %-12s %s / %s used\n", name.c_str(), Amount(amount - free).c_str(),
                  Amount(amount).c_str());
      if (node.alive()) {
        used[name] += amount - free;
        total[name] += amount;
      }
    }
  }
  std::printf("\nResources (alive nodes)\n");
  for (const auto& [name, amount] : total) {
    std::printf("  %-12s %s / %s used\n", name.c_str(), Amount(used[name]).c_str(),
                Amount(amount).c_str());
  }
  std::printf("\nDemands\n");
  int demands = 0;
  for (const auto& node : nodes->nodes()) {
    if (!node.alive()) continue;
    for (const auto& demand : node.pending()) {
      ++demands;
      std::printf("  %s: %d %s (at node %s)\n", Shape(demand.shape()).c_str(), demand.count(),
                  demand.infeasible() ? "infeasible: no node can fit it" : "pending",
                  NodeId::FromBinary(node.node_id()).Hex().substr(0, 8).c_str());
    }
  }
  auto groups = rpc::CallBlocking<rpc::ListPlacementGroupsRequest, rpc::ListPlacementGroupsReply>(
      [&](auto* ctx, const auto& req, auto* rep) {
        return stub->ListPlacementGroups(ctx, req, rep);
      },
      rpc::ListPlacementGroupsRequest(), 5000);
  if (groups.ok()) {
    for (const auto& group : groups->groups()) {
      if (group.state() != rpc::PlacementGroupInfo::PENDING &&
          group.state() != rpc::PlacementGroupInfo::RESCHEDULING) {
        continue;
      }
      ++demands;
      std::printf("  placement group %s: %d bundle(s) %s\n", GroupLabel(group).c_str(),
                  group.bundles_size(),
                  group.infeasible() ? "infeasible: no nodes can hold it" : "pending");
    }
  }
  if (demands == 0) std::printf("  (no resource demands)\n");
  std::printf("\nPlacement groups\n");
  int shown = 0;
  if (!groups.ok()) {
    std::printf("  (unknown: %s)\n", std::string(groups.status().message()).c_str());
    return 0;
  }
  for (const auto& group : groups->groups()) {
    if (group.state() == rpc::PlacementGroupInfo::REMOVED) continue;
    ++shown;
    std::printf("  %s  %s  %s\n", GroupLabel(group).c_str(),
                rpc::PlacementGroupInfo::State_Name(group.state()).c_str(),
                rpc::PlacementGroupInfo::Strategy_Name(group.strategy()).c_str());
    for (int i = 0; i < group.bundles_size(); ++i) {
      const auto& bundle = group.bundles(i);
      std::printf("    bundle %d %s  %s\n", i, Shape(bundle.resources()).c_str(),
                  bundle.node_id().empty()
                      ? "not placed"
                      : ("on node " + NodeId::FromBinary(bundle.node_id()).Hex().substr(0, 8))
                            .c_str());
    }
    if (!group.waiting_reason().empty()) {
      std::printf("    waiting: %s\n", group.waiting_reason().c_str());
    }
  }
  if (shown == 0) std::printf("  (none)\n");
  return 0;
}

}  // namespace lumen::cli
