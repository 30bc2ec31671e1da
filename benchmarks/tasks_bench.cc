// tasks_bench: lumen's task microbenchmarks, after Ray's `ray microbenchmark`
// (python/ray/_private/ray_perf.py and ray_microbenchmark_helpers.timeit).
//
// Starts an embedded one-node cluster with the default Config (num_cpus = the machine's
// cores) and measures, for a no-op remote function:
//   single_client_tasks_sync           submit one task, Get it, repeat
//   single_client_tasks_async          submit 10,000 tasks, then Get them all
//   single_client_tasks_and_get_batch  submit 1,000 tasks, Get them in one vector call
//   single_client_wait_1k_refs         submit 1,000 tasks, then Wait(refs, 1) on the
//                                      unready rest until none is left (1,000 Waits)
//   single_client_task_latency_p50/p99 round trip of one task (submit + Get), in us
//
// Each metric gets a warm-up, then --runs measured runs of at least --seconds each; a
// run's figure is (tasks done) / (elapsed), or a latency percentile of the run's samples.
// stdout holds one JSON object per metric and nothing else:
//   {"name": ..., "value": <median>, "unit": "tasks/s" | "us", "runs": n, "median": ...,
//    "min": ..., "max": ..., "machine": {"cores": ..., "memory_gb": ..., "cpu_model": ...}}
// Human-readable notes go to stderr.
//
// Workers are this program re-executed, so lumen::Init comes first in main; lumen reads
// its own --lumen-* flags (e.g. --lumen-num-cpus=4) and this program ignores them.

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lumen/lumen.h"

namespace {

// The no-op task: Ray's ray_perf.py uses `small_value`, which returns b"ok".
int SmallValue() { return 0; }
LUMEN_REMOTE(SmallValue);

using Clock = std::chrono::steady_clock;

constexpr int kAsyncBatch = 10000;       // single_client_tasks_async
constexpr int kGetBatch = 1000;          // single_client_tasks_and_get_batch
constexpr int kWaitRefs = 1000;          // single_client_wait_1k_refs
constexpr int kMinLatencySamples = 200;  // per run, so that p99 means something

struct Options {
  int runs = 5;
  double seconds = 2.0;  // minimum length of one measured run
  double warmup = 1.0;   // warm-up before each metric's runs
  bool quick = false;
  std::string filter;  // run only metrics whose name contains this
  bool help = false;
};

struct Machine {
  unsigned cores = 0;
  double memory_gb = 0;  // GiB of physical memory
  std::string cpu_model;
};

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string ReadFirstField(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t begin = line.find_first_not_of(" \t", colon + 1);
    return begin == std::string::npos ? "" : line.substr(begin);
  }
  return "";
}

Machine DetectMachine() {
  Machine machine;
  machine.cores = std::thread::hardware_concurrency();
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0) {
    const double gib = double(pages) * double(page_size) / (1024.0 * 1024.0 * 1024.0);
    machine.memory_gb = std::round(gib * 10.0) / 10.0;
  }
  machine.cpu_model = ReadFirstField("/proc/cpuinfo", "model name");
  if (machine.cpu_model.empty()) machine.cpu_model = "unknown";
  return machine;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
          out += escaped;
        } else {
          out += char(c);
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  char text[64];
  std::snprintf(text, sizeof(text), "%.1f", value);
  return text;
}

void PrintUsage() {
  std::fprintf(stderr,
               "usage: tasks_bench [--runs N] [--seconds S] [--warmup S] [--quick]\n"
               "                   [--filter SUBSTRING] [--lumen-<field>=<value>...]\n"
               "  --runs N        measured runs per metric (default 5; --quick: 1)\n"
               "  --seconds S     minimum length of one run (default 2; --quick: 0.2)\n"
               "  --warmup S      warm-up before each metric (default 1; --quick: 0.1)\n"
               "  --quick         smoke mode for CI: short runs, 1 run per metric\n"
               "  --filter TEXT   only the metrics whose name contains TEXT\n"
               "stdout: one JSON object per metric; notes on stderr.\n");
}

bool ParseNumber(const std::string& text, double* out) {
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return !text.empty() && end != nullptr && *end == '\0' && std::isfinite(*out);
}

// Parses this program's flags; --lumen-* flags belong to lumen::Init and are skipped.
bool ParseOptions(int argc, char** argv, Options* options, std::string* error) {
  bool runs_set = false;
  bool seconds_set = false;
  bool warmup_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--lumen-", 0) == 0) continue;
    std::string value;
    bool has_value = false;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto take_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) {
        *error = arg + " needs a value";
        return false;
      }
      value = argv[++i];
      return true;
    };
    double number = 0;
    if (arg == "--help" || arg == "-h") {
      options->help = true;
    } else if (arg == "--quick") {
      options->quick = true;
    } else if (arg == "--runs") {
      if (!take_value()) return false;
      if (!ParseNumber(value, &number) || number < 1 || number != std::floor(number)) {
        *error = "--runs takes a whole number >= 1, got '" + value + "'";
        return false;
      }
      options->runs = int(number);
      runs_set = true;
    } else if (arg == "--seconds" || arg == "--warmup") {
      if (!take_value()) return false;
      if (!ParseNumber(value, &number) || number < 0) {
        *error = arg + " takes a number of seconds >= 0, got '" + value + "'";
        return false;
      }
      if (arg == "--seconds") {
        options->seconds = number;
        seconds_set = true;
      } else {
        options->warmup = number;
        warmup_set = true;
      }
    } else if (arg == "--filter") {
      if (!take_value()) return false;
      options->filter = value;
    } else {
      *error = "unknown flag " + arg;
      return false;
    }
  }
  if (options->quick) {
    if (!runs_set) options->runs = 1;
    if (!seconds_set) options->seconds = 0.2;
    if (!warmup_set) options->warmup = 0.1;
  }
  return true;
}

