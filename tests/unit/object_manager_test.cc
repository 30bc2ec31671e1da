// The object manager alone: two managers on loopback (chunks over their TCP channel,
// frees over real gRPC), each over an in-memory store, pulling from each other in small
// chunks.
#include "object_manager/object_manager.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include "common/mutex.h"
#include "rpc/rpc.h"
#include "rpc/socket.h"

namespace lumen::object_manager {
namespace {

/// A store in memory: objects are byte strings; copies are made in place.
class FakeStore : public LocalStore {
 public:
  void Add(const ObjectId& id, std::string bytes) {
    MutexLock lock(&mutex_);
    objects_[id] = Object{std::move(bytes), true};
  }
  /// The sealed bytes of `id`, or nullopt.
  std::optional<std::string> Sealed(const ObjectId& id) {
    MutexLock lock(&mutex_);
    auto it = objects_.find(id);
    if (it == objects_.end() || !it->second.sealed) return std::nullopt;
    return it->second.bytes;
  }
  bool Knows(const ObjectId& id) {
    MutexLock lock(&mutex_);
    return objects_.contains(id);
  }
  /// Requests served (each pins the object once): a pull's size inquiry and its chunks.
  int chunks_served() const { return chunks_served_.load(); }
  /// Pins not given back yet.
  int pinned() const { return pinned_.load(); }
  /// Pins (so chunk requests) wait until Release (a slow or hung peer).
  void HoldChunks() { hold_.store(true); }
  void ReleaseChunks() {
    hold_.store(false);
    std::vector<std::function<void()>> held;
    {
      MutexLock lock(&mutex_);
      held.swap(held_);
    }
    for (auto& fn : held) fn();
  }

