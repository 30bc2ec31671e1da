#include "core_worker/core_worker.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "common/logging.h"
#include "common/process.h"
#include "common/bundles.h"
#include "common/resources.h"
#include "common/status.h"

namespace lumen::core {
namespace {

// Task events: how long a periodic flush may take, and the last one at shutdown.
constexpr int64_t kFlushTimeoutMs = 10000;
constexpr int64_t kFinalFlushTimeoutMs = 2000;

class CoreWorkerGrpcService final : public rpc::CoreWorkerService::CallbackService {
 public:
  explicit CoreWorkerGrpcService(CoreWorker* handler) : handler_(handler) {}
  LUMEN_RPC_FORWARD(handler_, PushTasks)
  LUMEN_RPC_FORWARD(handler_, GetObject)
  LUMEN_RPC_FORWARD(handler_, AddBorrowers)
  LUMEN_RPC_FORWARD(handler_, RemoveBorrowers)
  LUMEN_RPC_FORWARD(handler_, Exit)
  LUMEN_RPC_FORWARD(handler_, CancelTask)

 private:
  CoreWorker* handler_;
};

std::chrono::steady_clock::time_point DeadlineFor(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::now() + timeout;
}

// The copy of `id` on dead `node` is gone, and `why` it cannot be made again.
ObjectPtr LostForGood(const ObjectId& id, const std::string& node, const absl::Status& why) {
  return StoredObject::MakeError(ErrorKind::kObjectLost,
                                 "object " + id.Hex() + " was lost with node " +
                                     NodeId::FromBinary(node).Hex() +
                                     " and cannot be made again: " + std::string(why.message()));
}

ObjectPtr OwnerGoneError(const ObjectId& id, const std::string& owner) {
  return StoredObject::MakeError(ErrorKind::kOwnerDied,
                                 "the owner of object " + id.Hex() + " (" + owner +
                                     ") died: its process exited or its node was declared dead");
}

}  // namespace

CoreWorker::CoreWorker(CoreWorkerOptions options)
    : options_(std::move(options)),
      refs_([this](const ReferenceCounter::Freed& freed) { OnFree(freed); }) {}

absl::StatusOr<std::unique_ptr<CoreWorker>> CoreWorker::Create(CoreWorkerOptions options) {
  std::unique_ptr<CoreWorker> worker(new CoreWorker(std::move(options)));
  absl::Status started = worker->Start();
  if (!started.ok()) {
    worker->Shutdown();
    worker->WaitForCallbacks();
    return started;
  }
  return worker;
}

absl::Status CoreWorker::Start() {
  raylet_ = rpc::RayletService::NewStub(rpc::MakeChannel(options_.raylet_endpoint));
  raylet_client_ = MakeGrpcRayletClient(options_.raylet_endpoint);
  gcs_ = rpc::GcsService::NewStub(rpc::MakeChannel(options_.gcs_endpoint));
  task_events_ =
      std::make_unique<TaskEvents>(options_.task_events, options_.worker_id, options_.job_id);
  executor_ = std::make_unique<TaskExecutor>(
      [this](const rpc::ObjectRefProto& ref) -> ObjectPtr {
        auto objects = Get({ref}, std::chrono::milliseconds(-1));
        if (!objects.ok()) {
          return StoredObject::MakeError(ErrorKind::kObjectLost,
                                         std::string(objects.status().message()));
        }
        return (*objects)[0];
      },
      [this](const std::string& actor_id) { ReportActorExit(actor_id); },
      [this](const ObjectId& id, const rpc::TaskSpec& spec,
             const std::string& bytes) -> absl::StatusOr<std::string> {
        // The primary copy stays here; an owner on another node pulls it when it reads it.
        auto stored = MaybePutInStore(id, spec.owner(), bytes);
        if (!stored.ok()) return stored.status();
        return *stored ? options_.node_id.Binary() : std::string();
      },
      [this](const std::string& caller, const std::vector<detail::RefData>& returned,
             bool delivered) {
        HandOffReturned(caller, returned, delivered);
        // Events of the tasks this one submitted go now: a worker may be stopped (its
        // job ended) before the next period.
        if (task_events_->HasBuffered()) FlushTaskEvents(/*blocking=*/false);
      });
  timers_.Start();
  service_ = std::make_unique<CoreWorkerGrpcService>(this);
  auto endpoints = server_.Start(
      std::vector<std::string>{options_.listen_socket, options_.node_ip + ":0"},
      {service_.get()});
  if (!endpoints.ok()) return endpoints.status();
  local_endpoint_ = (*endpoints)[0];
  endpoint_ = (*endpoints)[1];
  LUMEN_RETURN_IF_ERROR(frames_.Start());
  if (options_.is_worker) {
    // Idle, the executor reads the connection its last push came on: the next one
    // (a caller's next call) then wakes it directly, not through the loop's thread.
    executor_->SetIdleWait([this](const Waker& waker) {
      std::shared_ptr<rpc::FrameConnection> connection;
      {
        MutexLock lock(&last_push_mutex_);
        connection = last_push_.lock();
      }
      if (connection == nullptr) return false;
      rpc::FrameConnection::Borrow borrow(std::move(connection));
      return borrow.Wait(waker, std::chrono::steady_clock::time_point::max());
    });
    LUMEN_RETURN_IF_ERROR(frames_.Listen(
        PushSocketPath(local_endpoint_),
        [this](const std::shared_ptr<rpc::FrameConnection>& connection, uint64_t id,
               std::string payload) { HandleFramePush(connection, id, std::move(payload)); }));
    // Callers on other nodes push over TCP (the same frames), at its node's address.
    auto frame_address = frames_.ListenTcp(options_.node_ip);
    if (!frame_address.ok()) return frame_address.status();
    frame_address_ = *frame_address;
  }
  // Pushes (tasks and actor calls) go over frames; gRPC where a worker takes none.
  WorkerClientFactory push_clients = worker_clients_.Wrap(
      MakeFrameWorkerClientFactory(&frames_, MakeGrpcWorkerClientFactory(), push_routes_));
  FreeStored free_stored = [this](const ObjectId& id, const std::string& node) {
    FreeInStore(id, node);
  };
  submitter_ = std::make_unique<TaskSubmitter>(SubmitterDeps{
      endpoint_, options_.job_id.Binary(), options_.worker_id, &store_, &refs_, &timers_,
      raylet_client_.get(), push_clients, [this] { return ClusterCapacity(); },
      free_stored, MakeGrpcRayletFactory(), JobLaunch(), &lineage_,
      [this](const std::string& endpoint, const TaskId& task, std::function<void()> will_skip) {
        CancelOnWorker(endpoint, task, std::move(will_skip));
      },
      [this](const std::string& group_id) { return PlacementGroupRemoved(group_id); },
      options_.node_id.Binary(), task_events_.get()});
  gcs_actor_client_ = MakeGrpcGcsActorClient(options_.gcs_endpoint);
  actor_submitter_ = std::make_unique<ActorSubmitter>(
      ActorSubmitterDeps{endpoint_, options_.worker_id.Binary(), &store_, &refs_, &timers_,
                         gcs_actor_client_.get(), push_clients, free_stored, &options_.node_id,
                         [this](const ActorId& actor) { ReleaseCreationUses(actor); },
                         /*resend_after_ms=*/20, task_events_.get()});

  if (options_.is_worker) {
    rpc::RegisterWorkerRequest request;
    request.set_worker_id(options_.worker_id.Binary());
    request.set_pid(getpid());
    request.set_endpoint(local_endpoint_);
    request.set_address(endpoint_);
    request.set_frame_address(frame_address_);
    auto reply = rpc::CallBlocking<rpc::RegisterWorkerRequest, rpc::RegisterWorkerReply>(
        [this](auto* ctx, const auto& req, auto* rep) {
          return raylet_->RegisterWorker(ctx, req, rep);
        },
        request, 30000);
    if (!reply.ok()) return reply.status();
    options_.node_id = NodeId::FromBinary(reply->node_id());
    LUMEN_RETURN_IF_ERROR(ConnectStore(reply->store()));
  } else {
    rpc::RegisterDriverRequest request;
    request.set_job_id(options_.job_id.Binary());
    *request.mutable_launch() = options_.launch;
    request.set_driver_pid(getpid());
    request.set_worker_id(options_.worker_id.Binary());
    request.set_endpoint(local_endpoint_);
    request.set_address(endpoint_);
    auto reply = rpc::CallBlocking<rpc::RegisterDriverRequest, rpc::RegisterDriverReply>(
        [this](auto* ctx, const auto& req, auto* rep) {
          return raylet_->RegisterDriver(ctx, req, rep);
        },
        request, 30000);
    if (!reply.ok()) return reply.status();
    options_.node_id = NodeId::FromBinary(reply->node_id());
    LUMEN_RETURN_IF_ERROR(ConnectStore(reply->store()));
  }
  peer_watch_ = std::make_unique<PeerWatch>(
      gcs_.get(), &timers_,
      [this](const std::vector<std::string>& addresses) { OnPeersGone(addresses); });
  peer_watch_->Start();
  if (task_events_->enabled()) {
    timers_.RunEvery(std::chrono::milliseconds(TaskEvents::kFlushPeriodMs),
                     [this] { FlushTaskEvents(/*blocking=*/false); });
  }
  return absl::OkStatus();
}

void CoreWorker::FlushTaskEvents(bool blocking) {
  rpc::AddTaskEventsRequest request;
  if (blocking) {
    if (!task_events_->TakeBatch(&request)) return;
    auto sent = rpc::CallBlocking<rpc::AddTaskEventsRequest, rpc::AddTaskEventsReply>(
        [this](auto* ctx, const auto& req, auto* rep) {
          return gcs_->AddTaskEvents(ctx, req, rep);
        },
        request, kFinalFlushTimeoutMs);
    if (!sent.ok()) {
      LUMEN_LOG_WARN("core worker: the last {} task event(s) did not reach the GCS: {}",
                     request.events_size(), std::string(sent.status().message()));
    }
    return;
  }
  if (flush_in_flight_.exchange(true)) return;  // the next period sends what waits
  if (!task_events_->TakeBatch(&request)) {
    flush_in_flight_ = false;
    return;
  }
  rpcs_.Begin();
  rpc::CallUnary<rpc::AddTaskEventsRequest, rpc::AddTaskEventsReply>(
      [this](auto... args) { gcs_->async()->AddTaskEvents(args...); }, std::move(request),
      [this](absl::Status status, rpc::AddTaskEventsReply&&) {
        // Lost with an unreachable GCS: the state API misses them (they are not resent,
        // so that a GCS that is down cannot make a worker's memory grow).
        if (!status.ok()) {
          LUMEN_LOG_DEBUG("core worker: task events lost: {}", std::string(status.message()));
        }
        flush_in_flight_ = false;
        rpcs_.End();
      },
      kFlushTimeoutMs);
}

rpc::JobLaunchInfo CoreWorker::JobLaunch() const {
  // A worker runs the driver's executable with the driver's arguments: its own.
  rpc::JobLaunchInfo launch = options_.launch;
  if (!options_.is_worker) {
    launch.set_driver_worker_id(options_.worker_id.Binary());
    launch.set_driver_address(endpoint_);
  }
  return launch;
}

absl::Status CoreWorker::ConnectStore(const rpc::ObjectStoreInfo& info) {
  auto client = StoreClient::Connect(
      std::shared_ptr<rpc::RayletService::Stub>(
          rpc::RayletService::NewStub(rpc::MakeChannel(options_.raylet_endpoint))),
      options_.worker_id.Binary(), info);
  if (!client.ok()) {
    return absl::Status(client.status().code(), "cannot map the node's object store: " +
                                                    std::string(client.status().message()));
  }
  store_client_ = std::move(*client);
  return absl::OkStatus();
}

CoreWorker::~CoreWorker() {
  Shutdown();
  WaitForCallbacks();
  timers_.Stop();
}

void CoreWorker::Shutdown() {
  if (shutdown_.exchange(true)) return;
  if (peer_watch_) peer_watch_->Stop();
  if (executor_) executor_->Stop();
  // Owners that outlive this process may free what it borrowed.
  SendRemoveBorrowers(refs_.TakeAllRegistered(), /*wait=*/true);
  if (submitter_) submitter_->Shutdown();
  if (actor_submitter_) actor_submitter_->Shutdown();
  if (task_events_ && task_events_->enabled() && gcs_) {
    // What ended since the last period (the driver's last tasks, say).
    FlushTaskEvents(/*blocking=*/true);
  }
  frames_.Stop();  // fails the calls still out, so their callbacks end
  // Answers parked GetObject calls (with NOT_FOUND) so the server can stop.
  store_.Shutdown();
  server_.Shutdown(100);
}

void CoreWorker::WaitForCallbacks() {
  auto limit = std::chrono::milliseconds(5000);
  if (submitter_ && !submitter_->WaitForCallbacks(limit)) {
    LUMEN_LOG_WARN("core worker: task RPCs still in flight at shutdown");
  }
  if (actor_submitter_ && !actor_submitter_->WaitForCallbacks(limit)) {
    LUMEN_LOG_WARN("core worker: actor RPCs still in flight at shutdown");
  }
  if (!rpcs_.WaitIdle(limit)) LUMEN_LOG_WARN("core worker: fetches still in flight at shutdown");
}

absl::StatusOr<bool> CoreWorker::MaybePutInStore(const ObjectId& id, const std::string& owner,
                                                 const std::string& bytes) {
  if (!GoesToStore(bytes.size())) return false;
  absl::Status status = store_client_->Put(
      id, owner, bytes.size(),
      [&bytes](uint8_t* dest) { std::memcpy(dest, bytes.data(), bytes.size()); });
  if (!status.ok()) return status;
  return true;
}

absl::StatusOr<rpc::ObjectRefProto> CoreWorker::Put(std::string data,
                                                    std::vector<rpc::ObjectRefProto> nested) {
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
  auto object = std::make_shared<StoredObject>();
  auto stored = MaybePutInStore(id, endpoint_, data);
  if (!stored.ok()) return stored.status();
  object->in_store = *stored;
  if (*stored) object->store_node = options_.node_id.Binary();
  if (*stored) object->store_size = data.size();
  if (!*stored) object->data = std::move(data);
  google::protobuf::RepeatedPtrField<rpc::ObjectRefProto> inners(nested.begin(), nested.end());
  object->nested = std::move(nested);
  rpc::ObjectRefProto ref = AddPut(id, std::move(object));
  refs_.AddContained(id, inners, endpoint_, /*registered=*/false);  // the value holds them
  return ref;
}

absl::StatusOr<rpc::ObjectRefProto> CoreWorker::PutWith(
    uint64_t size, const std::function<void(uint8_t*)>& write) {
  ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
  auto object = std::make_shared<StoredObject>();
  if (GoesToStore(size)) {
    LUMEN_RETURN_IF_ERROR(store_client_->Put(id, endpoint_, size, write));
    object->in_store = true;
    object->store_node = options_.node_id.Binary();
    object->store_size = size;
  } else {
    object->data.resize(size);
    write(reinterpret_cast<uint8_t*>(object->data.data()));
  }
  return AddPut(id, std::move(object));
}

rpc::ObjectRefProto CoreWorker::AddPut(const ObjectId& id, ObjectPtr object) {
  refs_.AddOwned(id);
  store_.Put(id, std::move(object));
  rpc::ObjectRefProto ref;
  ref.set_id(id.Binary());
  ref.set_owner(endpoint_);
  return ref;
}

void CoreWorker::FetchFromOwner(const ObjectId& id, const std::string& owner,
                                const std::string& lost_node) {
  if (peer_watch_ && peer_watch_->IsGone(owner)) {
    store_.Put(id, OwnerGoneError(id, owner));
    return;
  }
  auto call = std::make_shared<grpc::ClientContext>();
  {
    MutexLock lock(&fetch_mutex_);
    if (!fetching_.emplace(id, Fetch{owner, call}).second) return;
  }
  rpc::GetObjectRequest request;
  request.set_id(id.Binary());
  request.set_timeout_ms(-1);
  request.set_requester_node_id(options_.node_id.Binary());
  request.set_lost_node_id(lost_node);
  auto stub = PeerStub(owner);
  rpcs_.Begin();
  rpc::CallUnary<rpc::GetObjectRequest, rpc::GetObjectReply>(
      [stub](auto... args) { stub->async()->GetObject(args...); }, std::move(request),
      [this, id, owner, stub](absl::Status status, rpc::GetObjectReply&& reply) {
        ObjectPtr object;
        bool owner_gone = false;
        {
          MutexLock lock(&fetch_mutex_);
          auto it = fetching_.find(id);
          if (it != fetching_.end()) owner_gone = it->second.owner_gone;
          fetching_.erase(id);
        }
        if (owner_gone) {
          object = OwnerGoneError(id, owner);
        } else if (!status.ok()) {
          object = StoredObject::MakeError(
              ErrorKind::kOwnerDied, "the owner of object " + id.Hex() + " (" + owner +
                                         ") is unreachable: " + std::string(status.message()));
        } else if (reply.state() == rpc::GetObjectReply::NOT_FOUND) {
          object = StoredObject::MakeError(
              ErrorKind::kObjectLost,
              "object " + id.Hex() + " no longer exists at its owner (" + owner + ")");
        } else {
          object = StoredObject::FromProto(reply.data(), reply.is_error(), reply.error(),
                                           reply.in_store(), reply.store_node_id());
        }
        store_.Put(id, object);
        rpcs_.End();
      },
      /*timeout_ms=*/-1, std::move(call));
}

absl::StatusOr<std::vector<ObjectPtr>> CoreWorker::Get(
    const std::vector<rpc::ObjectRefProto>& refs, std::chrono::milliseconds timeout) {
  return GetRounds(refs, timeout, /*rebuilds=*/3);
}

absl::StatusOr<std::vector<ObjectPtr>> CoreWorker::GetRounds(
    const std::vector<rpc::ObjectRefProto>& refs, std::chrono::milliseconds timeout,
    int rebuilds) {
  std::vector<ObjectId> ids;
  ids.reserve(refs.size());
  for (const auto& ref : refs) {
    ObjectId id = ObjectId::FromBinary(ref.id());
    if (id.IsNil()) return absl::InvalidArgumentError("Get of a nil ObjectRef");
    ids.push_back(id);
    if (ref.owner() != endpoint_ && store_.GetIfReady(id) == nullptr) {
      FetchFromOwner(id, ref.owner());
    }
  }
  std::vector<ObjectPtr> out;
  auto deadline = DeadlineFor(timeout);
  size_t ready = store_.Wait(ids, ids.size(), std::chrono::steady_clock::now(), &out);
  if (ready < ids.size()) {
    NotifyBlocked(true);
    // When the first missing result comes back on a frame connection, this thread reads
    // that connection itself while it waits (one wake-up instead of two).
    std::shared_ptr<Waker> waker = Waker::ForThisThread();
    size_t first_missing = size_t(std::find(out.begin(), out.end(), nullptr) - out.begin());
    std::shared_ptr<rpc::FrameConnection> route =
        waker ? push_routes_->Find(ids[first_missing].Task()) : nullptr;
    std::optional<rpc::FrameConnection::Borrow> borrow;
    if (route != nullptr) borrow.emplace(std::move(route));
    MemoryStore::Sleeper sleeper{
        waker, [&borrow, &waker](std::chrono::steady_clock::time_point until) {
          if (borrow->Wait(*waker, until)) return true;
          borrow.reset();  // closed: let its socket go now, the wait goes on without it
          return false;
        }};
    ready = store_.Wait(ids, ids.size(), deadline, &out, borrow ? &sleeper : nullptr);
    NotifyBlocked(false);
  }
  if (ready < ids.size()) {
    if (shutdown_) return absl::CancelledError("lumen is shutting down");
    return absl::DeadlineExceededError("Get timed out after " +
                                       std::to_string(timeout.count()) + " ms with " +
                                       std::to_string(ids.size() - ready) + " of " +
                                       std::to_string(ids.size()) + " objects not ready");
  }
  // Borrowed values are cached only while this process holds a handle to them.
  for (size_t i = 0; i < ids.size(); ++i) {
    if (refs[i].owner() != endpoint_ && refs_.OwnerOf(ids[i]).empty()) store_.Erase(ids[i]);
  }
  std::vector<LostCopy> lost;
  ResolveStored(&out, ids, refs, &lost);
  // Copies lost with their nodes: made again (or the owner is asked to), then waited for.
  std::vector<rpc::ObjectRefProto> again;
  std::vector<size_t> where;
  for (const LostCopy& copy : lost) {
    if (rebuilds <= 0) break;
    absl::Status recovered = Recover(refs[copy.index], copy.node);
    if (recovered.ok()) {
      again.push_back(refs[copy.index]);
      where.push_back(copy.index);
    } else {
      out[copy.index] = LostForGood(ids[copy.index], copy.node, recovered);
    }
  }
  if (again.empty()) return out;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  auto rest = timeout.count() < 0 ? timeout : std::max(left, std::chrono::milliseconds(0));
  auto rebuilt = GetRounds(again, rest, rebuilds - 1);
  if (!rebuilt.ok()) return rebuilt.status();
  for (size_t k = 0; k < where.size(); ++k) out[where[k]] = (*rebuilt)[k];
  return out;
}

void CoreWorker::ResolveStored(std::vector<ObjectPtr>* objects,
                               const std::vector<ObjectId>& ids,
                               const std::vector<rpc::ObjectRefProto>& refs,
                               std::vector<LostCopy>* lost) {
  std::vector<size_t> wanted;  // indexes of store markers still to resolve
  for (size_t i = 0; i < objects->size(); ++i) {
    if ((*objects)[i] && (*objects)[i]->in_store) wanted.push_back(i);
  }
  const std::string& here = options_.node_id.Binary();
  // A copy may already be here; the others are pulled, then read. A pulled copy is
  // secondary and may be evicted before it is read: pulled again, a few times.
  for (int attempt = 0; !wanted.empty(); ++attempt) {
    std::vector<ObjectId> wanted_ids;
    for (size_t i : wanted) wanted_ids.push_back(ids[i]);
    absl::StatusOr<std::vector<StoreClient::View>> views =
        store_client_ ? store_client_->Get(wanted_ids)
                      : absl::FailedPreconditionError("no object store connected");
    std::vector<size_t> missing;
    std::vector<StoreClient::Remote> remote;
    for (size_t k = 0; k < wanted.size(); ++k) {
      ObjectPtr& slot = (*objects)[wanted[k]];
      const ObjectId& id = wanted_ids[k];
      if (!views.ok()) {
        slot = StoredObject::MakeError(
            ErrorKind::kObjectLost, "cannot reach the node's object store for object " +
                                        id.Hex() + ": " + std::string(views.status().message()));
        continue;
      }
      StoreClient::View& view = (*views)[k];
      if (view.data == nullptr) {
        if (!view.full && !slot->store_node.empty() && slot->store_node != here &&
            attempt < 3) {
          missing.push_back(wanted[k]);
          remote.push_back({id, refs[wanted[k]].owner(), {slot->store_node}});
          // Copies pulled to other nodes may still be there when the primary is not.
          if (refs[wanted[k]].owner() == endpoint_) {
            MutexLock lock(&copies_mutex_);
            auto copies = copies_.find(id);
            if (copies != copies_.end()) {
              for (const std::string& node : copies->second) {
                if (node != slot->store_node) remote.back().nodes.push_back(node);
              }
            }
          }
          continue;
        }
        slot = StoredObject::MakeError(
            view.full ? ErrorKind::kObjectStoreFull : ErrorKind::kObjectLost,
            "object " + id.Hex() + " is not in the node's object store: " + view.error);
        continue;
      }
      auto resolved = std::make_shared<StoredObject>();
      resolved->view = view.data;
      resolved->view_size = view.size;
      resolved->pin = std::move(view.pin);
      resolved->nested = slot->nested;
      slot = std::move(resolved);
    }
    wanted.clear();
    if (missing.empty()) break;
    absl::StatusOr<std::vector<std::string>> pulled = store_client_->Pull(remote);
    for (size_t k = 0; k < missing.size(); ++k) {
      std::string error = !pulled.ok() ? std::string(pulled.status().message()) : (*pulled)[k];
      if (error.empty()) {
        wanted.push_back(missing[k]);
        continue;
      }
      bool full = error.find("object store full") != std::string::npos;
      if (!full) lost->push_back(LostCopy{missing[k], remote[k].nodes.front()});
      (*objects)[missing[k]] = StoredObject::MakeError(
          full ? ErrorKind::kObjectStoreFull : ErrorKind::kObjectLost,
          "cannot copy object " + remote[k].id.Hex() + " to this node: " + error);
    }
  }
}

void CoreWorker::FreeInStore(const ObjectId& id, const std::string& store_node) {
  lineage_.Forget(id);
  std::vector<std::string> elsewhere;
  {
    MutexLock lock(&copies_mutex_);
    auto it = copies_.find(id);
    if (it != copies_.end()) {
      elsewhere = std::move(it->second);
      copies_.erase(it);
    }
  }
  if (!store_node.empty()) elsewhere.push_back(store_node);
  std::erase(elsewhere, options_.node_id.Binary());
  // This node's raylet frees its copy and passes the free on to the others.
  if (store_client_) store_client_->Free({id}, elsewhere);
}

absl::Status CoreWorker::PromoteLargeArgs(std::vector<rpc::TaskArg>* args,
                                          std::vector<ObjectId>* promoted) {
  for (rpc::TaskArg& arg : *args) {
    if (arg.has_ref()) continue;
    ObjectId id = ObjectId::ForPut(TaskId::FromRandom(), 0);
    auto stored = MaybePutInStore(id, endpoint_, arg.value());
    if (!stored.ok()) {
      ReleasePromoted(*promoted);
      return stored.status();
    }
    if (!*stored) continue;
    auto object = std::make_shared<StoredObject>();
    object->in_store = true;
    object->store_node = options_.node_id.Binary();
    object->store_size = arg.value().size();
    object->nested.assign(arg.nested().begin(), arg.nested().end());
    *arg.mutable_ref() = AddPut(id, std::move(object));  // replaces the value (a oneof)
    refs_.AddContained(id, arg.nested(), endpoint_, /*registered=*/false);
    promoted->push_back(id);
  }
  return absl::OkStatus();
}

void CoreWorker::ReleasePromoted(const std::vector<ObjectId>& promoted) {
  for (const ObjectId& id : promoted) refs_.RemoveLocal(id);
}

std::vector<bool> CoreWorker::Wait(const std::vector<rpc::ObjectRefProto>& refs,
                                   int num_returns, std::chrono::milliseconds timeout) {
  std::vector<ObjectId> ids;
  for (const auto& ref : refs) {
    ObjectId id = ObjectId::FromBinary(ref.id());
    ids.push_back(id);
    if (ref.owner() != endpoint_ && store_.GetIfReady(id) == nullptr) {
      FetchFromOwner(id, ref.owner());
    }
  }
  std::vector<ObjectPtr> out;
  size_t ready = store_.Wait(ids, size_t(num_returns), std::chrono::steady_clock::now(), &out);
  if (ready < size_t(num_returns)) {
    NotifyBlocked(true);
    store_.Wait(ids, size_t(num_returns), DeadlineFor(timeout), &out);
    NotifyBlocked(false);
  }
  std::vector<bool> flags;
  for (const auto& object : out) flags.push_back(object != nullptr);
  return flags;
}

void CoreWorker::AddLocalRef(const std::string& id, const std::string& owner) {
  refs_.AddLocal(ObjectId::FromBinary(id), owner == endpoint_ ? "" : owner);
}

void CoreWorker::RemoveLocalRef(const std::string& id) {
  refs_.RemoveLocal(ObjectId::FromBinary(id));
}

void PlaceInBundle(const rpc::SchedulingStrategy& where,
                   google::protobuf::Map<std::string, double>* resources) {
  if (where.kind() != rpc::SchedulingStrategy::PLACEMENT_GROUP) return;
  ResourceSet demand = ResourceSet::FromMap({resources->begin(), resources->end()});
  ResourceSet placed = BundleDemand(
      demand, PlacementGroupId::FromBinary(where.placement_group_id()), where.bundle_index());
  resources->clear();
  for (const auto& [name, amount] : placed.ToMap()) (*resources)[name] = amount;
}

absl::StatusOr<rpc::ObjectRefProto> CoreWorker::SubmitTask(const std::string& function_name,
                                                           std::vector<rpc::TaskArg> args,
                                                           const TaskOptionsInternal& options) {
  std::vector<ObjectId> promoted;
  LUMEN_RETURN_IF_ERROR(PromoteLargeArgs(&args, &promoted));
  rpc::TaskSpec spec;
  TaskId task_id = TaskId::FromRandom();
  spec.set_task_id(task_id.Binary());
  spec.set_job_id(options_.job_id.Binary());
  spec.set_function_name(function_name);
  spec.set_name(options.name);
  for (auto& arg : args) *spec.add_args() = std::move(arg);
  spec.set_num_returns(1);
  if (options.resources.empty()) {
    (*spec.mutable_resources())["CPU"] = 1;
  } else {
    // A zero amount is no demand: {"CPU": 0} alone runs on no CPU at all.
    for (const auto& [name, amount] : options.resources) {
      if (amount > 0) (*spec.mutable_resources())[name] = amount;
    }
  }
  spec.set_owner(endpoint_);
  *spec.mutable_scheduling() = options.scheduling;
  PlaceInBundle(options.scheduling, spec.mutable_resources());
  if (options_.is_worker) spec.set_parent_task_id(executor_->CurrentContext().task_id);
  ObjectId return_id = ObjectId::ForTaskReturn(task_id, 1);
  refs_.AddOwned(return_id);
  submitter_->Submit(std::move(spec), options.max_retries, options.retry_exceptions);
  ReleasePromoted(promoted);  // the pending task holds them now
  rpc::ObjectRefProto ref;
  ref.set_id(return_id.Binary());
  ref.set_owner(endpoint_);
  return ref;
}

absl::Status CoreWorker::Cancel(const rpc::ObjectRefProto& ref, bool force) {
  ObjectId id = ObjectId::FromBinary(ref.id());
  if (id.IsNil()) return absl::InvalidArgumentError("Cancel of a nil ObjectRef");
  std::string what = "Cancel: object " + id.Hex();
  if (ref.owner() != endpoint_) {
    return absl::InvalidArgumentError(what + " is owned by another process (" + ref.owner() +
                                      "); only its owner can cancel its task");
  }
  if (id.IsPut()) return absl::InvalidArgumentError(what + " was made by Put, not by a task");
  if (store_.GetIfReady(id) != nullptr) return absl::OkStatus();  // finished: nothing to do
  absl::Status cancelled = submitter_->Cancel(id.Task(), force);
  if (!absl::IsNotFound(cancelled) || store_.GetIfReady(id) != nullptr) return cancelled;
  return absl::InvalidArgumentError(what +
                                    " is not the result of a task (actor calls cannot be "
                                    "cancelled)");
}

void CoreWorker::CancelOnWorker(const std::string& endpoint, const TaskId& task,
                                std::function<void()> will_skip) {
  rpc::CancelTaskRequest request;
  request.set_task_id(task.Binary());
  auto stub = PeerStub(endpoint);
  rpcs_.Begin();
  rpc::CallUnary<rpc::CancelTaskRequest, rpc::CancelTaskReply>(
      [stub](auto... args) { stub->async()->CancelTask(args...); }, std::move(request),
      [this, stub, will_skip = std::move(will_skip)](absl::Status status,
                                                     rpc::CancelTaskReply&& reply) {
        // A worker gone meanwhile runs nothing more: its tasks are retried or cancelled.
        if (!status.ok()) LUMEN_LOG_DEBUG("core worker: CancelTask: {}", status.ToString());
        if (status.ok() && reply.will_skip()) will_skip();
        rpcs_.End();
      },
      10000);
}

void CoreWorker::HandleCancelTask(const rpc::CancelTaskRequest& request,
                                  rpc::CancelTaskReply* reply, rpc::Done done) {
  if (!options_.is_worker) return done(absl::FailedPreconditionError("a driver runs no tasks"));
  reply->set_will_skip(executor_->Cancel(request.task_id()) ==
                       TaskExecutor::CancelOutcome::kWillSkip);
  done(absl::OkStatus());
}

void CoreWorker::RunTaskLoop() { executor_->Run(); }

void CoreWorker::HandlePushTasks(const rpc::PushTasksRequest& request,
                                 rpc::PushTasksReply* reply, rpc::Done done) {
  if (!options_.is_worker) return done(absl::FailedPreconditionError("a driver runs no tasks"));
  executor_->Enqueue(&request, reply, std::move(done));
}

void CoreWorker::HandleFramePush(const std::shared_ptr<rpc::FrameConnection>& connection,
                                 uint64_t id, std::string payload) {
  struct Push {
    rpc::PushTasksRequest request;
    rpc::PushTasksReply reply;
  };
  {
    MutexLock lock(&last_push_mutex_);
    last_push_ = connection;
  }
  auto push = std::make_shared<Push>();
  if (!push->request.ParseFromString(payload)) {
    connection->Reply(id, absl::InvalidArgumentError("malformed PushTasks request"), "");
    return;
  }
  HandlePushTasks(push->request, &push->reply, [connection, id, push](absl::Status status) {
    connection->Reply(id, status, status.ok() ? push->reply.SerializeAsString() : "");
  });
}

void CoreWorker::HandleGetObject(const rpc::GetObjectRequest& request,
                                 rpc::GetObjectReply* reply, rpc::Done done) {
  ObjectId id = ObjectId::FromBinary(request.id());
  std::string requester = request.requester_node_id();
  auto answer = [this, id, requester, reply, done](ObjectPtr object) {
    if (object == nullptr) {
      reply->set_state(rpc::GetObjectReply::NOT_FOUND);
      return done(absl::OkStatus());
    }
    reply->set_state(rpc::GetObjectReply::READY);
    reply->set_data(object->data);
    reply->set_in_store(object->in_store);
    reply->set_is_error(object->IsError());
    if (object->IsError()) object->ToErrorInfo(reply->mutable_error());
    if (object->in_store) {
      reply->set_store_node_id(object->store_node);
      // A reader on another node pulls a copy there: freed with the object.
      if (!requester.empty() && requester != object->store_node) AddCopy(id, requester);
    }
    done(absl::OkStatus());
  };
  ObjectPtr object = store_.GetIfReady(id);
  if (object && object->in_store && !request.lost_node_id().empty() &&
      object->store_node == request.lost_node_id()) {
    // The borrower found the copy gone with its node (it waited for the GCS to declare
    // the node dead): made again, the answer waits for the new one.
    absl::Status rebuilt = Rebuild(id);
    if (!rebuilt.ok()) {
      return answer(LostForGood(id, object->store_node, rebuilt));
    }
    object = store_.GetIfReady(id);
  }
  if (object) return answer(object);
  if (!refs_.IsOwnedAndLive(id)) return answer(nullptr);
  store_.OnReady(id, answer);
}

void CoreWorker::AddCopy(const ObjectId& id, const std::string& node) {
  MutexLock lock(&copies_mutex_);
  std::vector<std::string>& nodes = copies_[id];
  if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) nodes.push_back(node);
}