struct Summary {
  double median = 0;
  double min = 0;
  double max = 0;
};

Summary Summarize(std::vector<double> values) {
  Summary summary;
  if (values.empty()) return summary;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  summary.median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
  summary.min = values.front();
  summary.max = values.back();
  return summary;
}

// Nearest-rank percentile of sorted samples.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = size_t(std::ceil(p / 100.0 * double(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

class Bench {
 public:
  Bench(const Options& options, const Machine& machine) : options_(options), machine_(machine) {}

  bool Selected(const std::string& name) const {
    return options_.filter.empty() || name.find(options_.filter) != std::string::npos;
  }

  // Ray's timeit: warm up, then each run calls `fn` back to back for at least
  // --seconds; the run's figure is tasks_per_call * calls / elapsed.
  void Throughput(const std::string& name, int tasks_per_call, const std::function<void()>& fn) {
    if (!Selected(name)) return;
    Repeat(fn, options_.warmup);
    std::vector<double> values;
    for (int run = 0; run < options_.runs; ++run) {
      const Clock::time_point start = Clock::now();
      int64_t calls = 0;
      double elapsed = 0;
      do {
        fn();
        ++calls;
        elapsed = SecondsSince(start);
      } while (elapsed < options_.seconds);
      values.push_back(double(tasks_per_call) * double(calls) / elapsed);
    }
    Emit(name, "tasks/s", values);
  }

