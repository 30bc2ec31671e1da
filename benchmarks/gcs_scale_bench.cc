// One GCS and many raylets: how the cluster view scales. The GCS runs in a process of its
// own (forked first, so that its CPU time is its own); this process plays N raylets
// (1,000; --quick: 100), each with its own gRPC connection, doing what a raylet does:
// register, long-poll the view, and report a change of its available resources about once
// a second (staggered).
//
//   gcs_scale_register_s         seconds until all N registrations are answered (sent at
//                                once)
//   gcs_scale_cpu_cores          the GCS process's CPU time per second of the steady
//                                phase (1.0 = one core busy)
//   gcs_scale_publish_delay_p50  ms from a raylet's report to another raylet's view
//   gcs_scale_publish_delay_p99  holding it (10 observing raylets, every change)
//   gcs_scale_view_traffic       MB/s of view replies to all raylets together
//
// Only these in this program's output (no embedded cluster, no --lumen-* flags). Run by
// scripts/bench; flags as in bench_util.h (--quick: 100 raylets, a 3 s steady phase;
// otherwise 10 s).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "common/ids.h"
#include "common/logging.h"
#include "gcs.grpc.pb.h"
#include "gcs/gcs_server.h"
#include "rpc/rpc.h"

namespace {

using lumen::bench::Clock;
using lumen::bench::SecondsSince;
namespace rpc = lumen::rpc;

constexpr int kObservers = 10;
constexpr int64_t kPollWaitMs = 5000;

// The GCS, in a child process: prints its endpoint on `out`, serves until `in` closes.
[[noreturn]] void ServeGcs(int in, int out) {
  lumen::SetLogLevel("warn");  // not a line per registration
  lumen::gcs::GcsOptions options;
  options.listen_address = "127.0.0.1:0";
  lumen::gcs::GcsServer gcs(options);
  auto endpoint = gcs.Start();
  std::string line = endpoint.ok() ? *endpoint + "\n" : "error\n";
  [[maybe_unused]] ssize_t n = write(out, line.data(), line.size());
  char c;
  while (read(in, &c, 1) > 0) {
  }
  gcs.Stop();
  _exit(0);
}

double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  size_t close = text.rfind(')');
  std::vector<std::string> fields;
  size_t pos = close + 2;
  while (pos < text.size()) {
    size_t space = text.find(' ', pos);
    fields.push_back(text.substr(pos, space - pos));
    if (space == std::string::npos) break;
    pos = space + 1;
  }
  // After the command: state is field 3 of stat, utime 14, stime 15 (1-based).
  double ticks = double(sysconf(_SC_CLK_TCK));
  return (std::stod(fields.at(11)) + std::stod(fields.at(12))) / ticks;
}

struct Raylet {
  std::string id;
  std::unique_ptr<rpc::GcsService::Stub> stub;
  std::atomic<int> reported{0};         // the last report's sequence number
  std::atomic<int64_t> reported_ns{0};  // ... and when it was sent
};

class Cluster {
 public:
  Cluster(const std::string& gcs, int n) : raylets_(size_t(n)) {
    for (int i = 0; i < n; ++i) {
      raylets_[size_t(i)].id = lumen::NodeId::FromRandom().Binary();
      raylets_[size_t(i)].stub = rpc::GcsService::NewStub(rpc::MakeChannel(gcs));
      index_[raylets_[size_t(i)].id] = i;
    }
  }

  /// Registers every raylet at once; the seconds until all are answered.
  double Register() {
    auto start = Clock::now();
    std::atomic<int> left{int(raylets_.size())};
    std::mutex mutex;
    std::condition_variable done;
    for (size_t i = 0; i < raylets_.size(); ++i) {
      rpc::RegisterNodeRequest request;
      rpc::NodeInfo* node = request.mutable_node();
      node->set_node_id(raylets_[i].id);
      node->set_raylet_address("127.0.0.1:" + std::to_string(20000 + i));
      node->set_node_ip("127.0.0.1");
      (*node->mutable_total())["CPU"] = 64;
      (*node->mutable_available())["CPU"] = 64;
      rpc::CallUnary<rpc::RegisterNodeRequest, rpc::RegisterNodeReply>(
          [this, i](auto... args) { raylets_[i].stub->async()->RegisterNode(args...); },
          std::move(request),
          [&](absl::Status status, rpc::RegisterNodeReply&&) {
            if (!status.ok()) Fail("a registration: " + status.ToString());
            std::lock_guard<std::mutex> lock(mutex);
            if (--left == 0) done.notify_all();
          },
          60000);
    }
    std::unique_lock<std::mutex> lock(mutex);
    done.wait(lock, [&] { return left == 0; });
    return SecondsSince(start);
  }

