// The core worker's side of distributed reference counting: borrowers register with
// owners, owners count them, and both free objects when the last holder anywhere is gone.
//
// Who registers whom:
//  - A process that deserializes a ref it does not own (a task argument, a value it got)
//    registers itself with the owner before the holder of the container lets go: the
//    caller of a task keeps its arguments until the reply, which the worker sends after
//    registering; a Get registers before it returns, while the user holds the outer ref.
//  - A worker whose task result holds refs registers the task's caller as their borrower
//    with each owner (itself, or another process) before it replies; the caller then
//    keeps them for as long as it keeps the result.
// A borrower gives back exactly the registrations it learned of, when its last handle is
// gone (or at shutdown), so owners' counts never go negative.
#include "common/logging.h"
#include "core_worker/core_worker.h"

namespace lumen::core {
namespace {

constexpr int64_t kRegisterTimeoutMs = 30000;
constexpr int64_t kShutdownReleaseTimeoutMs = 1000;

}  // namespace

std::shared_ptr<rpc::CoreWorkerService::Stub> CoreWorker::PeerStub(const std::string& endpoint) {
  MutexLock lock(&peers_mutex_);
  auto& stub = peers_[endpoint];
  if (!stub) stub = rpc::CoreWorkerService::NewStub(rpc::MakeChannel(endpoint));
  return stub;
}

absl::flat_hash_map<std::string, std::vector<bool>> CoreWorker::AddBorrowers(
    const IdsByOwner& by_owner, const std::string& borrower) {
  struct Pending {
    Mutex mutex;
    CondVar done;
    size_t left ABSL_GUARDED_BY(mutex) = 0;
    absl::flat_hash_map<std::string, std::vector<bool>> found ABSL_GUARDED_BY(mutex);
  };
  auto pending = std::make_shared<Pending>();
  absl::flat_hash_map<std::string, std::vector<bool>> local;
  for (const auto& [owner, ids] : by_owner) {
    std::vector<bool>& found = local[owner];
    found.assign(ids.size(), false);
    if (owner == endpoint_) {
      for (size_t i = 0; i < ids.size(); ++i) found[i] = refs_.AddBorrower(ids[i], borrower);
      continue;
    }
    // Its objects are lost: a Get of them says so.
    if (peer_watch_ && peer_watch_->IsGone(owner)) continue;
    rpc::AddBorrowersRequest request;
    for (const ObjectId& id : ids) request.add_ids(id.Binary());
    request.set_borrower(borrower);
    {
      MutexLock lock(&pending->mutex);
      ++pending->left;
    }
    auto stub = PeerStub(owner);
    // All at once: owners that do not answer cost kRegisterTimeoutMs in all, not each.
    rpc::CallUnary<rpc::AddBorrowersRequest, rpc::AddBorrowersReply>(
        [stub](auto... args) { stub->async()->AddBorrowers(args...); }, std::move(request),
        [pending, stub, owner, n = ids.size()](absl::Status status,
                                               rpc::AddBorrowersReply&& reply) {
          std::vector<bool> found(n, false);
          if (status.ok()) {
            for (int i = 0; i < reply.found_size() && size_t(i) < n; ++i) found[i] = reply.found(i);
          } else {
            LUMEN_LOG_WARN("core worker: cannot register as a borrower of {} object(s) with "
                           "their owner {}: {}; the owner may free them while refs here "
                           "point to them (a Get then fails)",
                           n, owner, std::string(status.message()));
          }
          MutexLock lock(&pending->mutex);
          pending->found[owner] = std::move(found);
          if (--pending->left == 0) pending->done.SignalAll();
        },
        kRegisterTimeoutMs);
  }
  MutexLock lock(&pending->mutex);
  while (pending->left > 0) pending->done.Wait(&pending->mutex);  // every call has a deadline
  for (auto& [owner, found] : pending->found) local[owner] = std::move(found);
  return local;
}

void CoreWorker::RegisterBorrowed() {
  std::vector<ReferenceCounter::Unregistered> pending = refs_.TakeUnregistered();
  if (pending.empty()) return;
  IdsByOwner by_owner;
  for (const auto& entry : pending) by_owner[entry.owner].push_back(entry.id);
  auto found = AddBorrowers(by_owner, endpoint_);
  for (const auto& [owner, ids] : by_owner) {
    for (size_t i = 0; i < ids.size(); ++i) refs_.FinishRegistration(ids[i], found[owner][i]);
  }
}

void CoreWorker::HandOffReturned(const std::string& caller,
                                 const std::vector<detail::RefData>& returned, bool delivered) {
  if (delivered && !returned.empty()) {
    IdsByOwner by_owner;
    for (const detail::RefData& ref : returned) {
      // The caller's own objects: it keeps them through the result without registering.
      if (ref.owner == caller) continue;
      by_owner[ref.owner].push_back(ObjectId::FromBinary(ref.id));
    }
    AddBorrowers(by_owner, caller);
  }
  for (const detail::RefData& ref : returned) refs_.RemoveTaskUse(ObjectId::FromBinary(ref.id));
  // What the task deserialized (its arguments' refs) and still holds.
  RegisterBorrowed();
}

void CoreWorker::SendRemoveBorrowers(const std::vector<ReferenceCounter::Freed>& freed,
                                     bool wait) {
  absl::flat_hash_map<std::string, rpc::RemoveBorrowersRequest> by_owner;
  for (const auto& f : freed) {
    if (f.owned || f.registrations <= 0 || f.owner.empty()) continue;
    rpc::RemoveBorrowersRequest& request = by_owner[f.owner];
    request.add_ids(f.id.Binary());
    request.add_counts(f.registrations);
  }
  for (auto& [owner, request] : by_owner) {
    request.set_borrower(endpoint_);
    auto stub = PeerStub(owner);
    if (wait) {
      rpc::CallBlocking<rpc::RemoveBorrowersRequest, rpc::RemoveBorrowersReply>(
          [&stub](auto* ctx, const auto& req, auto* rep) {
            return stub->RemoveBorrowers(ctx, req, rep);
          },
          request, kShutdownReleaseTimeoutMs)
          .IgnoreError();
      continue;
    }
    rpcs_.Begin();
    rpc::CallUnary<rpc::RemoveBorrowersRequest, rpc::RemoveBorrowersReply>(
        [stub](auto... args) { stub->async()->RemoveBorrowers(args...); }, std::move(request),
        [this, stub](absl::Status, rpc::RemoveBorrowersReply&&) { rpcs_.End(); });
  }
}

void CoreWorker::OnFree(const ReferenceCounter::Freed& freed) {
  ObjectPtr object = store_.GetIfReady(freed.id);
  store_.Erase(freed.id);
  if (freed.owned && freed.id.IsActorHandle()) {
    // Nothing calls it any more, nor can: it ends (not at shutdown: the job's end ends it).
    if (!shutdown_) OnActorOutOfScope(freed.id.Actor());
  } else if (freed.owned) {
    if (object && object->in_store) FreeInStore(freed.id, object->store_node);
  } else if (freed.registrations > 0 && !shutdown_) {
    SendRemoveBorrowers({freed}, /*wait=*/false);
  }
}

void CoreWorker::HandleAddBorrowers(const rpc::AddBorrowersRequest& request,
                                    rpc::AddBorrowersReply* reply, rpc::Done done) {
  if (request.borrower().empty()) {
    return done(absl::InvalidArgumentError("AddBorrowers: no borrower endpoint"));
  }
  for (const std::string& id : request.ids()) {
    reply->add_found(refs_.AddBorrower(ObjectId::FromBinary(id), request.borrower()));
  }
  done(absl::OkStatus());
}

void CoreWorker::HandleRemoveBorrowers(const rpc::RemoveBorrowersRequest& request,
                                       rpc::RemoveBorrowersReply*, rpc::Done done) {
  if (request.ids_size() != request.counts_size()) {
    return done(absl::InvalidArgumentError("RemoveBorrowers: ids and counts differ in length"));
  }
  for (int i = 0; i < request.ids_size(); ++i) {
    refs_.RemoveBorrower(ObjectId::FromBinary(request.ids(i)), request.borrower(),
                         request.counts(i));
  }
  done(absl::OkStatus());
}

}  // namespace lumen::core
