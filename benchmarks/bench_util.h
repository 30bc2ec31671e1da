// What lumen's benchmark programs share: flags, machine description, Ray-style timing
// (ray_microbenchmark_helpers.timeit), the JSON-lines output, and main()'s frame.
//
// stdout holds one JSON object per metric and nothing else:
//   {"name": ..., "value": <median>, "unit": "tasks/s" | "calls/s" | "us", "runs": n,
//    "median": ..., "min": ..., "max": ...,
//    "machine": {"cores": ..., "memory_gb": ..., "cpu_model": ...}}
// Human-readable notes go to stderr.
#pragma once

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
#include <type_traits>
#include <vector>

#include "lumen/lumen.h"

namespace lumen::bench {

using Clock = std::chrono::steady_clock;

constexpr int kMinLatencySamples = 200;  // per run, so that p99 means something

struct Options {
  int runs = 5;
  double seconds = 2.0;  // minimum length of one measured run
  double warmup = 1.0;   // warm-up before each metric's runs
  bool quick = false;
  std::string filter;  // run only metrics whose name contains this
  bool sweep = false;  // also run the sweeps (metrics left out of the default run)
  bool help = false;
};

struct Machine {
  unsigned cores = 0;
  double memory_gb = 0;  // GiB of physical memory
  std::string cpu_model;
};

inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

inline std::string ReadFirstField(const std::string& path, const std::string& key) {
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

inline Machine DetectMachine() {
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

inline std::string JsonString(const std::string& text) {
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

inline std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  char text[64];
  std::snprintf(text, sizeof(text), "%.1f", value);
  return text;
}

inline void PrintUsage(const std::string& program) {
  const std::string pad(program.size(), ' ');
  std::fprintf(stderr,
               "usage: %s [--runs N] [--seconds S] [--warmup S] [--quick]\n"
               "       %s [--filter SUBSTRING] [--sweep] [--lumen-<field>=<value>...]\n"
               "  --runs N        measured runs per metric (default 5; --quick: 1)\n"
               "  --seconds S     minimum length of one run (default 2; --quick: 0.2)\n"
               "  --warmup S      warm-up before each metric (default 1; --quick: 0.1)\n"
               "  --quick         smoke mode for CI: short runs, 1 run per metric\n"
               "  --filter TEXT   only the metrics whose name contains TEXT\n"
               "  --sweep         also the sweeps, which the default run leaves out (a\n"
               "                  --filter naming a sweep, e.g. inflight, selects it too)\n"
               "stdout: one JSON object per metric; notes on stderr.\n",
               program.c_str(), pad.c_str());
}

inline bool ParseNumber(const std::string& text, double* out) {
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return !text.empty() && end != nullptr && *end == '\0' && std::isfinite(*out);
}

// Parses this program's flags; --lumen-* flags belong to lumen::Init and are skipped.
inline bool ParseOptions(int argc, char** argv, Options* options, std::string* error) {
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
    } else if (arg == "--sweep") {
      options->sweep = true;
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

inline Summary Summarize(std::vector<double> values) {
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
inline double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = size_t(std::ceil(p / 100.0 * double(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

class Bench {
 public:
  Bench(const Options& options, const Machine& machine) : options_(options), machine_(machine) {}

  bool quick() const { return options_.quick; }
  int runs() const { return options_.runs; }

  bool Selected(const std::string& name) const {
    return options_.filter.empty() || name.find(options_.filter) != std::string::npos;
  }

  // For the metrics of a sweep, which the default run leaves out: selected with --sweep
  // (and --filter as usual), or by a --filter that names the sweep (contains `sweep_tag`,
  // e.g. "inflight"), so that a broad filter such as "async" does not start one.
  bool SelectedSweep(const std::string& name, const std::string& sweep_tag) const {
    if (options_.sweep) return Selected(name);
    return options_.filter.find(sweep_tag) != std::string::npos && Selected(name);
  }

  // Ray's timeit: warm up, then each run calls `fn` back to back for at least
  // --seconds; the run's figure is items_per_call * calls / elapsed, in `unit`
  // ("tasks/s", "calls/s"). Returns the median (NaN when the metric is filtered out).
  double Throughput(const std::string& name, const std::string& unit, double items_per_call,
                    const std::function<void()>& fn) {
    if (!Selected(name)) return std::nan("");
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
      values.push_back(double(items_per_call) * double(calls) / elapsed);
    }
    Emit(name, unit, values);
    return Summarize(values).median;
  }

  // Round trips of `round_trip` (one submit + Get), timed one by one; each run yields its
  // p50 and p99 in us, and the metrics <prefix>_p50/_p99 are the medians over the runs.
  void Latency(const std::string& prefix, const std::function<void()>& round_trip) {
    const std::string p50_name = prefix + "_p50";
    const std::string p99_name = prefix + "_p99";
    if (!Selected(p50_name) && !Selected(p99_name)) return;
    Repeat(round_trip, options_.warmup);
    std::vector<double> p50s;
    std::vector<double> p99s;
    std::vector<double> samples;
    for (int run = 0; run < options_.runs; ++run) {
      samples.clear();
      const Clock::time_point start = Clock::now();
      while (SecondsSince(start) < options_.seconds ||
             samples.size() < size_t(kMinLatencySamples)) {
        const Clock::time_point t0 = Clock::now();
        round_trip();
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

  // Prints one metric from values measured (or derived) by the caller, one per run.
  // `extra`: more JSON members for the line (`"key": value, ...`), or "".
  void Emit(const std::string& name, const std::string& unit, const std::vector<double>& values,
            const std::string& extra = "") const {
    EmitImpl(name, unit, values, extra);
  }

 private:
  // Calls fn at least once and until `seconds` have passed.
  static void Repeat(const std::function<void()>& fn, double seconds) {
    const Clock::time_point start = Clock::now();
    do {
      fn();
    } while (SecondsSince(start) < seconds);
  }

  void EmitImpl(const std::string& name, const std::string& unit,
                const std::vector<double>& values, const std::string& extra = "") const {
    const Summary s = Summarize(values);
    std::string line = "{\"name\": " + JsonString(name) + ", \"value\": " + JsonNumber(s.median) +
                       ", \"unit\": " + JsonString(unit) +
                       ", \"runs\": " + std::to_string(values.size()) +
                       ", \"median\": " + JsonNumber(s.median) + ", \"min\": " + JsonNumber(s.min) +
                       ", \"max\": " + JsonNumber(s.max) +
                       ", \"machine\": {\"cores\": " + std::to_string(machine_.cores) +
                       ", \"memory_gb\": " + JsonNumber(machine_.memory_gb) +
                       ", \"cpu_model\": " + JsonString(machine_.cpu_model) + "}" +
                       (extra.empty() ? "" : ", " + extra) + "}\n";
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

// Throws unless `values` holds `count` values, each equal to `expected`.
template <typename T>
void CheckValues(const std::vector<std::shared_ptr<const T>>& values, size_t count,
                 const std::type_identity_t<T>& expected) {
  if (values.size() != count) throw std::runtime_error("Get lost values");
  for (const auto& value : values) {
    if (value == nullptr || !(*value == expected)) throw std::runtime_error("wrong result");
  }
}

template <typename T>
void KillAll(const std::vector<lumen::ActorHandle<T>>& actors) {
  for (const auto& actor : actors) actor.Kill();
}

// `m` client actors for the multi-client metrics: Create(args...) each. Actors hold no
// resources, like Ray's `num_cpus=0` actors.
template <typename T, typename... Params, typename... Args>
std::vector<lumen::ActorHandle<T>> NewClients(int m, T* (*create)(Params...),
                                              const Args&... args) {
  std::vector<lumen::ActorHandle<T>> clients;
  for (int i = 0; i < m; ++i) clients.push_back(lumen::Actor(create).Remote(args...));
  return clients;
}

// One call of `method(args...)` on each client, all in flight at once, then Get them
// all; each must return `expected` (Ray's `ray.get([a.method.remote() for a in actors])`).
template <typename T, typename R, typename... Params, typename... Args>
void CallAllAndCheck(const std::vector<lumen::ActorHandle<T>>& clients, R (T::*method)(Params...),
                     const std::type_identity_t<R>& expected, const Args&... args) {
  std::vector<lumen::ObjectRef<R>> refs;
  refs.reserve(clients.size());
  for (const auto& client : clients) refs.push_back(client.Task(method).Remote(args...));
  CheckValues(lumen::Get(refs), clients.size(), expected);
}

inline std::string LoadAverage() {
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

inline CpuTimes ReadCpuTimes() {
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

inline double RusageSeconds(int who) {
  struct rusage usage {};
  if (getrusage(who, &usage) != 0) return 0;
  auto seconds = [](const timeval& tv) { return double(tv.tv_sec) + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// "X% busy (Y% this program and its workers), Z% stolen", as shares of all cores' time
// between `start` and `end`. `own_seconds`: CPU time this program and its reaped workers
// used over the same span.
inline std::string DescribeCpuUse(const CpuTimes& start, const CpuTimes& end, double own_seconds) {
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

// The whole of a benchmark program's main(): starts an embedded one-node cluster with
// the default Config (num_cpus = the machine's cores) — first thing, since in a worker
// process lumen::Init runs tasks and never returns —, parses the flags, describes the
// machine, runs `body`, shuts down and reports how busy the machine was. Returns the
// exit status: 0, 1 when `body` threw, 2 for bad flags or a failed Init.
inline int RunBenchmarks(const std::string& program, int argc, char** argv,
                         const std::function<void(Bench&, const Machine&)>& body) {
  lumen::Config config;  // embedded one-node cluster, num_cpus = the machine's cores
  try {
    lumen::Init(config, argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: lumen::Init failed: %s\n", program.c_str(), e.what());
    return 2;
  }

  Options options;
  std::string error;
  if (!ParseOptions(argc, argv, &options, &error)) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), error.c_str());
    PrintUsage(program);
    lumen::Shutdown();
    return 2;
  }
  if (options.help) {
    PrintUsage(program);
    lumen::Shutdown();
    return 0;
  }

  const Machine machine = DetectMachine();
  std::fprintf(stderr,
               "%s: %u cores, %.1f GiB, %s; load average %s\n"
               "%s: %d run(s) of >= %.2f s per metric, %.2f s warm-up%s\n",
               program.c_str(), machine.cores, machine.memory_gb, machine.cpu_model.c_str(),
               LoadAverage().c_str(), program.c_str(), options.runs, options.seconds,
               options.warmup, options.quick ? " (quick)" : "");

  const CpuTimes cpu_start = ReadCpuTimes();
  const double own_start = RusageSeconds(RUSAGE_SELF) + RusageSeconds(RUSAGE_CHILDREN);
  int status = 0;
  try {
    Bench bench(options, machine);
    body(bench, machine);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: failed: %s\n", program.c_str(), e.what());
    status = 1;
  }
  lumen::Shutdown();  // reaps the workers, so that their CPU time is counted below
  const double own = RusageSeconds(RUSAGE_SELF) + RusageSeconds(RUSAGE_CHILDREN) - own_start;
  std::fprintf(stderr, "%s: done; load average %s; CPU of the machine: %s\n", program.c_str(),
               LoadAverage().c_str(), DescribeCpuUse(cpu_start, ReadCpuTimes(), own).c_str());
  return status;
}

}  // namespace lumen::bench
