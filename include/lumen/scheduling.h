// Scheduling strategies: where a task or actor may run (Task(...) and Actor(...)
// .SetSchedulingStrategy), and how long actors and placement groups live.
#pragma once

#include <string>
#include <variant>

namespace lumen {

/// The hybrid policy (the default): the node of the caller until it is busy, then the
/// least-loaded node with room.
struct DefaultStrategy {};
/// Over the nodes with room for the demand, in turn: for work that should not pile up on
/// one node.
struct SpreadStrategy {};
/// On one node (`node_id`, hex as NodeInfo::node_id and RuntimeContext::NodeId give it).
/// Hard (soft = false): it waits for that node's resources, and fails with
/// WorkerCrashedError / ActorDiedError naming the node when that node is not alive.
/// Soft: elsewhere (by the hybrid policy) when that node is gone or full.
struct NodeAffinityStrategy {
  std::string node_id;
  bool soft = false;
};

using SchedulingStrategy = std::variant<DefaultStrategy, SpreadStrategy, NodeAffinityStrategy>;

/// How long an actor (Actor(...).SetLifetime) or a placement group
/// (PlacementGroupOptions::lifetime) lives.
enum class ActorLifetime {
  kNonDetached,  // an actor: dies with the process that created it (the default); a
                 // placement group: is removed when its creator's job ends
  kDetached,     // lives until killed / removed, beyond its creator and its creator's job
};

}  // namespace lumen
