// RPC fault injection for tests (like Ray's RAY_testing_rpc_failure): chosen calls fail
// or are delayed with a probability, in every process that inherits the setting.
//
//   LUMEN_TESTING_RPC_FAILURE="Method=max:request%:reply%[,Method=...]"
//     Method: an RPC's name (PushTasks, RequestWorkerLease, ...) or * for every RPC.
//     max: how many calls of it may fail in each process (-1: no limit).
//     request%: the chance that a call fails before it is sent (the peer never sees it).
//     reply%: the chance that a call is sent and run, but its reply is lost.
//   LUMEN_TESTING_RPC_DELAY="Method=min_ms:max_ms[,...]"
//     the reply of each such call reaches the caller min..max ms late (uniformly).
//
// A failed call ends with Unavailable, exactly as a dropped connection would (the caller
// cannot tell whether its peer ran it). Off unless set; when off, Draw costs one load.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/status/status.h"

namespace lumen::rpc::faults {

enum class Fault { kNone, kRequest, kReply };

struct Injection {
  Fault fault = Fault::kNone;
  int delay_ms = 0;
  bool any() const { return fault != Fault::kNone || delay_ms > 0; }
};

/// Checks the settings in the environment: InvalidArgument naming what is wrong.
absl::Status Validate();
/// Checks settings given as the two variables' values.
absl::Status Check(std::string_view failure, std::string_view delay);
/// What happens to one call of `method` (the settings are read once per process).
Injection Draw(std::string_view method);
/// The error a call that `fault` hit ends with.
absl::Status Error(std::string_view method, Fault fault);
/// Runs `fn` after `delay_ms` on a thread of the injector's own (for callbacks that must
/// not run on the caller's thread, which may hold locks).
void RunLater(int delay_ms, std::function<void()> fn);
/// Calls this process failed on purpose so far (tests check that faults happened).
int64_t InjectedCount();

/// Applies what Draw says to one call of `method` whose reply goes to `callback`: false
/// when the request is dropped (do not send it; `callback` runs later with the error);
/// otherwise `callback` may have been wrapped to lose or delay the reply.
template <typename R>
bool Intercept(std::string_view method, std::function<void(absl::Status, R)>* callback) {
  Injection injection = Draw(method);
  if (!injection.any()) return true;
  using Value = std::decay_t<R>;
  std::string name(method);
  if (injection.fault == Fault::kRequest) {
    RunLater(injection.delay_ms,
             [cb = std::move(*callback), name] { cb(Error(name, Fault::kRequest), Value{}); });
    return false;
  }
  *callback = [inner = std::move(*callback), injection, name](absl::Status status, R reply) {
    Value value = std::move(reply);
    if (injection.fault == Fault::kReply && status.ok()) {
      status = Error(name, Fault::kReply);
      value = Value{};
    }
    if (injection.delay_ms == 0) return inner(status, std::move(value));
    RunLater(injection.delay_ms, [inner, status, value = std::move(value)]() mutable {
      inner(status, std::move(value));
    });
  };
  return true;
}

}  // namespace lumen::rpc::faults
