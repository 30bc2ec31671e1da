// The GCS as a whole, in this process, with a raylet played by a gRPC server of the test.
#include "gcs/gcs_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "common/ids.h"
#include "raylet.grpc.pb.h"

namespace lumen::gcs {
namespace {

/// A raylet that never answers a lease request: it parks each one until the caller
/// cancels it (or the server stops).
class ParkingRaylet : public rpc::RayletService::CallbackService {
 public:
  grpc::ServerUnaryReactor* RequestWorkerLease(grpc::CallbackServerContext*,
                                               const rpc::RequestWorkerLeaseRequest*,
                                               rpc::RequestWorkerLeaseReply*) override {
    ++parked;
    return new Parked(this);
  }
  std::atomic<int> parked{0};
  std::atomic<int> cancelled{0};

 private:
  class Parked : public grpc::ServerUnaryReactor {
   public:
    explicit Parked(ParkingRaylet* raylet) : raylet_(raylet) {}
    void OnCancel() override {
      ++raylet_->cancelled;
      Finish(grpc::Status::CANCELLED);
    }
    void OnDone() override { delete this; }

   private:
    ParkingRaylet* raylet_;
  };
};

absl::Status Call(const std::function<void(rpc::Done)>& handler) {
  std::promise<absl::Status> done;
  handler([&done](absl::Status status) { done.set_value(status); });
  return done.get_future().get();
}

bool WaitFor(const std::function<bool()>& done) {
  for (int i = 0; i < 3000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// An actor whose lease is parked at a raylet when the GCS stops: the GCS cancels the
// call and waits for its callback, which reaches the actor manager and the GCS's loop
// (it used to come later, into a GCS already destroyed).
TEST(GcsServerTest, StoppingCancelsItsCallsToRayletsAndOutlivesTheirCallbacks) {
  ParkingRaylet raylet;
  rpc::Server raylet_server;
  auto raylet_address = raylet_server.Start("127.0.0.1:0", {&raylet});
  ASSERT_TRUE(raylet_address.ok()) << raylet_address.status();

  auto gcs = std::make_unique<GcsServer>(GcsOptions{});
  ASSERT_TRUE(gcs->Start().ok());
  rpc::RegisterNodeRequest node;
  node.mutable_node()->set_node_id(NodeId::FromRandom().Binary());
  node.mutable_node()->set_raylet_address(*raylet_address);
  (*node.mutable_node()->mutable_total())["CPU"] = 1;
  rpc::RegisterNodeReply node_reply;
  ASSERT_TRUE(Call([&](rpc::Done done) { gcs->HandleRegisterNode(node, &node_reply, done); })
                  .ok());
  rpc::RegisterActorRequest actor;
  std::string actor_id = ActorId::FromRandom().Binary();
  actor.mutable_spec()->set_actor_id(actor_id);
  rpc::RegisterActorReply actor_reply;
  ASSERT_TRUE(
      Call([&](rpc::Done done) { gcs->HandleRegisterActor(actor, &actor_reply, done); }).ok());
  rpc::CreateActorRequest create;
  create.set_actor_id(actor_id);
  rpc::CreateActorReply create_reply;
  ASSERT_TRUE(
      Call([&](rpc::Done done) { gcs->HandleCreateActor(create, &create_reply, done); }).ok());
  ASSERT_TRUE(WaitFor([&] { return raylet.parked > 0; })) << "the GCS never asked for a lease";

  gcs.reset();
  EXPECT_TRUE(WaitFor([&] { return raylet.cancelled == raylet.parked; }))
      << "the GCS left its lease request parked";
  raylet_server.Shutdown();
}

}  // namespace
}  // namespace lumen::gcs
