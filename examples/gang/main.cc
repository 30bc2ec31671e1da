// gang: gang scheduling with a placement group. A parameter-server actor and three
// trainer actors are placed together, one bundle each, in a group reserved at once: either
// every actor gets its resources or none starts (no trainer waits forever for a server
// that never came). Each trainer fits a line to its shard of the data and sends its
// gradient to the server, which averages them and hands back the new weights.
//
// On a cluster of four or more nodes the group is STRICT_SPREAD (each actor on a node of
// its own); on fewer (the embedded one-node cluster) it is SPREAD, the best effort.
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "lumen/lumen.h"

using Weights = std::pair<double, double>;  // y = a * x + b

class ParameterServer {
 public:
  static ParameterServer* Create() { return new ParameterServer(); }
  Weights Get() const { return weights_; }
  /// Averages the gradients of one step and applies them.
  Weights Apply(std::vector<Weights> gradients, double rate) {
    Weights mean{0, 0};
    for (const auto& [ga, gb] : gradients) {
      mean.first += ga / gradients.size();
      mean.second += gb / gradients.size();
    }
    weights_.first -= rate * mean.first;
    weights_.second -= rate * mean.second;
    return weights_;
  }
  std::string Node() const { return lumen::GetRuntimeContext().NodeId(); }

 private:
  Weights weights_{0, 0};
};

class Trainer {
 public:
  /// Shard `shard` of the points of y = 3x + 1 (plus a little noise).
  static Trainer* Create(int shard) { return new Trainer(shard); }
  /// The gradient of the mean squared error of `w` on this shard.
  Weights Gradient(Weights w) const {
    Weights g{0, 0};
    for (const auto& [x, y] : points_) {
      double error = w.first * x + w.second - y;
      g.first += 2 * error * x / points_.size();
      g.second += 2 * error / points_.size();
    }
    return g;
  }
  double Loss(Weights w) const {
    double sum = 0;
    for (const auto& [x, y] : points_) sum += std::pow(w.first * x + w.second - y, 2);
    return sum / points_.size();
  }
  std::string Node() const { return lumen::GetRuntimeContext().NodeId(); }

 private:
  explicit Trainer(int shard) {
    for (int i = 0; i < 100; ++i) {
      double x = shard + i / 100.0;
      points_.emplace_back(x, 3 * x + 1 + 0.01 * std::sin(37.0 * i));
    }
  }
  std::vector<std::pair<double, double>> points_;
};

LUMEN_REMOTE(ParameterServer::Create, &ParameterServer::Get, &ParameterServer::Apply,
             &ParameterServer::Node, Trainer::Create, &Trainer::Gradient, &Trainer::Loss,
             &Trainer::Node);

int main(int argc, char** argv) {
  lumen::Init(lumen::Config{}, argc, argv);
  constexpr int kTrainers = 3;
  int alive = 0;
  for (const auto& node : lumen::Nodes()) alive += node.alive;
  auto strategy = alive > kTrainers ? lumen::PlacementStrategy::kStrictSpread
                                    : lumen::PlacementStrategy::kSpread;
  // One bundle for the server and one per trainer; half a CPU each, so that the group
  // fits the smallest machine too.
  auto group = lumen::CreatePlacementGroup(
      {.name = "gang",
       .bundles = std::vector<std::map<std::string, double>>(kTrainers + 1, {{"CPU", 0.5}}),
       .strategy = strategy});
  std::printf("placement group %s: %d bundles, %s over %d node(s)\n", group.ID().c_str(),
              kTrainers + 1,
              strategy == lumen::PlacementStrategy::kStrictSpread ? "STRICT_SPREAD" : "SPREAD",
              alive);
  if (!group.Wait(std::chrono::seconds(60))) {
    std::printf("the group could not be reserved within a minute\n");
    return 1;
  }
  auto server = lumen::Actor(ParameterServer::Create)
                    .SetResource("CPU", 0.5)
                    .SetPlacementGroup(group, 0)
                    .Remote();
  std::vector<lumen::ActorHandle<Trainer>> trainers;
  for (int i = 0; i < kTrainers; ++i) {
    trainers.push_back(lumen::Actor(Trainer::Create)
                           .SetResource("CPU", 0.5)
                           .SetPlacementGroup(group, i + 1)
                           .Remote(i));
  }
  std::vector<std::string> nodes = group.BundleNodeIds();
  std::printf("server on node %.8s", lumen::Get(server.Task(&ParameterServer::Node).Remote())->c_str());
  for (int i = 0; i < kTrainers; ++i) {
    std::printf(", trainer %d on %.8s", i,
                lumen::Get(trainers[i].Task(&Trainer::Node).Remote())->c_str());
  }
  std::printf("\n");

  auto loss = [&](Weights w) {
    double sum = 0;
    for (auto& trainer : trainers) sum += *lumen::Get(trainer.Task(&Trainer::Loss).Remote(w));
    return sum / kTrainers;
  };
  Weights w = *lumen::Get(server.Task(&ParameterServer::Get).Remote());
  double first = loss(w);
  for (int step = 0; step < 200; ++step) {
    std::vector<lumen::ObjectRef<Weights>> grads;
    for (auto& trainer : trainers) grads.push_back(trainer.Task(&Trainer::Gradient).Remote(w));
    std::vector<Weights> values;
    for (const auto& g : lumen::Get(grads)) values.push_back(*g);
    w = *lumen::Get(server.Task(&ParameterServer::Apply).Remote(values, 0.1));
  }
  double last = loss(w);
  std::printf("after 200 steps: y = %.3f x + %.3f (the data: y = 3x + 1); loss %.4f -> %.6f\n",
              w.first, w.second, first, last);
  lumen::RemovePlacementGroup(group.ID());
  bool ok = last < first / 100 && std::abs(w.first - 3) < 0.1 && std::abs(w.second - 1) < 0.2;
  std::printf(ok ? "gang: ok\n" : "gang: the fit did not converge\n");
  lumen::Shutdown();
  return ok ? 0 : 1;
}
