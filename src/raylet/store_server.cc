#include "raylet/store_server.h"

#include <unistd.h>

#include <future>

#include "common/logging.h"

namespace lumen::raylet {
namespace {

using object_store::NodeStore;

ObjectId IdFrom(const std::string& binary) { return ObjectId::FromBinary(binary); }

bool ValidId(const std::string& binary) { return binary.size() == ObjectId::Size(); }

// The object manager's store client: what it creates and reads (never a worker id,
// which are WorkerId::Size() bytes).
const object_store::ClientId kObjectManagerClient = "object-manager";

}  // namespace

uint64_t DefaultStoreCapacity() {
  uint64_t memory = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
  uint64_t want = memory / 10 * 3;
  std::optional<uint64_t> shm = object_store::ShmAvailableBytes();
  // Leave /dev/shm a margin for the segment's bookkeeping and for other programs.
  if (shm && want > *shm / 10 * 9) want = *shm / 10 * 9;
  return want;
}

absl::StatusOr<std::unique_ptr<StoreServer>> StoreServer::Create(const StoreOptions& options) {
  uint64_t capacity =
      options.capacity < 0 ? DefaultStoreCapacity() : uint64_t(options.capacity);
  if (capacity == 0) {
    return absl::InvalidArgumentError("object_store_memory must be positive");
  }
  auto allocator = object_store::ShmAllocator::Create(options.shm_name, capacity);
  if (!allocator.ok()) return allocator.status();
  rpc::ObjectStoreInfo info;
  info.set_shm_name(options.shm_name);
  info.set_mapped_size((*allocator)->mapped_size());
  info.set_capacity(capacity);
  info.set_max_inline_bytes(options.max_inline_bytes);
  auto store = std::make_unique<NodeStore>(std::move(*allocator), options.spill_dir);
  return std::unique_ptr<StoreServer>(new StoreServer(options, std::move(store), info));
}

StoreServer::StoreServer(StoreOptions options, std::unique_ptr<NodeStore> store,
                         rpc::ObjectStoreInfo info)
    : options_(std::move(options)), info_(std::move(info)), store_(std::move(store)) {
  loop_.Start();
}

StoreServer::~StoreServer() {
  loop_.Stop();
  store_.reset();
}

rpc::ObjectStoreInfo StoreServer::Info() const { return info_; }

void StoreServer::HandleCreateObject(const rpc::CreateObjectRequest& request,
                                     rpc::CreateObjectReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    if (!ValidId(request.id())) return done(absl::InvalidArgumentError("bad object id"));
    auto location =
        store_->Create(IdFrom(request.id()), request.size(), request.client(), request.owner());
    if (location.ok()) {
      reply->set_offset(location->offset);
    } else if (absl::IsAlreadyExists(location.status())) {
      reply->set_exists(true);
    } else if (absl::IsResourceExhausted(location.status())) {
      reply->set_full(true);
      reply->set_error(std::string(location.status().message()));
    } else {
      reply->set_error(std::string(location.status().message()));
    }
    done(absl::OkStatus());
  });
}

void StoreServer::HandleSealObject(const rpc::SealObjectRequest& request,
                                   rpc::SealObjectReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    if (!ValidId(request.id())) return done(absl::InvalidArgumentError("bad object id"));
    ObjectId id = IdFrom(request.id());
    absl::Status status = request.abort() ? store_->Abort(id, request.client())
                                          : store_->Seal(id, request.client());
    if (!status.ok()) reply->set_error(std::string(status.message()));
    done(absl::OkStatus());
  });
}

void StoreServer::HandleGetObjects(const rpc::GetObjectsRequest& request,
                                   rpc::GetObjectsReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    for (const std::string& binary : request.ids()) {
      auto* out = reply->add_objects();
      if (!ValidId(binary)) {
        out->set_error("bad object id");
        continue;
      }
      auto location = store_->Get(IdFrom(binary), request.client());
      if (location.ok()) {
        out->set_found(true);
        out->set_offset(location->offset);
        out->set_size(location->size);
      } else {
        out->set_full(absl::IsResourceExhausted(location.status()));
        out->set_error(std::string(location.status().message()));
      }
    }
    done(absl::OkStatus());
  });
}