  void HasSealed(const ObjectId& id, std::function<void(bool)> done) override {
    done(Sealed(id).has_value());
  }
  void CreateCopy(const ObjectId& id, uint64_t size, const std::string&,
                  std::function<void(absl::StatusOr<uint8_t*>)> done) override {
    uint8_t* dest = nullptr;
    {
      MutexLock lock(&mutex_);
      if (objects_.contains(id)) {
        dest = nullptr;
      } else {
        Object& object = objects_[id];
        object.bytes.assign(size, '\0');
        dest = reinterpret_cast<uint8_t*>(object.bytes.data());
      }
    }
    if (dest == nullptr) return done(absl::AlreadyExistsError("exists"));
    done(dest);
  }
  void FinishCopy(const ObjectId& id, bool abort,
                  std::function<void(absl::Status)> done) override {
    {
      MutexLock lock(&mutex_);
      if (abort) {
        objects_.erase(id);
      } else {
        objects_[id].sealed = true;
      }
    }
    done(absl::OkStatus());
  }
  void Pin(const ObjectId& id, std::function<void(absl::StatusOr<PinnedObject>)> done) override {
    auto pin = [this, id, done] {
      ++chunks_served_;
      MutexLock lock(&mutex_);
      auto it = objects_.find(id);
      if (it == objects_.end() || !it->second.sealed) {
        return done(absl::NotFoundError("not in this fake store"));
      }
      ++pinned_;
      const std::string& bytes = it->second.bytes;  // stays put: pinned objects are not erased
      done(PinnedObject{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
    };
    if (hold_.load()) {
      MutexLock lock(&mutex_);
      held_.push_back(pin);
      return;
    }
    pin();
  }
  void Unpin(const ObjectId&) override { --pinned_; }

 private:
  struct Object {
    std::string bytes;
    bool sealed = false;
  };
  Mutex mutex_;
  std::map<ObjectId, Object> objects_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::function<void()>> held_ ABSL_GUARDED_BY(mutex_);
  std::atomic<int> chunks_served_{0};
  std::atomic<int> pinned_{0};
  std::atomic<bool> hold_{false};
};

class ObjectManagerService final : public rpc::RayletService::CallbackService {
 public:
  explicit ObjectManagerService(ObjectManager* handler) : handler_(handler) {}
  LUMEN_RPC_FORWARD(handler_, PullObjects)
  LUMEN_RPC_FORWARD(this, FreeObjects)
  void HandleFreeObjects(const rpc::FreeObjectsRequest& request, rpc::FreeObjectsReply*,
                         rpc::Done done) {
    frees_ += request.ids_size();
    done(absl::OkStatus());
  }
  std::atomic<int> frees_{0};

 private:
  ObjectManager* handler_;
};

/// One node: a store, a manager and its server on 127.0.0.1.
struct TestNode {
  explicit TestNode(ObjectManagerOptions options)
      : manager(std::make_unique<ObjectManager>(id, &store, options)), service(manager.get()) {
    auto endpoint = server.Start("127.0.0.1:0", {&service});
    EXPECT_TRUE(endpoint.ok()) << endpoint.status();
    auto chunks = manager->Listen("127.0.0.1");
    EXPECT_TRUE(chunks.ok()) << chunks.status();
    addresses = NodeAddresses{endpoint.value_or(""), chunks.value_or("")};
  }
  ~TestNode() {
    manager->Stop();
    server.Shutdown();
  }
  NodeId id = NodeId::FromRandom();
  FakeStore store;
  std::unique_ptr<ObjectManager> manager;
  ObjectManagerService service;
  rpc::Server server;
  NodeAddresses addresses;
};

ObjectManagerOptions SmallChunks() {
  ObjectManagerOptions options;
  options.chunk_bytes = 1000;
  options.max_chunks_in_flight = 4;
  options.chunk_timeout_ms = 10000;
  options.max_view_waits = 1;
  return options;
}

std::string Pattern(size_t size) {
  std::string bytes(size, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bytes[i] = char(x);
  }
  return bytes;
}

class ObjectManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_.manager->SetNodes({{b_.id.Binary(), b_.addresses}});
    b_.manager->SetNodes({{a_.id.Binary(), a_.addresses}});
  }
  /// Asks `node`'s manager to pull `id` from `sources`; the error (empty: done).
  std::future<std::string> Pull(TestNode& node, const ObjectId& id,
                                std::vector<std::string> sources) {
    auto request = std::make_shared<rpc::PullObjectsRequest>();
    auto* item = request->add_objects();
    item->set_id(id.Binary());
    item->set_owner("owner:1");
    for (auto& source : sources) item->add_node_ids(source);
    auto reply = std::make_shared<rpc::PullObjectsReply>();
    auto promise = std::make_shared<std::promise<std::string>>();
    node.manager->HandlePullObjects(*request, reply.get(),
                                    [request, reply, promise](absl::Status status) {
                                      promise->set_value(status.ok() ? reply->errors(0)
                                                                     : status.ToString());
                                    });
    return promise->get_future();
  }
  static std::string Await(std::future<std::string> future) {
    if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      return "hung";
    }
    return future.get();
  }
  TestNode a_{SmallChunks()};
  TestNode b_{SmallChunks()};
};

TEST_F(ObjectManagerTest, PullsAnObjectInChunksByteForByte) {
  ObjectId id = ObjectId::FromRandom();
  std::string bytes = Pattern(25'500);  // 26 chunks, the last one short
  a_.store.Add(id, bytes);
  EXPECT_EQ(Await(Pull(b_, id, {a_.id.Binary()})), "");
  EXPECT_EQ(b_.store.Sealed(id), bytes);
  EXPECT_EQ(a_.store.chunks_served(), 1 + 26);  // the size, then the chunks
  // The source unpins once its last chunk is sent, which may be just after it arrived.
  for (int i = 0; i < 3000 && a_.store.pinned() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(a_.store.pinned(), 0);
  // Already here: no transfer.
  EXPECT_EQ(Await(Pull(b_, id, {a_.id.Binary()})), "");
  EXPECT_EQ(a_.store.chunks_served(), 1 + 26);
}

TEST_F(ObjectManagerTest, EmptyObjectsArriveToo) {
  ObjectId id = ObjectId::FromRandom();
  a_.store.Add(id, "");
  EXPECT_EQ(Await(Pull(b_, id, {a_.id.Binary()})), "");
  EXPECT_EQ(b_.store.Sealed(id), "");
}

TEST_F(ObjectManagerTest, ManyAskersShareOnePull) {
  ObjectId id = ObjectId::FromRandom();
  std::string bytes = Pattern(10'000);
  a_.store.Add(id, bytes);
  a_.store.HoldChunks();  // every asker arrives while the first pull is in flight
  std::vector<std::future<std::string>> askers;
  for (int i = 0; i < 5; ++i) askers.push_back(Pull(b_, id, {a_.id.Binary()}));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  a_.store.ReleaseChunks();
  // Later chunks are held again only if asked while holding; let them all through.
  for (auto& asker : askers) EXPECT_EQ(Await(std::move(asker)), "");
  EXPECT_EQ(b_.store.Sealed(id), bytes);
  EXPECT_EQ(a_.store.chunks_served(), 1 + 10);  // one pull's worth, not five
}

TEST_F(ObjectManagerTest, ASourceWithoutTheObjectOrAnUnknownNodeIsAClearError) {
  ObjectId id = ObjectId::FromRandom();
  std::string error = Await(Pull(b_, id, {a_.id.Binary()}));
  EXPECT_NE(error.find(id.Hex()), std::string::npos) << error;
  EXPECT_NE(error.find("not in this fake store"), std::string::npos) << error;
  EXPECT_FALSE(b_.store.Knows(id));
  // A node nobody told this manager of: it waits for a view refresh, then gives up.
  NodeId stranger = NodeId::FromRandom();
  auto pending = Pull(b_, id, {stranger.Binary()});
  b_.manager->SetNodes({{a_.id.Binary(), a_.addresses}});
  error = Await(std::move(pending));
  EXPECT_NE(error.find(stranger.Hex() + ": not in the cluster"), std::string::npos) << error;
  // A node declared dead: no wait for the view, the pull goes on (here: fails) at once.
  NodeId dead = NodeId::FromRandom();
  b_.manager->SetNodes({{a_.id.Binary(), a_.addresses}}, {dead.Binary()});
  error = Await(Pull(b_, id, {dead.Binary()}));
  EXPECT_NE(error.find(dead.Hex() + ": declared dead"), std::string::npos) << error;
  // The next source is tried when the first fails.
  a_.store.Add(id, "abc");
  pending = Pull(b_, id, {NodeId::FromRandom().Binary(), a_.id.Binary()});
  b_.manager->SetNodes({{a_.id.Binary(), a_.addresses}});
  EXPECT_EQ(Await(std::move(pending)), "") << "a second source";
  EXPECT_EQ(b_.store.Sealed(id), "abc");
}

// Something else on the chunk port (or a peer of another version): a clear error at the
// reader, and the server drops such a peer and goes on serving the others.
TEST_F(ObjectManagerTest, APeerThatIsNotAnObjectManagerIsAClearError) {
  // An impostor: answers every connection with an HTTP error, then closes it.
  auto listener = rpc::ListenTcp("127.0.0.1");
  ASSERT_TRUE(listener.ok()) << listener.status();
  std::atomic<bool> done{false};
  std::thread impostor([fd = listener->fd, &done] {
    while (!done.load()) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      int peer = ::accept(fd, nullptr, nullptr);
      if (peer < 0) continue;
      std::string junk = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
      rpc::SendAll(peer, junk.data(), junk.size(), rpc::Deadline::max()).IgnoreError();
      ::close(peer);
    }
  });
  NodeId other = NodeId::FromRandom();
  b_.manager->SetNodes({{a_.id.Binary(), a_.addresses},
                        {other.Binary(), NodeAddresses{"", listener->address}}});
  ObjectId id = ObjectId::FromRandom();
  a_.store.Add(id, "xyz");
  std::string error = Await(Pull(b_, id, {other.Binary()}));
  EXPECT_NE(error.find("not a lumen object manager"), std::string::npos) << error;
  EXPECT_FALSE(b_.store.Knows(id));
  // With a real holder after it, the pull goes on there.
  EXPECT_EQ(Await(Pull(b_, id, {other.Binary(), a_.id.Binary()})), "");
  EXPECT_EQ(b_.store.Sealed(id), "xyz");
  done.store(true);
  impostor.join();
  ::close(listener->fd);

  // Junk sent to A's chunk server: it closes that connection and serves on.
  auto fd = rpc::ConnectTcp(a_.addresses.objects, std::chrono::seconds(5));
  ASSERT_TRUE(fd.ok()) << fd.status();
  std::string junk(200, 'j');
  ASSERT_TRUE(rpc::SendAll(*fd, junk.data(), junk.size(), rpc::Deadline::max()).ok());
  char byte;
  EXPECT_FALSE(
      rpc::RecvAll(*fd, &byte, 1, rpc::Deadline::clock::now() + std::chrono::seconds(10)).ok())
      << "the server closes on a request it cannot read";
  ::close(*fd);
  ObjectId later = ObjectId::FromRandom();
  a_.store.Add(later, "still served");
  EXPECT_EQ(Await(Pull(b_, later, {a_.id.Binary()})), "");
  EXPECT_EQ(b_.store.Sealed(later), "still served");
}

TEST_F(ObjectManagerTest, AFreeStopsAPullAndIsPassedOn) {
  ObjectId id = ObjectId::FromRandom();
  a_.store.Add(id, Pattern(20'000));
  a_.store.HoldChunks();
  auto pending = Pull(b_, id, {a_.id.Binary()});
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  b_.manager->Free({id}, {a_.id.Binary(), b_.id.Binary()});
  a_.store.ReleaseChunks();
  std::string error = Await(std::move(pending));
  EXPECT_NE(error.find("freed by its owner"), std::string::npos) << error;
  EXPECT_FALSE(b_.store.Knows(id)) << "the half-made copy is dropped";
  // The free went on to A's raylet (here the test service), not to B itself.
  EXPECT_TRUE([&] {
    for (int i = 0; i < 100 && a_.service.frees_.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return a_.service.frees_.load() == 1;
  }());
  EXPECT_EQ(b_.service.frees_.load(), 0);
}

TEST_F(ObjectManagerTest, StopAnswersPullsInFlight) {
  ObjectId id = ObjectId::FromRandom();
  a_.store.Add(id, Pattern(5'000));
  a_.store.HoldChunks();
  auto pending = Pull(b_, id, {a_.id.Binary()});
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::thread stopper([&] { b_.manager->Stop(); });
  std::string error = Await(std::move(pending));
  stopper.join();
  EXPECT_NE(error.find("stopping"), std::string::npos) << error;
  a_.store.ReleaseChunks();
  EXPECT_EQ(Await(Pull(b_, id, {a_.id.Binary()})), "the raylet is stopping");
}

}  // namespace
}  // namespace lumen::object_manager
