// lumen::Nodes, ClusterResources, AvailableResources — the cluster this program runs in.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace lumen {

/// One node of the cluster, as the GCS knows it.
struct NodeInfo {
  std::string node_id;   // hex; GetRuntimeContext().NodeId() of code running there
  std::string address;   // the node's IP (where other nodes reach it)
  bool alive = false;    // false once the GCS declared it dead
  bool is_head = false;  // it hosts the GCS
  std::map<std::string, double> total;      // its resources
  std::map<std::string, double> available;  // as of its last report (about every second)
};

/// Every node the GCS knows of, alive or dead, in registration order of their ids.
/// Throws ConfigError before Init, Error when the GCS cannot be reached.
std::vector<NodeInfo> Nodes();
/// The sum of the resources of the alive nodes.
std::map<std::string, double> ClusterResources();
/// The sum of what is free on the alive nodes, as of their last reports.
std::map<std::string, double> AvailableResources();

}  // namespace lumen
