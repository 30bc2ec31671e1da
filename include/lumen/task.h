// lumen::Task — remote functions.
#pragma once

#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "lumen/detail/registry.h"
#include "lumen/detail/runtime.h"
#include "lumen/errors.h"
#include "lumen/object_ref.h"
#include "lumen/placement_group.h"

namespace lumen {
namespace detail {

template <typename T>
struct IsObjectRef : std::false_type {};
template <typename T>
struct IsObjectRef<ObjectRef<T>> : std::true_type {};

/// Serializes one argument for a parameter of type Param. An ObjectRef<U> given where a
/// non-ObjectRef parameter is expected travels by reference and the worker receives the
/// value; anything else is converted to the parameter type and serialized inline.
template <typename Param, typename Arg>
SerializedArg SerializeArg(Arg&& arg) {
  using P = std::decay_t<Param>;
  using A = std::decay_t<Arg>;
  SerializedArg out;
  if constexpr (IsObjectRef<A>::value && !IsObjectRef<P>::value) {
    static_assert(std::is_same_v<typename A::ValueType, P>,
                  "lumen: an ObjectRef<T> argument must match the parameter type T");
    out.by_ref = true;
    out.ref = arg.Data();
  } else {
    static_assert(std::is_convertible_v<Arg&&, P>,
                  "lumen: argument cannot be converted to the function's parameter type");
    out.data = Serialize<P>(P(std::forward<Arg>(arg)), &out.nested);
  }
  return out;
}

}  // namespace detail

/// A remote call of a function registered with LUMEN_REMOTE, with its options. Setters
/// validate at once and throw ConfigError; Remote submits and returns immediately.
template <typename F>
class TaskCaller;

template <typename R, typename... Params>
class TaskCaller<R (*)(Params...)> {
 public:
  using Fn = R (*)(Params...);
  explicit TaskCaller(Fn fn) : fn_(fn) {}

  /// A name for the task, shown in logs and errors.
  TaskCaller& SetName(std::string name) {
    options_.name = std::move(name);
    return *this;
  }
  /// Demand `amount` of resource `name` (default {"CPU": 1}). Amounts are >= 0 (0: no
  /// demand for it, e.g. {"CPU": 0} for I/O-bound work), and
  /// whole above 1 (0.5 is valid, 1.5 is not).
  TaskCaller& SetResource(const std::string& name, double amount) {
    detail::ValidateResource(name, amount);
    options_.resources[name] = amount;
    return *this;
  }
  TaskCaller& SetResources(const std::map<std::string, double>& resources) {
    for (const auto& [name, amount] : resources) SetResource(name, amount);
    return *this;
  }
  /// How many times to re-run the task when its worker dies (default 3; -1: forever).
  TaskCaller& SetMaxRetries(int max_retries) {
    if (max_retries < -1) throw ConfigError("lumen: SetMaxRetries takes -1 or more");
    options_.max_retries = max_retries;
    return *this;
  }
  /// Also re-run the task when the function throws (default false).
  TaskCaller& SetRetryExceptions(bool retry) {
    options_.retry_exceptions = retry;
    return *this;
  }
  /// Where the task may run (lumen/scheduling.h; default: DefaultStrategy, the hybrid
  /// policy). Throws ConfigError for a NodeAffinityStrategy without a valid node id.
  TaskCaller& SetSchedulingStrategy(SchedulingStrategy strategy) {
    detail::ValidateStrategy(strategy);
    options_.scheduling = std::move(strategy);
    return *this;
  }
  /// Runs the task in bundle `bundle_index` of `group` (-1: any of its bundles), on the
  /// bundle's resources: its demand must fit in the bundle (ConfigError at Remote
  /// otherwise). When the group is removed, the task stops (TaskCancelledError).
  /// Replaces SetSchedulingStrategy.
  TaskCaller& SetPlacementGroup(const PlacementGroup& group, int bundle_index = -1) {
    options_.placement = detail::MakePlacementTarget(group, bundle_index);
    return *this;
  }

  /// Submits the task. Throws FunctionNotFoundError when the function is not registered,
  /// ConfigError before Init.
  template <typename... Args>
  ObjectRef<R> Remote(Args&&... args) {
    static_assert(sizeof...(Args) == sizeof...(Params),
                  "lumen: Remote() takes as many arguments as the function");
    detail::CheckInitialized("Task(...).Remote");
    const std::string* name = detail::FunctionNameOf(reinterpret_cast<const void*>(fn_));
    if (name == nullptr) {
      throw FunctionNotFoundError(
          "lumen: the function passed to Task() is not registered; add LUMEN_REMOTE(name) "
          "at namespace scope in the program");
    }
    std::vector<detail::SerializedArg> serialized;
    serialized.reserve(sizeof...(Args));
    (serialized.push_back(detail::SerializeArg<Params>(std::forward<Args>(args))), ...);
    return ObjectRef<R>::Adopt(detail::SubmitTask(*name, std::move(serialized), options_));
  }

 private:
  Fn fn_;
  detail::TaskOptions options_;
};

/// Starts building a remote call of `fn`, which must be registered with LUMEN_REMOTE.
template <typename R, typename... Params>
TaskCaller<R (*)(Params...)> Task(R (*fn)(Params...)) {
  return TaskCaller<R (*)(Params...)>(fn);
}

namespace detail {
template <typename F>
inline constexpr bool kNotAFunction = false;
}  // namespace detail

/// Anything else (a lambda, a std::function, a functor) is a compile error that says what
/// to do: only a registered function's name travels to a worker.
template <typename F>
  requires(!std::is_function_v<std::remove_cvref_t<F>> && !std::is_pointer_v<std::decay_t<F>>)
void Task(F&&) {
  static_assert(detail::kNotAFunction<F>,
                "lumen: Task() takes a plain function registered with LUMEN_REMOTE(name); a "
                "lambda or other callable cannot be sent to a worker: make it a named "
                "function at namespace scope and register it with LUMEN_REMOTE");
}

}  // namespace lumen
