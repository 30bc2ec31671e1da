#include "gcs/bundle_placement.h"

#include <algorithm>
#include <map>

namespace lumen::gcs {
namespace {

using Strategy = rpc::PlacementGroupInfo;

ResourceSet Sum(const std::vector<ResourceSet>& bundles, const std::vector<size_t>& which) {
  ResourceSet sum;
  for (size_t i : which) sum.Add(bundles[i]);
  return sum;
}

/// Roomiest first: most CPU free, then most of everything else, then by id (stable).
void SortRoomiest(std::vector<NodeRoom*>* nodes) {
  std::sort(nodes->begin(), nodes->end(), [](const NodeRoom* a, const NodeRoom* b) {
    double ca = a->free.Get("CPU"), cb = b->free.Get("CPU");
    if (ca != cb) return ca > cb;
    return a->node_id < b->node_id;
  });
}

}  // namespace

bool PlaceBundles(rpc::PlacementGroupInfo::Strategy strategy,
                  const std::vector<ResourceSet>& bundles, std::vector<NodeRoom> nodes,
                  std::vector<std::string>* placed, std::string* why) {
  std::vector<std::string> result = *placed;
  result.resize(bundles.size());
  std::vector<size_t> todo;
  std::map<std::string, int> used;  // node -> bundles of this group on it
  for (size_t i = 0; i < bundles.size(); ++i) {
    if (result[i].empty()) {
      todo.push_back(i);
    } else {
      ++used[result[i]];
    }
  }
  // Largest first: the hardest to fit go where there is still room.
  std::stable_sort(todo.begin(), todo.end(), [&](size_t a, size_t b) {
    return bundles[a].Get("CPU") > bundles[b].Get("CPU");
  });
  std::vector<NodeRoom*> order;
  for (NodeRoom& node : nodes) order.push_back(&node);
  SortRoomiest(&order);
  auto fail = [&](const std::string& text) {
    *why = text;
    return false;
  };
  if (strategy == Strategy::STRICT_PACK || strategy == Strategy::PACK) {
    // One node for all of them: the one already holding some, else the fullest that fits
    // (packing keeps the roomy nodes free for others).
    ResourceSet all = Sum(bundles, todo);
    NodeRoom* best = nullptr;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      NodeRoom* node = *it;
      bool allowed = used.empty() || used.count(node->node_id) > 0;
      if (allowed && node->free.Contains(all)) {
        best = node;
        break;
      }
    }
    if (best != nullptr) {
      for (size_t i : todo) result[i] = best->node_id;
      *placed = std::move(result);
      return true;
    }
    if (strategy == Strategy::STRICT_PACK) {
      return fail("no node has " + all.ToString() + " free for all the bundles together");
    }
  }
  for (size_t i : todo) {
    NodeRoom* chosen = nullptr;
    auto fits = [&](NodeRoom* node) { return node->free.Contains(bundles[i]); };
    auto uses = [&](NodeRoom* node) {
      auto it = used.find(node->node_id);
      return it == used.end() ? 0 : it->second;
    };
    auto is_used = [&](NodeRoom* node) { return uses(node) > 0; };
    if (strategy == Strategy::PACK) {  // a node already used first
      for (NodeRoom* node : order) {
        if (is_used(node) && fits(node)) {
          chosen = node;
          break;
        }
      }
    }
    for (NodeRoom* node : order) {  // then the roomiest unused node
      if (chosen == nullptr && !is_used(node) && fits(node)) chosen = node;
    }
    if (chosen == nullptr && strategy != Strategy::STRICT_SPREAD) {
      for (NodeRoom* node : order) {  // SPREAD: the least used of the nodes holding some
        if (fits(node) && (chosen == nullptr || uses(node) < uses(chosen))) {
          chosen = node;
        }
      }
    }
    if (chosen == nullptr) {
      std::string text = "bundle " + std::to_string(i) + " " + bundles[i].ToString() +
                         " fits on no node";
      if (strategy == Strategy::STRICT_SPREAD) text += " that holds no other bundle of the group";
      return fail(text);
    }
    chosen->free.Subtract(bundles[i]);
    ++used[chosen->node_id];
    result[i] = chosen->node_id;
    SortRoomiest(&order);
  }
  *placed = std::move(result);
  return true;
}

}  // namespace lumen::gcs
