// lumen::PlacementGroup — resources reserved together across nodes (gang scheduling),
// for tasks and actors placed in them (Task(...) / Actor(...) .SetPlacementGroup).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lumen/scheduling.h"

namespace lumen {

/// How a group's bundles are spread over the nodes.
enum class PlacementStrategy {
  kPack,          // as few nodes as possible (best effort)
  kSpread,        // as many nodes as possible (best effort)
  kStrictPack,    // all bundles on one node, or the group waits
  kStrictSpread,  // each bundle on a node of its own, or the group waits
};

enum class PlacementGroupState {
  kPending,       // not all bundles reserved yet (no room, or no node fits: see Wait)
  kCreated,       // every bundle reserved
  kRemoved,       // RemovePlacementGroup, or its job ended (unless detached)
  kRescheduling,  // a node holding bundles died: those are being reserved again
};

struct PlacementGroupOptions {
  std::string name;  // empty: unnamed; else unique in the job's namespace
  /// What each bundle reserves, e.g. {{"CPU", 2}, {"GPU", 1}}; at least one bundle.
  std::vector<std::map<std::string, double>> bundles;
  PlacementStrategy strategy = PlacementStrategy::kPack;
  /// kNonDetached: removed when the creator's job ends; kDetached: until removed.
  ActorLifetime lifetime = ActorLifetime::kNonDetached;
};

/// A handle to a placement group. Copyable; ID, Name, Bundles and Strategy are fixed,
/// State, Wait and BundleNodeIds ask the GCS.
class PlacementGroup {
 public:
  PlacementGroup() = default;  // nil: use CreatePlacementGroup or GetPlacementGroup

  /// Hex id (32 digits).
  const std::string& ID() const { return id_; }
  const std::string& Name() const { return name_; }
  const std::vector<std::map<std::string, double>>& Bundles() const { return bundles_; }
  PlacementStrategy Strategy() const { return strategy_; }
  bool IsNil() const { return id_.empty(); }

  PlacementGroupState State() const;
  /// Waits until every bundle is reserved: true then, false when `timeout` passed first
  /// (a group no node can ever hold prints a warning saying why, once). Throws Error
  /// when the group was removed.
  bool Wait(std::chrono::milliseconds timeout) const;
  /// The node (hex id) of each bundle, "" for a bundle not reserved now.
  std::vector<std::string> BundleNodeIds() const;

  /// Internal: made by the functions below.
  PlacementGroup(std::string id, std::string name,
                 std::vector<std::map<std::string, double>> bundles, PlacementStrategy strategy)
      : id_(std::move(id)), name_(std::move(name)), bundles_(std::move(bundles)),
        strategy_(strategy) {}

 private:
  std::string id_;
  std::string name_;
  std::vector<std::map<std::string, double>> bundles_;
  PlacementStrategy strategy_ = PlacementStrategy::kPack;
};

/// Asks the GCS for the group and returns at once; the GCS reserves the bundles when it
/// can (Wait). Throws ConfigError for bad bundles or a name taken in the namespace.
PlacementGroup CreatePlacementGroup(const PlacementGroupOptions& options);
/// The group named `name` in this job's namespace, unless removed.
std::optional<PlacementGroup> GetPlacementGroup(const std::string& name);
/// Every placement group of the cluster (removed ones too, lately removed), oldest first.
std::vector<PlacementGroup> ListPlacementGroups();
/// Kills the actors placed in the group, stops its tasks, and frees its bundles; the
/// group reads kRemoved. Removing a removed group does nothing. Throws ConfigError for
/// an unknown id.
void RemovePlacementGroup(const std::string& id);

namespace detail {
struct PlacementTarget;
/// Checks the group and index (ConfigError: nil group, index out of range).
PlacementTarget MakePlacementTarget(const PlacementGroup& group, int bundle_index);
}  // namespace detail

}  // namespace lumen
