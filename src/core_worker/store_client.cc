#include "core_worker/store_client.h"

#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/mutex.h"
#include "rpc/rpc.h"

namespace lumen::core {

// What views outlive the client with: the mapping and the way to release pins.
struct StoreClient::Shared {
  std::shared_ptr<rpc::RayletService::Stub> raylet;
  std::string client_id;
  std::unique_ptr<object_store::ShmMapping> mapping;
  // Releases sent and not yet answered. A create or get waits for them, so that the store
  // never refuses room that this very process has already given back.
  Mutex mutex;
  CondVar released;
  int pending_releases ABSL_GUARDED_BY(mutex) = 0;

  void WaitForReleases() {
    MutexLock lock(&mutex);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (pending_releases > 0) {
      if (!released.WaitUntil(&mutex, deadline)) break;  // a stuck raylet: go on
    }
  }
};

namespace {

// Store calls may copy gigabytes (a restore from disk): no short deadline.
constexpr int64_t kStoreCallTimeoutMs = 600000;

template <typename Request, typename Reply, typename Method>
absl::StatusOr<Reply> StoreCall(Method method, const Request& request) {
  return rpc::CallBlocking<Request, Reply>(method, request, kStoreCallTimeoutMs);
}

}  // namespace

int64_t StoreClient::TestingWriteDelayMs() {
  static const int64_t delay = [] {
    const char* value = std::getenv("LUMEN_TESTING_STORE_WRITE_DELAY_MS");
    return value ? std::atoll(value) : 0;
  }();
  return delay;
}

absl::StatusOr<std::unique_ptr<StoreClient>> StoreClient::Connect(
    std::shared_ptr<rpc::RayletService::Stub> raylet, std::string client_id,
    const rpc::ObjectStoreInfo& info) {
  auto mapping = object_store::ShmMapping::Open(info.shm_name(), info.mapped_size());
  if (!mapping.ok()) return mapping.status();
  auto shared = std::make_shared<Shared>();
  shared->raylet = std::move(raylet);
  shared->client_id = std::move(client_id);
  shared->mapping = std::move(*mapping);
  return std::unique_ptr<StoreClient>(
      new StoreClient(std::move(shared), info.max_inline_bytes(), info.capacity()));
}

StoreClient::StoreClient(std::shared_ptr<Shared> shared, uint64_t max_inline, uint64_t capacity)
    : shared_(std::move(shared)), max_inline_bytes_(max_inline), capacity_(capacity) {}

StoreClient::~StoreClient() = default;

absl::Status StoreClient::Put(const ObjectId& id, const std::string& owner, uint64_t size,
                              const std::function<void(uint8_t*)>& write) {
  shared_->WaitForReleases();
  rpc::CreateObjectRequest create;
  create.set_id(id.Binary());
  create.set_size(size);
  create.set_client(shared_->client_id);
  create.set_owner(owner);
  auto created = StoreCall<rpc::CreateObjectRequest, rpc::CreateObjectReply>(
      [this](auto* ctx, const auto& req, auto* rep) {
        return shared_->raylet->CreateObject(ctx, req, rep);
      },
      create);
  if (!created.ok()) return created.status();
  if (created->exists()) return absl::OkStatus();
  if (created->full()) return absl::ResourceExhaustedError(created->error());
  if (!created->error().empty()) return absl::InternalError(created->error());
  if (created->offset() + size > shared_->mapping->size()) {
    return absl::InternalError("the store placed an object outside its segment");
  }
  write(shared_->mapping->base() + created->offset());
  if (int64_t delay = TestingWriteDelayMs(); delay > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  }
  rpc::SealObjectRequest seal;
  seal.set_id(id.Binary());
  seal.set_client(shared_->client_id);
  auto sealed = StoreCall<rpc::SealObjectRequest, rpc::SealObjectReply>(
      [this](auto* ctx, const auto& req, auto* rep) {
        return shared_->raylet->SealObject(ctx, req, rep);
      },
      seal);
  if (!sealed.ok()) return sealed.status();
  if (!sealed->error().empty()) return absl::InternalError(sealed->error());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StoreClient::View>> StoreClient::Get(
    const std::vector<ObjectId>& ids) {
  shared_->WaitForReleases();
  rpc::GetObjectsRequest request;
  for (const ObjectId& id : ids) request.add_ids(id.Binary());
  request.set_client(shared_->client_id);
  auto reply = StoreCall<rpc::GetObjectsRequest, rpc::GetObjectsReply>(
      [this](auto* ctx, const auto& req, auto* rep) {
        return shared_->raylet->GetObjects(ctx, req, rep);
      },
      request);
  if (!reply.ok()) return reply.status();
  if (size_t(reply->objects_size()) != ids.size()) {
    return absl::InternalError("the store answered for the wrong number of objects");
  }
  std::vector<View> views(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto& location = reply->objects(int(i));
    View& view = views[i];
    if (!location.found()) {
      view.full = location.full();
      view.error = location.error();
      continue;
    }
    view.data = shared_->mapping->base() + location.offset();
    view.size = location.size();
    // Unpinned (asynchronously) when the last holder drops it; the mapping stays while
    // any view does.
    std::shared_ptr<Shared> shared = shared_;
    std::string binary = ids[i].Binary();
    view.pin = std::shared_ptr<const void>(view.data, [shared, binary](const void*) {
      rpc::ReleaseObjectsRequest release;
      release.add_ids(binary);
      release.set_client(shared->client_id);
      {
        MutexLock lock(&shared->mutex);
        ++shared->pending_releases;
      }
      rpc::CallUnary<rpc::ReleaseObjectsRequest, rpc::ReleaseObjectsReply>(
          [shared](auto... args) { shared->raylet->async()->ReleaseObjects(args...); },
          std::move(release),
          [shared](absl::Status, rpc::ReleaseObjectsReply&&) {
            MutexLock lock(&shared->mutex);
            --shared->pending_releases;
            shared->released.SignalAll();
          },
          10000);
    });
  }
  return views;
}

absl::StatusOr<rpc::GetStoreStatsReply> StoreClient::Stats(bool include_objects) {
  rpc::GetStoreStatsRequest request;
  request.set_include_objects(include_objects);
  return StoreCall<rpc::GetStoreStatsRequest, rpc::GetStoreStatsReply>(
      [this](auto* ctx, const auto& req, auto* rep) {
        return shared_->raylet->GetStoreStats(ctx, req, rep);
      },
      request);
}

absl::StatusOr<std::vector<std::string>> StoreClient::Pull(
    const std::vector<Remote>& objects) {
  rpc::PullObjectsRequest request;
  for (const Remote& object : objects) {
    rpc::PullObjectsRequest::Item* item = request.add_objects();
    item->set_id(object.id.Binary());
    item->set_owner(object.owner);
    for (const std::string& node : object.nodes) item->add_node_ids(node);
  }
  auto reply = StoreCall<rpc::PullObjectsRequest, rpc::PullObjectsReply>(
      [this](auto* ctx, const auto& req, auto* rep) {
        return shared_->raylet->PullObjects(ctx, req, rep);
      },
      request);
  if (!reply.ok()) return reply.status();
  if (size_t(reply->errors_size()) != objects.size()) {
    return absl::InternalError("the object manager answered for the wrong number of objects");
  }
  return std::vector<std::string>(reply->errors().begin(), reply->errors().end());
}

void StoreClient::Free(const std::vector<ObjectId>& ids, const std::vector<std::string>& nodes) {
  if (ids.empty()) return;
  rpc::FreeObjectsRequest request;
  for (const ObjectId& id : ids) request.add_ids(id.Binary());
  for (const std::string& node : nodes) request.add_node_ids(node);
  std::shared_ptr<Shared> shared = shared_;
  rpc::CallUnary<rpc::FreeObjectsRequest, rpc::FreeObjectsReply>(
      [shared](auto... args) { shared->raylet->async()->FreeObjects(args...); },
      std::move(request), [shared](absl::Status, rpc::FreeObjectsReply&&) {}, 10000);
}

}  // namespace lumen::core
