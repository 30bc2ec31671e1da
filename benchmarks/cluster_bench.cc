// cluster_bench: work and objects crossing nodes of a loopback cluster, beside raw TCP
// between the same loopback addresses measured in the same run (the floors).
//
// Run by scripts/bench, which starts the cluster with `lumen start` and passes its
// address: cluster_bench --lumen-address=127.0.0.2:PORT [--runs N] [--seconds S] [--quick].
// The driver joins at the head (127.0.0.2, 1 CPU); the work goes to the node with the
// resource "far" (127.0.0.3, in its own mount namespace where one can be made), so every
// call and byte crosses TCP. On one machine the "nodes" share its cores: these are the
// costs of the protocol, not of a network.
//   raw_tcp_pingpong                 two threads of this program, 127.0.0.2 <-> 127.0.0.3,
//                                    1-byte messages, TCP_NODELAY: round trips/s
//   cross_node_tasks_sync            a no-op task on the far node: submit, Get, repeat
//   cross_node_actor_calls_sync      a no-op method of an actor on the far node, the same
//   cross_node_*_sync_vs_tcp         the two above over raw_tcp_pingpong, in percent
//   cross_node_tasks_async           1,000 no-op tasks on the far node, then Get them all
//   cross_node_actor_calls_async     1,000 calls, then Get them all
//   raw_tcp_gigabytes                one thread sends 1 GiB (--quick: 100 MiB) in 1 MiB
//                                    writes to another: GB/s
//   cross_node_transfer_100MiB       a 100 MiB value Put here is read by a task on the far
//   cross_node_transfer_1GiB         node (a fresh object each run, Put before the clock
//                                    starts; the task Gets it, a view of its node's store,
//                                    and returns its size): GB/s. 1 GiB is left out with
//                                    --quick
//   cross_node_transfer_*_vs_tcp     over raw_tcp_gigabytes, in percent
// Output and flags as in bench_util.h.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "lumen/lumen.h"

namespace {

using lumen::bench::Bench;
using lumen::bench::Clock;
using lumen::bench::Machine;
using lumen::bench::SecondsSince;

constexpr double kGB = 1e9;
constexpr size_t kMiB = size_t(1) << 20;
constexpr int kAsyncBatch = 1000;

int Noop() { return 0; }
// Gets the value inside (a view of the far node's store, no copy, unlike a by-value
// argument, which is decoded into a vector of the task's own).
int64_t Length(std::vector<lumen::ObjectRef<std::vector<uint8_t>>> refs) {
  return int64_t(lumen::Get(refs.at(0))->size());
}

class Echo {
 public:
  static Echo* Create() { return new Echo(); }
  int Ping() { return 0; }
};

}  // namespace

LUMEN_REMOTE(Noop, Length, Echo::Create, &Echo::Ping);

namespace {

// A connected pair of TCP sockets between two loopback addresses of this machine.
struct TcpPair {
  int client = -1;
  int server = -1;
  ~TcpPair() {
    if (client >= 0) close(client);
    if (server >= 0) close(server);
  }
};

sockaddr_in Loopback(const char* ip, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, ip, &addr.sin_addr);
  return addr;
}