void StoreServer::HandleReleaseObjects(const rpc::ReleaseObjectsRequest& request,
                                       rpc::ReleaseObjectsReply*, rpc::Done done) {
  loop_.Post([this, request, done] {
    for (const std::string& binary : request.ids()) {
      if (ValidId(binary)) store_->Release(IdFrom(binary), request.client());
    }
    done(absl::OkStatus());
  });
}

void StoreServer::HandleFreeObjects(const rpc::FreeObjectsRequest& request,
                                    rpc::FreeObjectsReply*, rpc::Done done) {
  loop_.Post([this, request, done] {
    for (const std::string& binary : request.ids()) {
      if (ValidId(binary)) store_->Free(IdFrom(binary));
    }
    done(absl::OkStatus());
  });
}

void StoreServer::HandleGetStoreStats(const rpc::GetStoreStatsRequest& request,
                                      rpc::GetStoreStatsReply* reply, rpc::Done done) {
  loop_.Post([this, request, reply, done] {
    object_store::StoreStats stats = store_->Stats();
    reply->set_capacity(stats.capacity);
    reply->set_used(stats.used);
    reply->set_num_objects(stats.num_objects);
    reply->set_num_in_memory(stats.num_in_memory);
    reply->set_num_spilled(stats.num_spilled);
    reply->set_spilled_bytes(stats.spilled_bytes);
    reply->set_total_spilled(stats.total_spilled);
    reply->set_total_restored(stats.total_restored);
    reply->set_total_evicted(stats.total_evicted);
    reply->set_spill_dir(options_.spill_dir);
    if (request.include_objects()) {
      for (const object_store::ObjectInfo& info : store_->List()) {
        rpc::StoreObjectInfo* out = reply->add_objects();
        out->set_id(info.id.Binary());
        out->set_owner(info.owner);
        out->set_size(info.size);
        out->set_sealed(info.sealed);
        out->set_in_memory(info.in_memory);
        out->set_spilled(info.spilled);
        out->set_readers(info.readers);
        out->set_primary(info.primary);
      }
    }
    done(absl::OkStatus());
  });
}

void StoreServer::HasSealed(const ObjectId& id, std::function<void(bool)> done) {
  loop_.Post([this, id, done = std::move(done)] { done(store_->IsReadable(id)); });
}

void StoreServer::CreateCopy(const ObjectId& id, uint64_t size, const std::string& owner,
                             std::function<void(absl::StatusOr<uint8_t*>)> done) {
  loop_.Post([this, id, size, owner, done = std::move(done)] {
    auto location = store_->Create(id, size, kObjectManagerClient, owner, /*primary=*/false);
    if (!location.ok()) return done(location.status());
    done(store_->base() + location->offset);
  });
}

void StoreServer::FinishCopy(const ObjectId& id, bool abort,
                             std::function<void(absl::Status)> done) {
  loop_.Post([this, id, abort, done = std::move(done)] {
    done(abort ? store_->Abort(id, kObjectManagerClient) : store_->Seal(id, kObjectManagerClient));
  });
}

void StoreServer::Pin(const ObjectId& id,
                      std::function<void(absl::StatusOr<object_manager::PinnedObject>)> done) {
  loop_.Post([this, id, done = std::move(done)] {
    if (!store_->IsReadable(id)) {
      return done(absl::NotFoundError("object " + id.Hex() + " is not in this node's store"));
    }
    auto location = store_->Get(id, kObjectManagerClient);
    if (!location.ok()) return done(location.status());
    done(object_manager::PinnedObject{store_->base() + location->offset, location->size});
  });
}

void StoreServer::Unpin(const ObjectId& id) {
  loop_.Post([this, id] { store_->Release(id, kObjectManagerClient); });
}

void StoreServer::OnOwnerGone(const std::string& owner) {
  loop_.Post([this, owner] { store_->FreeOwnedBy(owner); });
}

void StoreServer::OnClientExit(const std::string& client, const std::string& endpoint) {
  loop_.Post([this, client, endpoint] {
    store_->DisconnectClient(client);
    if (!endpoint.empty()) store_->FreeOwnedBy(endpoint);
  });
}

}  // namespace lumen::raylet