  /// Starts every raylet's long poll.
  void StartPolls() {
    for (size_t i = 0; i < raylets_.size(); ++i) Poll(i, 0, 0);
  }

  /// Reports one change per raylet per second, in turn, until `seconds` have passed.
  void Report(double seconds) {
    auto start = Clock::now();
    size_t next = 0;
    const auto tick = std::chrono::milliseconds(10);
    const size_t per_tick = std::max<size_t>(1, raylets_.size() / 100);
    while (SecondsSince(start) < seconds) {
      for (size_t k = 0; k < per_tick; ++k, next = (next + 1) % raylets_.size()) {
        Raylet& r = raylets_[next];
        int seq = r.reported + 1;
        rpc::NodeHeartbeatRequest request;
        request.set_node_id(r.id);
        request.set_has_resources(true);
        (*request.mutable_available())["CPU"] = seq;
        r.reported_ns = Clock::now().time_since_epoch().count();
        r.reported = seq;
        rpc::CallUnary<rpc::NodeHeartbeatRequest, rpc::NodeHeartbeatReply>(
            [&r](auto... args) { r.stub->async()->NodeHeartbeat(args...); }, std::move(request),
            [this](absl::Status status, rpc::NodeHeartbeatReply&& reply) {
              if (!status.ok() || !reply.known()) {
                Fail("a report: " + (status.ok() ? "node unknown" : status.ToString()));
              }
            },
            10000);
      }
      std::this_thread::sleep_for(tick);
    }
  }

  void Stop() { stopping_ = true; }
  /// Waits for the polls in flight to end (the GCS answers them as it stops).
  void WaitPolls() {
    std::unique_lock<std::mutex> lock(mutex_);
    polls_done_.wait_for(lock, std::chrono::seconds(30), [&] { return polls_ == 0; });
  }