void Connect(TcpPair* pair) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at = Loopback("127.0.0.3", 0);
  socklen_t len = sizeof(at);
  if (bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&at), &len) != 0) {
    close(listener);
    throw std::runtime_error("raw TCP: cannot listen on 127.0.0.3");
  }
  pair->client = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in from = Loopback("127.0.0.2", 0);
  if (bind(pair->client, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0 ||
      connect(pair->client, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0) {
    close(listener);
    throw std::runtime_error("raw TCP: cannot connect 127.0.0.2 -> 127.0.0.3");
  }
  pair->server = accept(listener, nullptr, nullptr);
  close(listener);
  int one = 1;
  setsockopt(pair->client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(pair->server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

bool ReadFull(int fd, char* data, size_t size) {
  while (size > 0) {
    ssize_t n = read(fd, data, size);
    if (n <= 0) return false;
    data += n;
    size -= size_t(n);
  }
  return true;
}

bool WriteFull(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n <= 0) return false;
    data += n;
    size -= size_t(n);
  }
  return true;
}

double RawPingPong(Bench& bench) {
  TcpPair pair;
  Connect(&pair);
  std::thread echo([fd = pair.server] {
    char byte;
    while (ReadFull(fd, &byte, 1) && WriteFull(fd, &byte, 1)) {
    }
  });
  char byte = 'x';
  double rate = bench.Throughput("raw_tcp_pingpong", "calls/s", 1, [&] {
    if (!WriteFull(pair.client, &byte, 1) || !ReadFull(pair.client, &byte, 1)) {
      throw std::runtime_error("raw TCP ping-pong: connection lost");
    }
  });
  shutdown(pair.client, SHUT_WR);
  echo.join();
  return rate;
}

// One sender, one receiver; the clock stops when the receiver has every byte.
double RawThroughput(Bench& bench, size_t bytes) {
  if (!bench.Selected("raw_tcp_gigabytes")) return std::nan("");
  TcpPair pair;
  Connect(&pair);
  std::vector<char> out(kMiB, 'y');
  std::vector<char> in(kMiB);
  std::vector<double> values;
  int runs = bench.quick() ? 1 : 5;
  for (int run = 0; run < runs + 1; ++run) {  // the first run warms up
    auto start = Clock::now();
    std::thread receiver([&] {
      size_t left = bytes;
      while (left > 0) {
        ssize_t n = read(pair.server, in.data(), std::min(left, in.size()));
        if (n <= 0) return;
        left -= size_t(n);
      }
    });
    for (size_t sent = 0; sent < bytes; sent += kMiB) {
      if (!WriteFull(pair.client, out.data(), std::min(kMiB, bytes - sent))) break;
    }
    receiver.join();
    if (run > 0) values.push_back(double(bytes) / kGB / SecondsSince(start));
  }
  bench.Emit("raw_tcp_gigabytes", "GB/s", values);
  return lumen::bench::Summarize(values).median;
}

void Ratio(Bench& bench, const std::string& name, double value, double floor) {
  if (std::isfinite(value) && std::isfinite(floor) && floor > 0) {
    bench.Emit(name + "_vs_tcp", "%", {100.0 * value / floor});
  }
}

void Transfer(Bench& bench, const std::string& name, size_t bytes, double tcp_gbps) {
  if (!bench.Selected(name)) return;
  std::vector<uint8_t> value(bytes, 3);
  std::vector<double> values;
  int runs = bench.quick() ? 1 : 5;
  for (int run = 0; run < runs + 1; ++run) {  // the first run warms up
    auto ref = lumen::Put(value);
    auto start = Clock::now();
    int64_t got = *lumen::Get(lumen::Task(Length).SetResource("far", 1).Remote(
        std::vector<lumen::ObjectRef<std::vector<uint8_t>>>{ref}));
    double seconds = SecondsSince(start);
    if (got != int64_t(bytes)) throw std::runtime_error(name + ": the far task saw a wrong size");
    if (run > 0) values.push_back(double(bytes) / kGB / seconds);
  }
  bench.Emit(name, "GB/s", values);
  Ratio(bench, name, lumen::bench::Summarize(values).median, tcp_gbps);
}

void RunAll(Bench& bench, const Machine&) {
  auto nodes = lumen::Nodes();
  auto has_far = [](const lumen::NodeInfo& node) { return node.total.count("far") > 0; };
  if (std::none_of(nodes.begin(), nodes.end(), has_far)) {
    throw std::runtime_error("no node with the resource \"far\": start the cluster as "
                             "scripts/bench does");
  }
  std::fprintf(stderr, "cluster_bench: %zu nodes\n", nodes.size());
  double pingpong = RawPingPong(bench);
  double tasks = bench.Throughput("cross_node_tasks_sync", "tasks/s", 1, [] {
    lumen::Get(lumen::Task(Noop).SetResource("far", 1).Remote());
  });
  Ratio(bench, "cross_node_tasks_sync", tasks, pingpong);
  bench.Throughput("cross_node_tasks_async", "tasks/s", kAsyncBatch, [] {
    std::vector<lumen::ObjectRef<int>> refs;
    refs.reserve(kAsyncBatch);
    for (int i = 0; i < kAsyncBatch; ++i) {
      refs.push_back(lumen::Task(Noop).SetResource("far", 1).Remote());
    }
    lumen::Get(refs);
  });
  auto echo = lumen::Actor(Echo::Create).SetResource("far", 1).Remote();
  lumen::Get(echo.Task(&Echo::Ping).Remote());
  double calls = bench.Throughput("cross_node_actor_calls_sync", "calls/s", 1,
                                  [&] { lumen::Get(echo.Task(&Echo::Ping).Remote()); });
  Ratio(bench, "cross_node_actor_calls_sync", calls, pingpong);
  bench.Throughput("cross_node_actor_calls_async", "calls/s", kAsyncBatch, [&] {
    std::vector<lumen::ObjectRef<int>> refs;
    refs.reserve(kAsyncBatch);
    for (int i = 0; i < kAsyncBatch; ++i) refs.push_back(echo.Task(&Echo::Ping).Remote());
    lumen::Get(refs);
  });
  echo.Kill();
  double tcp = RawThroughput(bench, bench.quick() ? 100 * kMiB : 1024 * kMiB);
  Transfer(bench, "cross_node_transfer_100MiB", 100 * kMiB, tcp);
  if (!bench.quick()) Transfer(bench, "cross_node_transfer_1GiB", 1024 * kMiB, tcp);
}

}  // namespace

int main(int argc, char** argv) {
  // First thing (inside RunBenchmarks): in a worker process lumen::Init never returns.
  return lumen::bench::RunBenchmarks("cluster_bench", argc, argv, RunAll);
}