  // Round trips of one task (submit + Get), timed one by one; each run yields its p50
  // and p99, and the metrics are the medians of those over the runs.
  void Latency(const std::string& prefix) {
    const std::string p50_name = prefix + "_p50";
    const std::string p99_name = prefix + "_p99";
    if (!Selected(p50_name) && !Selected(p99_name)) return;
    Repeat(SyncTask, options_.warmup);
    std::vector<double> p50s;
    std::vector<double> p99s;
    std::vector<double> samples;
    for (int run = 0; run < options_.runs; ++run) {
      samples.clear();
      const Clock::time_point start = Clock::now();
      while (SecondsSince(start) < options_.seconds ||
             samples.size() < size_t(kMinLatencySamples)) {
        const Clock::time_point t0 = Clock::now();
        SyncTask();
        samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      std::sort(samples.begin(), samples.end());
      p50s.push_back(Percentile(samples, 50));
      p99s.push_back(Percentile(samples, 99));
      std::fprintf(stderr, "  run %d: %zu round trips\n", run + 1, samples.size());
    }
    if (Selected(p50_name)) Emit(p50_name, "us", p50s);
    if (Selected(p99_name)) Emit(p99_name, "us", p99s);
  }

  static void SyncTask() {
    std::shared_ptr<int> value = lumen::Get(lumen::Task(SmallValue).Remote());
    if (value == nullptr || *value != 0) throw std::runtime_error("wrong task result");
  }

  static void SubmitAndGet(int n) {
    std::vector<lumen::ObjectRef<int>> refs;
    refs.reserve(n);
    for (int i = 0; i < n; ++i) refs.push_back(lumen::Task(SmallValue).Remote());
    if (lumen::Get(refs).size() != size_t(n)) throw std::runtime_error("Get lost values");
  }

  // Ray's wait_multiple_refs: Wait for one ready ref at a time until none is left.
  static void WaitOneByOne(int n) {
    std::vector<lumen::ObjectRef<int>> unready;
    unready.reserve(n);
    for (int i = 0; i < n; ++i) unready.push_back(lumen::Task(SmallValue).Remote());
    int waits = 0;
    while (!unready.empty()) {
      lumen::WaitResult<int> result = lumen::Wait(unready, 1, std::chrono::milliseconds(-1));
      if (result.ready.size() != 1) throw std::runtime_error("Wait returned no ready ref");
      unready = std::move(result.unready);
      ++waits;
    }
    if (waits != n) throw std::runtime_error("wrong number of Waits");
  }

 private:
  // Calls fn at least once and until `seconds` have passed.
  static void Repeat(const std::function<void()>& fn, double seconds) {
    const Clock::time_point start = Clock::now();
    do {
      fn();
    } while (SecondsSince(start) < seconds);
  }

  void Emit(const std::string& name, const std::string& unit,
            const std::vector<double>& values) const {
    const Summary s = Summarize(values);
    std::string line = "{\"name\": " + JsonString(name) + ", \"value\": " + JsonNumber(s.median) +
                       ", \"unit\": " + JsonString(unit) +
                       ", \"runs\": " + std::to_string(values.size()) +
                       ", \"median\": " + JsonNumber(s.median) + ", \"min\": " + JsonNumber(s.min) +
                       ", \"max\": " + JsonNumber(s.max) +
                       ", \"machine\": {\"cores\": " + std::to_string(machine_.cores) +
                       ", \"memory_gb\": " + JsonNumber(machine_.memory_gb) +
                       ", \"cpu_model\": " + JsonString(machine_.cpu_model) + "}}\n";
    std::fputs(line.c_str(), stdout);
    std::fflush(stdout);
    std::string each;
    for (double value : values) each += (each.empty() ? "" : " ") + JsonNumber(value);
    std::fprintf(stderr, "%-34s median %10.1f %-7s (min %.1f, max %.1f; runs: %s)\n", name.c_str(),
                 s.median, unit.c_str(), s.min, s.max, each.c_str());
  }

  Options options_;
  Machine machine_;
};

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// Machine-wide CPU time from /proc/stat, to tell how busy the machine was (other
// programs, and the hypervisor's steal on a VM) while the benchmark ran.
struct CpuTimes {
  double busy = 0;  // user, nice, system, irq, softirq
  double steal = 0;
  double total = 0;  // everything, idle and iowait included
};

CpuTimes ReadCpuTimes() {
  CpuTimes times;
  std::ifstream in("/proc/stat");
  std::string label;
  in >> label;
  if (label != "cpu") return times;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;
  in >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> times.steal;
  times.busy = user + nice + system + irq + softirq;
  times.total = times.busy + idle + iowait + times.steal;
  return times;
}

double RusageSeconds(int who) {
  struct rusage usage {};
  if (getrusage(who, &usage) != 0) return 0;
  auto seconds = [](const timeval& tv) { return double(tv.tv_sec) + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// "X% busy (Y% this program and its workers), Z% stolen", as shares of all cores' time
// between `start` and `end`. `own_seconds`: CPU time this program and its reaped workers
// used over the same span.
std::string DescribeCpuUse(const CpuTimes& start, const CpuTimes& end, double own_seconds) {
  const double total = end.total - start.total;
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  if (total <= 0 || ticks_per_second <= 0) return "unknown";
  char text[160];
  std::snprintf(text, sizeof(text), "%.0f%% busy (%.0f%% this benchmark), %.0f%% stolen",
                100.0 * (end.busy - start.busy) / total,
                100.0 * own_seconds * double(ticks_per_second) / total,
                100.0 * (end.steal - start.steal) / total);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  // First thing: in a worker process Init runs tasks and never returns.
  lumen::Config config;  // embedded one-node cluster, num_cpus = the machine's cores
  try {
    lumen::Init(config, argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tasks_bench: lumen::Init failed: %s\n", e.what());
    return 2;
  }

  Options options;
  std::string error;
  if (!ParseOptions(argc, argv, &options, &error)) {
    std::fprintf(stderr, "tasks_bench: %s\n", error.c_str());
    PrintUsage();
    lumen::Shutdown();
    return 2;
  }
  if (options.help) {
    PrintUsage();
    lumen::Shutdown();
    return 0;
  }

  const Machine machine = DetectMachine();
  std::fprintf(stderr,
               "tasks_bench: %u cores, %.1f GiB, %s; load average %s\n"
               "tasks_bench: %d run(s) of >= %.2f s per metric, %.2f s warm-up%s\n",
               machine.cores, machine.memory_gb, machine.cpu_model.c_str(), LoadAverage().c_str(),
               options.runs, options.seconds, options.warmup, options.quick ? " (quick)" : "");

  const CpuTimes cpu_start = ReadCpuTimes();
  const double own_start = RusageSeconds(RUSAGE_SELF) + RusageSeconds(RUSAGE_CHILDREN);
  int status = 0;
  try {
    Bench bench(options, machine);
    bench.Throughput("single_client_tasks_sync", 1, Bench::SyncTask);
    bench.Throughput("single_client_tasks_async", kAsyncBatch,
                     [] { Bench::SubmitAndGet(kAsyncBatch); });
    bench.Throughput("single_client_tasks_and_get_batch", kGetBatch,
                     [] { Bench::SubmitAndGet(kGetBatch); });
    bench.Throughput("single_client_wait_1k_refs", kWaitRefs,
                     [] { Bench::WaitOneByOne(kWaitRefs); });
    bench.Latency("single_client_task_latency");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tasks_bench: failed: %s\n", e.what());
    status = 1;
  }
  lumen::Shutdown();  // reaps the workers, so that their CPU time is counted below
  const double own = RusageSeconds(RUSAGE_SELF) + RusageSeconds(RUSAGE_CHILDREN) - own_start;
  std::fprintf(stderr, "tasks_bench: done; load average %s; CPU of the machine: %s\n",
               LoadAverage().c_str(), DescribeCpuUse(cpu_start, ReadCpuTimes(), own).c_str());
  return status;
}