void CoreWorker::HandleExit(const rpc::ExitRequest&, rpc::ExitReply* reply, rpc::Done done) {
  reply->set_accepted(true);
  done(absl::OkStatus());
  if (executor_) executor_->Stop();
}

void CoreWorker::NotifyBlocked(bool blocked) {
  if (!options_.is_worker || shutdown_) return;
  if (executor_->CurrentContext().task_id.empty()) return;
  if (blocked) executor_->RejectQueued();
  rpc::NotifyBlockedRequest request;
  request.set_worker_id(options_.worker_id.Binary());
  request.set_blocked(blocked);
  rpc::CallBlocking<rpc::NotifyBlockedRequest, rpc::NotifyBlockedReply>(
      [this](auto* ctx, const auto& req, auto* rep) {
        return raylet_->NotifyBlocked(ctx, req, rep);
      },
      request, 5000)
      .IgnoreError();
}

std::string CoreWorker::PlacementGroupRemoved(const std::string& group_id) {
  rpc::GetPlacementGroupRequest request;
  request.set_placement_group_id(group_id);
  auto reply = rpc::CallBlocking<rpc::GetPlacementGroupRequest, rpc::GetPlacementGroupReply>(
      [this](auto* ctx, const auto& req, auto* rep) {
        return gcs_->GetPlacementGroup(ctx, req, rep);
      },
      request, 2000);
  if (!reply.ok()) return "";  // unknown: asked again at the next answer
  if (!reply->found()) return "the GCS knows no such group";
  if (reply->group().state() != rpc::PlacementGroupInfo::REMOVED) return "";
  return reply->group().removal_cause();
}

std::string CoreWorker::ClusterCapacity() {
  auto reply = rpc::CallBlocking<rpc::GetAllNodesRequest, rpc::GetAllNodesReply>(
      [this](auto* ctx, const auto& req, auto* rep) { return gcs_->GetAllNodes(ctx, req, rep); },
      rpc::GetAllNodesRequest(), 2000);
  if (!reply.ok()) return "unknown (GCS unreachable)";
  ResourceSet total;
  int alive = 0;
  std::string each;
  for (const auto& node : reply->nodes()) {
    if (!node.alive()) continue;
    ++alive;
    ResourceSet node_total = ResourceSet::FromMap({node.total().begin(), node.total().end()});
    total.Add(node_total);
    each += (each.empty() ? "" : ", ") + node.node_ip() + " " + node_total.ToString();
  }
  return total.ToString() + " on " + std::to_string(alive) + " node(s) (" + each + ")";
}

}  // namespace lumen::core
