#include "rpc/fault_injection.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <charconv>

namespace lumen::rpc::faults {
namespace {

constexpr char kFailureVar[] = "LUMEN_TESTING_RPC_FAILURE";
constexpr char kDelayVar[] = "LUMEN_TESTING_RPC_DELAY";

struct Rule {
  int64_t max_failures = -1;
  double request_percent = 0;
  double reply_percent = 0;
  int min_delay_ms = 0;
  int max_delay_ms = 0;
  std::atomic<int64_t> failed{0};
};

struct Settings {
  bool on = false;
  std::map<std::string, Rule, std::less<>> rules;  // "*" matches every method
  absl::Status status;
};

// The non-empty pieces of `text` between `separator`s (keep_empty: every piece).
std::vector<std::string_view> Split(std::string_view text, char separator,
                                    bool keep_empty = true) {
  std::vector<std::string_view> pieces;
  while (true) {
    size_t at = text.find(separator);
    std::string_view piece = text.substr(0, at);
    if (keep_empty || !piece.empty()) pieces.push_back(piece);
    if (at == std::string_view::npos) return pieces;
    text.remove_prefix(at + 1);
  }
}

absl::Status Bad(const char* var, std::string_view entry, const std::string& why) {
  return absl::InvalidArgumentError(std::string(var) + ": '" + std::string(entry) + "': " +
                                    why);
}

// Splits "Method=a:b[:c]" into the method and `want` numbers.
absl::Status ParseEntry(const char* var, std::string_view entry, size_t want,
                        std::string* method, std::vector<double>* numbers) {
  std::vector<std::string_view> sides = Split(entry, '=');
  if (sides.size() != 2 || sides[0].empty()) return Bad(var, entry, "expected Method=values");
  *method = std::string(sides[0]);
  std::vector<std::string_view> parts = Split(sides[1], ':');
  if (parts.size() != want) {
    return Bad(var, entry, "expected " + std::to_string(want) + " numbers separated by ':'");
  }
  for (std::string_view part : parts) {
    double value = 0;
    auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || error != std::errc() || end != part.data() + part.size()) {
      return Bad(var, entry, "'" + std::string(part) + "' is not a number");
    }
    numbers->push_back(value);
  }
  return absl::OkStatus();
}

absl::Status Parse(std::string_view failure, std::string_view delay, Settings* settings) {
  for (std::string_view entry : Split(failure, ',', false)) {
    std::string method;
    std::vector<double> n;
    if (auto s = ParseEntry(kFailureVar, entry, 3, &method, &n); !s.ok()) return s;
    if (n[0] < -1 || n[0] != double(int64_t(n[0]))) {
      return Bad(kFailureVar, entry, "max must be -1 or a count");
    }
    if (n[1] < 0 || n[2] < 0 || n[1] + n[2] > 100) {
      return Bad(kFailureVar, entry, "the percentages must be >= 0 and add up to <= 100");
    }
    Rule& rule = settings->rules[method];
    rule.max_failures = int64_t(n[0]);
    rule.request_percent = n[1];
    rule.reply_percent = n[2];
  }
  for (std::string_view entry : Split(delay, ',', false)) {
    std::string method;
    std::vector<double> n;
    if (auto s = ParseEntry(kDelayVar, entry, 2, &method, &n); !s.ok()) return s;
    if (n[0] < 0 || n[1] < n[0] || n[1] > 600000) {
      return Bad(kDelayVar, entry, "expected 0 <= min_ms <= max_ms <= 600000");
    }
    Rule& rule = settings->rules[method];
    rule.min_delay_ms = int(n[0]);
    rule.max_delay_ms = int(n[1]);
  }
  settings->on = !settings->rules.empty();
  return absl::OkStatus();
}

Settings& Get() {
  static Settings* settings = [] {
    auto* s = new Settings();  // never destroyed: calls may run during exit
    const char* failure = std::getenv(kFailureVar);
    const char* delay = std::getenv(kDelayVar);
    s->status = Parse(failure ? failure : "", delay ? delay : "", s);
    if (!s->status.ok()) s->rules.clear(), s->on = false;
    return s;
  }();
  return *settings;
}

double Uniform(double high) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, high)(rng);
}

std::atomic<int64_t> g_injected{0};

// Runs delayed callbacks in deadline order on one thread (started at first use).
class Timer {
 public:
  void Add(int delay_ms, std::function<void()> fn) {
    std::lock_guard lock(mutex_);
    if (!started_) {
      started_ = true;
      std::thread([this] { Run(); }).detach();
    }
    due_.emplace(std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms),
                 std::move(fn));
    changed_.notify_one();
  }

 private:
  void Run() {
    std::unique_lock lock(mutex_);
    while (true) {
      if (due_.empty()) {
        changed_.wait(lock);
        continue;
      }
      auto first = due_.begin();
      if (first->first > std::chrono::steady_clock::now()) {
        changed_.wait_until(lock, first->first);
        continue;
      }
      std::function<void()> fn = std::move(first->second);
      due_.erase(first);
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  bool started_ = false;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> due_;
};

}  // namespace

absl::Status Validate() { return Get().status; }

absl::Status Check(std::string_view failure, std::string_view delay) {
  Settings settings;
  return Parse(failure, delay, &settings);
}

Injection Draw(std::string_view method) {
  Settings& settings = Get();
  Injection injection;
  if (!settings.on) return injection;
  auto it = settings.rules.find(method);
  if (it == settings.rules.end()) it = settings.rules.find("*");
  if (it == settings.rules.end()) return injection;
  Rule& rule = it->second;
  if (rule.max_delay_ms > 0) {
    injection.delay_ms =
        rule.min_delay_ms + int(Uniform(double(rule.max_delay_ms - rule.min_delay_ms)));
  }
  double draw = Uniform(100);
  Fault fault = draw < rule.request_percent                      ? Fault::kRequest
                : draw < rule.request_percent + rule.reply_percent ? Fault::kReply
                                                                   : Fault::kNone;
  if (fault != Fault::kNone &&
      (rule.max_failures < 0 || rule.failed.fetch_add(1) < rule.max_failures)) {
    injection.fault = fault;
    g_injected.fetch_add(1);
  }
  return injection;
}

absl::Status Error(std::string_view method, Fault fault) {
  return absl::UnavailableError(
      std::string("injected fault (") + kFailureVar + "): " +
      (fault == Fault::kRequest ? "the request of " : "the reply of ") + std::string(method) +
      (fault == Fault::kRequest ? " was dropped" : " was lost"));
}

void RunLater(int delay_ms, std::function<void()> fn) {
  static Timer* timer = new Timer();  // never destroyed, like its thread
  timer->Add(delay_ms, std::move(fn));
}

int64_t InjectedCount() { return g_injected.load(); }

}  // namespace lumen::rpc::faults
