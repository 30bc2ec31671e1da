// Where a placement group's bundles go, by strategy: a pure function over the nodes'
// free resources, so that it can be tested alone.
#pragma once

#include <string>
#include <vector>

#include "common/resources.h"
#include "gcs.pb.h"

namespace lumen::gcs {

/// An alive node and what it has free for bundles.
struct NodeRoom {
  std::string node_id;  // binary
  ResourceSet free;
};

/// Chooses a node for every bundle whose entry in `*placed` is empty (the others stay
/// where they are, and count for the strategy):
///   PACK           as few nodes as possible: one node if any fits them all, else the
///                  nodes already used first, then the roomiest;
///   SPREAD         as many nodes as possible: unused nodes first, the roomiest first;
///   STRICT_PACK    all bundles on one node, or none placed;
///   STRICT_SPREAD  every bundle on a node of its own, or none placed.
/// All or nothing: on false `*placed` is unchanged and `*why` says what did not fit.
bool PlaceBundles(rpc::PlacementGroupInfo::Strategy strategy,
                  const std::vector<ResourceSet>& bundles, std::vector<NodeRoom> nodes,
                  std::vector<std::string>* placed, std::string* why);

}  // namespace lumen::gcs