  void ResetCounters() {
    std::lock_guard<std::mutex> lock(mutex_);
    delays_ms_.clear();
    bytes_ = 0;
  }
  std::vector<double> delays_ms() {
    std::lock_guard<std::mutex> lock(mutex_);
    return delays_ms_;
  }
  uint64_t bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return bytes_;
  }
  bool failed() const { return failed_; }

 private:
  void Fail(const std::string& what) {
    if (!failed_.exchange(true)) std::fprintf(stderr, "gcs_scale_bench: failed: %s\n", what.c_str());
  }
  void Poll(size_t i, uint64_t known, uint64_t owners) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      ++polls_;
    }
    rpc::GetAllNodesRequest request;
    request.set_known_version(known);
    request.set_gone_owners_after(owners);
    request.set_wait_ms(kPollWaitMs);
    rpc::CallUnary<rpc::GetAllNodesRequest, rpc::GetAllNodesReply>(
        [this, i](auto... args) { raylets_[i].stub->async()->GetAllNodes(args...); },
        std::move(request),
        [this, i](absl::Status status, rpc::GetAllNodesReply&& reply) {
          int64_t now = Clock::now().time_since_epoch().count();
          {
            std::lock_guard<std::mutex> lock(mutex_);
            bytes_ += reply.ByteSizeLong();
            if (int(i) < kObservers) {
              for (const auto& update : reply.resources()) {
                const Raylet& from = raylets_[size_t(index_.at(update.node_id()))];
                // The report it shows, if it is still the last one sent.
                if (int(update.available().at("CPU")) == from.reported) {
                  delays_ms_.push_back(double(now - from.reported_ns) / 1e6);
                }
              }
            }
            if (--polls_ == 0) polls_done_.notify_all();
          }
          if (!status.ok()) {
            if (!stopping_) Fail("a poll: " + status.ToString());
            return;
          }
          Poll(i, reply.version(), reply.gone_owners_last());
        },
        kPollWaitMs + 10000);
  }

  std::vector<Raylet> raylets_;
  std::map<std::string, int> index_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable polls_done_;
  int polls_ = 0;
  std::vector<double> delays_ms_;
  uint64_t bytes_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace lumen::bench;
  Options options;
  std::string error;
  if (!ParseOptions(argc, argv, &options, &error)) {
    std::fprintf(stderr, "gcs_scale_bench: %s\n", error.c_str());
    PrintUsage("gcs_scale_bench");
    return 2;
  }
  if (options.help) {
    PrintUsage("gcs_scale_bench");
    return 0;
  }
  const int n = options.quick ? 100 : 1000;
  const double seconds = options.quick ? 3 : 10;

  // The GCS first, before this process starts gRPC (a fork keeps no gRPC threads).
  int to_gcs[2], from_gcs[2];
  if (pipe(to_gcs) != 0 || pipe(from_gcs) != 0) return 2;
  pid_t gcs = fork();
  if (gcs == 0) {
    close(to_gcs[1]);
    close(from_gcs[0]);
    ServeGcs(to_gcs[0], from_gcs[1]);
  }
  close(to_gcs[0]);
  close(from_gcs[1]);
  std::string endpoint;
  char c;
  while (read(from_gcs[0], &c, 1) == 1 && c != '\n') endpoint.push_back(c);
  if (endpoint.empty() || endpoint == "error") {
    std::fprintf(stderr, "gcs_scale_bench: the GCS did not start\n");
    return 2;
  }

  const Machine machine = DetectMachine();
  std::fprintf(stderr,
               "gcs_scale_bench: %u cores, %.1f GiB, %s; load average %s\n"
               "gcs_scale_bench: %d raylets (one connection each), a report each per second, "
               "%.0f s steady phase\n",
               machine.cores, machine.memory_gb, machine.cpu_model.c_str(),
               LoadAverage().c_str(), n, seconds);
  Bench bench(options, machine);
  int status = 0;
  {
    Cluster cluster(endpoint, n);
    double registered = cluster.Register();
    cluster.StartPolls();
    cluster.Report(1.0);  // warm-up: every raylet has reported once
    cluster.ResetCounters();
    double cpu_start = CpuSeconds(gcs);
    auto start = Clock::now();
    cluster.Report(seconds);
    double elapsed = SecondsSince(start);
    double cpu = (CpuSeconds(gcs) - cpu_start) / elapsed;
    std::vector<double> delays = cluster.delays_ms();
    double mb_per_s = double(cluster.bytes()) / 1e6 / elapsed;
    cluster.Stop();
    close(to_gcs[1]);  // the GCS stops, answering the parked polls
    cluster.WaitPolls();
    if (cluster.failed()) {
      std::fprintf(stderr, "gcs_scale_bench: some calls to the GCS failed\n");
      status = 1;
    } else if (delays.empty()) {
      std::fprintf(stderr, "gcs_scale_bench: no change reached the observers\n");
      status = 1;
    } else {
      std::sort(delays.begin(), delays.end());
      bench.Emit("gcs_scale_register_s", "s", {registered});
      bench.Emit("gcs_scale_cpu_cores", "cores", {cpu});
      bench.Emit("gcs_scale_publish_delay_p50", "ms", {Percentile(delays, 50)});
      bench.Emit("gcs_scale_publish_delay_p99", "ms", {Percentile(delays, 99)});
      bench.Emit("gcs_scale_view_traffic", "MB/s", {mb_per_s});
      std::fprintf(stderr, "gcs_scale_bench: %zu changes observed by %d raylets\n",
                   delays.size(), kObservers);
    }
  }
  int wstatus = 0;
  waitpid(gcs, &wstatus, 0);
  return status;
}
