#include "object_manager/object_manager.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

#include "common/logging.h"

namespace lumen::object_manager {
namespace {

constexpr int64_t kFreeTimeoutMs = 5000;

}  // namespace

/// One object being made local. Guarded by the manager's mutex, except the bytes at
/// `dest`: each chunk's range is written by the thread that received it, and the copy
/// is sealed only once no chunk is in flight (`busy` == 0).
struct ObjectManager::Pull {
  ObjectId id;
  std::string owner;
  std::vector<std::string> sources;  // binary node ids, the primary first
  size_t next_source = 0;
  std::string tried;                 // what each source said, for the error
  int view_waits = 0;
  std::string address;               // the source being read (its chunk server)
  uint64_t size = 0;
  uint8_t* dest = nullptr;           // the copy, once created
  uint64_t next_offset = 0;          // the next byte to ask for
  uint64_t written = 0;
  int busy = 0;                      // chunk reads and store calls in flight
  bool completing = false;
  std::string error;                 // set: failing (the copy is dropped)
  std::vector<std::function<void(const std::string&)>> waiters;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

ObjectManager::ObjectManager(NodeId self, LocalStore* store, ObjectManagerOptions options)
    : self_(self),
      store_(store),
      options_(options),
      server_(store, options.chunk_timeout_ms),
      client_(options.max_chunks_in_flight, options.chunk_timeout_ms) {}

ObjectManager::~ObjectManager() { Stop(); }

absl::StatusOr<std::string> ObjectManager::Listen(const std::string& ip) {
  return server_.Listen(ip);
}

void ObjectManager::SetNodes(std::map<std::string, NodeAddresses> nodes,
                             std::set<std::string> dead) {
  std::vector<PullPtr> retry;
  {
    MutexLock lock(&mutex_);
    nodes_ = std::move(nodes);
    dead_ = std::move(dead);
    retry.swap(awaiting_nodes_);
  }
  for (const PullPtr& pull : retry) StartFromNextSource(pull);
}

void ObjectManager::HandlePullObjects(const rpc::PullObjectsRequest& request,
                                      rpc::PullObjectsReply* reply, rpc::Done done) {
  const int n = request.objects_size();
  if (n == 0) return done(absl::OkStatus());
  for (int i = 0; i < n; ++i) reply->add_errors();
  auto remaining = std::make_shared<std::atomic<int>>(n);
  auto answer = [reply, done, remaining](int i, const std::string& error) {
    *reply->mutable_errors(i) = error;
    if (remaining->fetch_sub(1, std::memory_order_acq_rel) == 1) done(absl::OkStatus());
  };
  for (int i = 0; i < n; ++i) {
    const rpc::PullObjectsRequest::Item& item = request.objects(i);
    if (item.id().size() != ObjectId::Size()) {
      answer(i, "bad object id");
      continue;
    }
    ObjectId id = ObjectId::FromBinary(item.id());
    auto waiter = [answer, i](const std::string& error) { answer(i, error); };
    PullPtr pull;
    {
      MutexLock lock(&mutex_);
      if (!stopped_) {
        auto it = pulls_.find(id);
        if (it != pulls_.end()) {  // one pull per object: wait for the one in flight
          it->second->waiters.push_back(std::move(waiter));
          continue;
        }
        pull = std::make_shared<Pull>();
        pull->id = id;
        pull->owner = item.owner();
        pull->sources.assign(item.node_ids().begin(), item.node_ids().end());
        pull->waiters.push_back(waiter);
        pull->busy = 1;
        pulls_[id] = pull;
        ++outstanding_;
      }
    }
    if (pull == nullptr) {
      answer(i, "the raylet is stopping");
      continue;
    }
    store_->HasSealed(id, [this, pull](bool here) {
      {
        MutexLock lock(&mutex_);
        --pull->busy;
      }
      if (here) {
        Finish(pull, "");
      } else {
        StartFromNextSource(pull);
      }
      EndOutstanding();
    });
  }
}

void ObjectManager::StartFromNextSource(const PullPtr& pull) {
  std::string address;
  {
    MutexLock lock(&mutex_);
    while (pull->error.empty() && address.empty()) {
      if (pull->next_source >= pull->sources.size()) {
        pull->error = "object " + pull->id.Hex() + " could not be read from any node that " +
                      (pull->sources.empty() ? "holds it (its owner named none)"
                                             : "holds it: " + pull->tried);
        break;
      }
      const std::string& node = pull->sources[pull->next_source];
      if (node == self_.Binary()) {  // not here after all (freed or evicted meanwhile)
        pull->tried += "this node: not in its store; ";
        ++pull->next_source;
        continue;
      }
      auto it = nodes_.find(node);
      if (it != nodes_.end()) {
        address = it->second.objects;
        break;
      }
      if (dead_.contains(node)) {
        pull->tried += "node " + NodeId::FromBinary(node).Hex() + ": declared dead; ";
        ++pull->next_source;
        continue;
      }
      if (pull->view_waits++ < options_.max_view_waits) {  // it may have just joined
        awaiting_nodes_.push_back(pull);
        return;
      }
      pull->tried += "node " + NodeId::FromBinary(node).Hex() + ": not in the cluster; ";
      ++pull->next_source;
    }
    if (!address.empty()) {
      pull->address = address;
      ++pull->busy;
    }
  }
  if (address.empty()) return MaybeComplete(pull);
  client_.Read(address, pull->id, 0, 0, nullptr, [this, pull](absl::StatusOr<ChunkRead> read) {
    OnSize(pull, std::move(read));
  });
}

void ObjectManager::OnSize(const PullPtr& pull, absl::StatusOr<ChunkRead> read) {
  bool usable = read.ok();
  {
    MutexLock lock(&mutex_);
    --pull->busy;
    if (!pull->error.empty()) {
      usable = false;  // freed or stopping meanwhile: StartFromNextSource answers
    } else if (!usable) {
      pull->tried += "node at " + pull->address + ": " + std::string(read.status().message()) +
                     "; ";
      ++pull->next_source;
    } else {
      pull->size = read->object_size;
      ++pull->busy;
      ++outstanding_;
    }
  }
  if (!usable) return StartFromNextSource(pull);
  auto on_created = [this, pull](absl::StatusOr<uint8_t*> dest) {
    bool there = absl::IsAlreadyExists(dest.status());
    {
      MutexLock lock(&mutex_);
      --pull->busy;
      if (dest.ok()) {
        pull->dest = *dest;
      } else if (!there && pull->error.empty()) {
        pull->error = "no room for a copy of object " + pull->id.Hex() +
                      " here: " + std::string(dest.status().message());
      }
    }
    if (there) {  // made here meanwhile (a retried task's result)
      Finish(pull, "");
    } else {
      IssueChunks();
      MaybeComplete(pull);
    }
    EndOutstanding();
  };
  store_->CreateCopy(pull->id, pull->size, pull->owner, std::move(on_created));
}

void ObjectManager::IssueChunks() {
  std::vector<Chunk> start;
  {
    MutexLock lock(&mutex_);
    for (auto& [id, pull] : pulls_) {
      while (!stopped_ && chunks_in_flight_ < options_.max_chunks_in_flight &&
             pull->dest != nullptr && pull->error.empty() && pull->next_offset < pull->size) {
        uint64_t length = std::min(options_.chunk_bytes, pull->size - pull->next_offset);
        start.push_back(Chunk{pull, pull->next_offset, length, pull->address});
        pull->next_offset += length;
        ++pull->busy;
        ++chunks_in_flight_;
      }
    }
  }
  // The copy stays reserved while a chunk counts in `busy`: its range is the reader's.
  for (Chunk& chunk : start) {
    client_.Read(chunk.address, chunk.pull->id, chunk.offset, chunk.length,
                 chunk.pull->dest + chunk.offset,
                 [this, chunk](absl::StatusOr<ChunkRead> read) {
                   OnChunk(chunk, std::move(read));
                 });
  }
}

void ObjectManager::OnChunk(const Chunk& chunk, absl::StatusOr<ChunkRead> read) {
  const PullPtr& pull = chunk.pull;
  bool ok = read.ok() && read->object_size == pull->size && read->bytes == chunk.length;
  {
    MutexLock lock(&mutex_);
    --pull->busy;
    --chunks_in_flight_;
    if (ok) {
      pull->written += chunk.length;
    } else if (pull->error.empty()) {
      pull->error = !read.ok() ? std::string(read.status().message())
                               : "reading object " + pull->id.Hex() + " from the node at " +
                                     chunk.address + " failed: it sent a malformed chunk";
    }
  }
  IssueChunks();
  MaybeComplete(pull);
}

void ObjectManager::MaybeComplete(const PullPtr& pull) {
  bool abort = false;
  bool made = false;
  std::string error;
  {
    MutexLock lock(&mutex_);
    if (pull->busy > 0 || pull->completing) return;
    abort = !pull->error.empty();
    // Not failing and not all written: still reading, or waiting for a source to appear.
    if (!abort && (pull->dest == nullptr || pull->written < pull->size)) return;
    pull->completing = true;
    error = pull->error;
    made = pull->dest != nullptr;
    if (made) ++outstanding_;
  }
  if (!made) return Finish(pull, error);
  store_->FinishCopy(pull->id, abort, [this, pull, error](absl::Status status) {
    if (error.empty() && !status.ok()) {
      Finish(pull, "cannot seal the copy of object " + pull->id.Hex() + ": " +
                       std::string(status.message()));
    } else {
      Finish(pull, error);
    }
    EndOutstanding();
  });
}

void ObjectManager::Finish(const PullPtr& pull, const std::string& error) {
  std::vector<std::function<void(const std::string&)>> waiters;
  {
    MutexLock lock(&mutex_);
    auto it = pulls_.find(pull->id);
    if (it != pulls_.end() && it->second == pull) pulls_.erase(it);
    waiters.swap(pull->waiters);
  }
  if (!error.empty()) {
    LUMEN_LOG_DEBUG("object manager: {}", error);
  } else if (pull->dest != nullptr) {
    pull_stats_->objects.fetch_add(1);
    pull_stats_->bytes.fetch_add(pull->size);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                   pull->started).count();
    LUMEN_LOG_DEBUG("object manager: pulled {} ({} bytes) from {} in {:.3f} s ({:.2f} GB/s)",
                   pull->id.Hex(), pull->size, pull->address, seconds,
                   double(pull->size) / 1e9 / seconds);
  }
  for (auto& waiter : waiters) waiter(error);
}

void ObjectManager::Free(const std::vector<ObjectId>& ids,
                         const std::vector<std::string>& nodes) {
  std::vector<PullPtr> stopping;
  std::vector<std::string> addresses;
  {
    MutexLock lock(&mutex_);
    for (const ObjectId& id : ids) {
      auto it = pulls_.find(id);
      if (it == pulls_.end()) continue;
      if (it->second->error.empty()) {
        it->second->error = "object " + id.Hex() + " was freed by its owner";
      }
      stopping.push_back(it->second);
    }
    for (const std::string& node : nodes) {
      auto it = nodes_.find(node);
      if (node != self_.Binary() && it != nodes_.end()) addresses.push_back(it->second.raylet);
    }
  }
  for (const PullPtr& pull : stopping) MaybeComplete(pull);
  if (addresses.empty()) return;
  rpc::FreeObjectsRequest request;
  for (const ObjectId& id : ids) request.add_ids(id.Binary());
  for (const std::string& address : addresses) {
    std::shared_ptr<rpc::RayletService::Stub> stub = StubFor(address);
    auto context = BeginCall();
    if (context == nullptr) return;
    rpc::CallUnary<rpc::FreeObjectsRequest, rpc::FreeObjectsReply>(
        [stub](auto... args) { stub->async()->FreeObjects(args...); }, request,
        [this, context, address](absl::Status status, rpc::FreeObjectsReply&&) {
          if (!status.ok()) {
            LUMEN_LOG_WARN("object manager: the free of copies at {} failed: {}", address,
                           status.ToString());
          }
          EndCall(context);
        },
        kFreeTimeoutMs, context);
  }
}

std::shared_ptr<rpc::RayletService::Stub> ObjectManager::StubFor(const std::string& address) {
  MutexLock lock(&mutex_);
  auto& stub = stubs_[address];
  if (stub == nullptr) stub = rpc::RayletService::NewStub(rpc::MakeChannel(address));
  return stub;
}

std::shared_ptr<grpc::ClientContext> ObjectManager::BeginCall() {
  MutexLock lock(&mutex_);
  if (stopped_) return nullptr;
  auto context = std::make_shared<grpc::ClientContext>();
  calls_.insert(context);
  ++outstanding_;
  return context;
}

void ObjectManager::EndCall(const std::shared_ptr<grpc::ClientContext>& context) {
  {
    MutexLock lock(&mutex_);
    calls_.erase(context);
  }
  EndOutstanding();
}

void ObjectManager::EndOutstanding() {
  MutexLock lock(&mutex_);
  if (--outstanding_ == 0) idle_.SignalAll();
}

void ObjectManager::Stop() {
  std::vector<PullPtr> pulls;
  {
    MutexLock lock(&mutex_);
    if (!stopped_) {
      stopped_ = true;
      for (auto& [id, pull] : pulls_) {
        if (pull->error.empty()) pull->error = "the raylet is stopping";
        pulls.push_back(pull);
      }
      awaiting_nodes_.clear();
      for (const auto& context : calls_) context->TryCancel();
    }
  }
  client_.Stop();  // reads in progress end (their pulls fail), queued ones are cancelled
  server_.Stop();
  for (const PullPtr& pull : pulls) MaybeComplete(pull);
  MutexLock lock(&mutex_);
  while (outstanding_ > 0) idle_.Wait(&mutex_);
}

}  // namespace lumen::object_manager
