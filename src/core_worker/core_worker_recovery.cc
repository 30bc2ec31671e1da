// Processes and nodes that fail. Peers gone (PeerWatch): forgotten as borrowers, pushes
// to them and fetches from them fail at once. Objects lost with their nodes: an owner
// runs the task that made one again (its lineage, core_worker/lineage.h); a borrower asks
// the owner to. Only once the GCS has declared the node that held the copy dead: a copy
// that failed to arrive from a live node is an error as before.
#include <thread>

#include "common/logging.h"
#include "core_worker/core_worker.h"
#include "core_worker/task_deps.h"

namespace lumen::core {
namespace {

// How long a reader waits for the GCS to declare a silent node dead (its default health
// check takes 5 s).
constexpr auto kNodeDeathWait = std::chrono::seconds(15);
constexpr auto kNodeDeathPoll = std::chrono::milliseconds(250);

}  // namespace

void CoreWorker::OnPeersGone(const std::vector<std::string>& addresses) {
  absl::flat_hash_set<std::string> gone;
  for (const std::string& address : addresses) {
    // This process, declared gone with its node while it was frozen: its raylet stops it.
    if (address == endpoint_) continue;
    gone.insert(address);
    refs_.RemoveBorrowerEverywhere(address);
    worker_clients_.Abort(address);
    MutexLock lock(&peers_mutex_);
    peers_.erase(address);
  }
  std::vector<std::shared_ptr<grpc::ClientContext>> calls;
  {
    MutexLock lock(&fetch_mutex_);
    for (auto& [id, fetch] : fetching_) {
      if (gone.contains(fetch.owner)) {
        fetch.owner_gone = true;
        calls.push_back(fetch.call);
      }
    }
  }
  for (const auto& call : calls) call->TryCancel();
}

bool CoreWorker::AwaitNodeDeath(const std::string& node) {
  auto deadline = std::chrono::steady_clock::now() + kNodeDeathWait;
  while (!shutdown_) {
    auto nodes = rpc::CallBlocking<rpc::GetAllNodesRequest, rpc::GetAllNodesReply>(
        [this](auto* ctx, const auto& req, auto* rep) { return gcs_->GetAllNodes(ctx, req, rep); },
        rpc::GetAllNodesRequest(), 5000);
    if (!nodes.ok()) return false;
    bool alive = false;
    for (const rpc::NodeInfo& info : nodes->nodes()) {
      if (info.node_id() == node) alive = info.alive();
    }
    if (!alive) return true;  // declared dead, or gone from the table
    if (std::chrono::steady_clock::now() + kNodeDeathPoll > deadline) return false;
    std::this_thread::sleep_for(kNodeDeathPoll);
  }
  return false;
}

absl::Status CoreWorker::Rebuild(const ObjectId& id) {
  if (shutdown_) return absl::CancelledError("lumen is shutting down");
  absl::StatusOr<Lineage::Attempt> attempt = lineage_.TakeForRebuild(id);
  if (absl::IsAlreadyExists(attempt.status())) return absl::OkStatus();  // under way
  if (!attempt.ok()) return attempt.status();
  const rpc::TaskSpec& spec = attempt->spec;
  TaskId task = TaskId::FromBinary(spec.task_id());
  for (const rpc::TaskArg& arg : spec.args()) {
    if (!arg.has_ref()) continue;
    ObjectId arg_id = ObjectId::FromBinary(arg.ref().id());
    bool held = arg.ref().owner() == endpoint_ ? refs_.IsOwnedAndLive(arg_id)
                                               : !refs_.OwnerOf(arg_id).empty();
    if (!held) {
      lineage_.Abandon(task);
      return absl::FailedPreconditionError("task '" + TaskLabel(spec) + "' that made it read " +
                                           "object " + arg_id.Hex() +
                                           ", which nobody holds any more");
    }
  }
  // Get and GetObject wait for the results anew.
  for (int i = 0; i < spec.num_returns(); ++i) store_.Erase(ObjectId::ForTaskReturn(task, i + 1));
  LUMEN_LOG_WARN("object {} was lost with its node; running task '{}' again (attempt {})",
                 id.Hex(), TaskLabel(spec), spec.attempt() + 1);
  submitter_->Submit(spec, attempt->retries_left, attempt->retry_exceptions);
  return absl::OkStatus();
}

absl::Status CoreWorker::Recover(const rpc::ObjectRefProto& ref, const std::string& node) {
  if (!AwaitNodeDeath(node)) {
    return absl::UnavailableError("node " + NodeId::FromBinary(node).Hex() +
                                  " that holds it is alive, but its copy could not be read");
  }
  ObjectId id = ObjectId::FromBinary(ref.id());
  if (ref.owner() == endpoint_) return Rebuild(id);
  // Borrowed: the owner makes it again and answers with where the new copy is.
  store_.Erase(id);
  FetchFromOwner(id, ref.owner(), node);
  return absl::OkStatus();
}

}  // namespace lumen::core
