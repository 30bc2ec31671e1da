// The remote-function registry: LUMEN_REMOTE maps names to invokers at static
// initialisation, in every process that runs the binary, so only names travel.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "lumen/detail/serializer.h"

namespace lumen::detail {

struct ArgView {
  const char* data = nullptr;
  size_t size = 0;
};

/// Runs a registered function on serialized arguments, writes the serialized result to
/// `out` and the refs nested in it to `nested`. Exceptions of the user function and of
/// argument decoding propagate to the caller.
using Invoker = std::function<void(const std::vector<ArgView>& args, std::string* out,
                                   std::vector<RefData>* nested)>;
/// Runs an actor factory (a function returning T*) and owns the instance it made.
using FactoryInvoker = std::function<std::shared_ptr<void>(const std::vector<ArgView>& args)>;
/// Runs an actor method on `instance` (the T made by the actor's factory).
using MethodInvoker = std::function<void(void* instance, const std::vector<ArgView>& args,
                                         std::string* out, std::vector<RefData>* nested)>;

/// Registers `invoker` under `name`; `key` identifies the function in this process.
/// Registering one name twice for different keys is a fatal error at start-up.
void RegisterFunction(std::string name, const void* key, Invoker invoker);
void RegisterFactory(std::string name, const void* key, FactoryInvoker invoker);
/// Methods are keyed by their member-pointer bytes and type (MethodKey).
void RegisterMethod(std::string name, std::string key, MethodInvoker invoker);
/// The registered name of the function or factory identified by `key`, or nullptr.
const std::string* FunctionNameOf(const void* key);
const std::string* MethodNameOf(const std::string& key);
/// The invoker registered under `name`, or nullptr.
const Invoker* FindInvoker(const std::string& name);
const FactoryInvoker* FindFactory(const std::string& name);
const MethodInvoker* FindMethod(const std::string& name);

/// Identifies a member function pointer within this process.
template <typename M>
std::string MethodKey(M method) {
  static_assert(std::is_member_function_pointer_v<M>);
  std::string key(typeid(M).name());
  key.append(reinterpret_cast<const char*>(&method), sizeof(method));
  return key;
}

/// Decodes serialized arguments into the parameter types (by value).
template <typename... Params>
std::tuple<std::decay_t<Params>...> DecodeArgs(const std::vector<ArgView>& args) {
  if (args.size() != sizeof...(Params)) {
    throw std::invalid_argument("lumen: wrong number of arguments: got " +
                                std::to_string(args.size()) + ", function takes " +
                                std::to_string(sizeof...(Params)));
  }
  return [&]<size_t... I>(std::index_sequence<I...>) {
    return std::tuple<std::decay_t<Params>...>{
        Deserialize<std::decay_t<Params>>(args[I].data, args[I].size)...};
  }(std::index_sequence_for<Params...>{});
}

/// Calls `fn(params...)` on decoded arguments and serializes what it returns.
template <typename R, typename... Params, typename Fn>
void CallAndSerialize(const Fn& fn, const std::vector<ArgView>& args, std::string* out,
                      std::vector<RefData>* nested) {
  auto values = DecodeArgs<Params...>(args);
  auto call = [&]() -> R {
    return std::apply(
        [&](std::decay_t<Params>&... v) -> R { return fn(std::forward<Params>(v)...); },
        values);
  };
  if constexpr (std::is_void_v<R>) {
    call();
    *out = SerializeNil();
  } else {
    static_assert(AssertSerializable<std::decay_t<R>>::value);
    // The result's ObjectRefs die with it, before the caller has them: hold them.
    *out = SerializeAndHold<std::decay_t<R>>(call(), nested);
  }
}

template <typename R, typename... Params>
Invoker MakeInvoker(R (*fn)(Params...)) {
  return [fn](const std::vector<ArgView>& args, std::string* out,
              std::vector<RefData>* nested) {
    CallAndSerialize<R, Params...>(fn, args, out, nested);
  };
}

template <typename T, typename... Params>
FactoryInvoker MakeFactoryInvoker(T* (*fn)(Params...)) {
  return [fn](const std::vector<ArgView>& args) -> std::shared_ptr<void> {
    auto values = DecodeArgs<Params...>(args);
    T* instance = std::apply(
        [&](std::decay_t<Params>&... v) { return fn(std::forward<Params>(v)...); }, values);
    if (instance == nullptr) throw std::runtime_error("the actor factory returned nullptr");
    return std::shared_ptr<void>(instance, [](void* p) { delete static_cast<T*>(p); });
  };
}

template <typename T, typename R, typename... Params, typename M>
MethodInvoker MakeMethodInvoker(M method) {
  return [method](void* instance, const std::vector<ArgView>& args, std::string* out,
                  std::vector<RefData>* nested) {
    T* self = static_cast<T*>(instance);
    auto fn = [self, method](auto&&... a) -> R {
      return (self->*method)(std::forward<decltype(a)>(a)...);
    };
    CallAndSerialize<R, Params...>(fn, args, out, nested);
  };
}

/// The class, result and parameters of a member function pointer (const or not).
template <typename M>
struct MethodTraits;
template <typename T, typename R, typename... Params>
struct MethodTraits<R (T::*)(Params...)> {
  static MethodInvoker Make(R (T::*m)(Params...)) {
    return MakeMethodInvoker<T, R, Params...>(m);
  }
};
template <typename T, typename R, typename... Params>
struct MethodTraits<R (T::*)(Params...) const> {
  static MethodInvoker Make(R (T::*m)(Params...) const) {
    return MakeMethodInvoker<T, R, Params...>(m);
  }
};
template <typename T, typename R, typename... Params>
struct MethodTraits<R (T::*)(Params...) noexcept> {
  static MethodInvoker Make(R (T::*m)(Params...) noexcept) {
    return MakeMethodInvoker<T, R, Params...>(m);
  }
};
template <typename T, typename R, typename... Params>
struct MethodTraits<R (T::*)(Params...) const noexcept> {
  static MethodInvoker Make(R (T::*m)(Params...) const noexcept) {
    return MakeMethodInvoker<T, R, Params...>(m);
  }
};

template <typename F>
struct IsFactory : std::false_type {};
template <typename T, typename... Params>
struct IsFactory<T* (*)(Params...)> : std::is_class<T> {};

/// Splits the text of LUMEN_REMOTE's arguments into names ("&Counter::Add" -> "Counter::Add").
std::vector<std::string> SplitRemoteNames(std::string_view text);

template <typename F>
void RegisterOne(const std::string& name, F fn) {
  if constexpr (std::is_member_function_pointer_v<F>) {
    RegisterMethod(name, MethodKey(fn), MethodTraits<F>::Make(fn));
  } else if constexpr (IsFactory<F>::value) {
    RegisterFactory(name, reinterpret_cast<const void*>(fn), MakeFactoryInvoker(fn));
  } else {
    static_assert(std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>,
                  "lumen: LUMEN_REMOTE takes functions, actor factories (returning T*) and "
                  "&Class::Method (not lambdas or objects)");
    RegisterFunction(name, reinterpret_cast<const void*>(fn), MakeInvoker(fn));
  }
}

template <typename... Fs>
bool RegisterRemote(const char* names_text, Fs... fns) {
  std::vector<std::string> names = SplitRemoteNames(names_text);
  size_t i = 0;
  (RegisterOne(names.at(i++), fns), ...);
  return true;
}

}  // namespace lumen::detail

#define LUMEN_DETAIL_CAT_INNER(a, b) a##b
#define LUMEN_DETAIL_CAT(a, b) LUMEN_DETAIL_CAT_INNER(a, b)

/// Registers remote functions, actor factories and actor methods by name:
/// LUMEN_REMOTE(Plus, Counter::Create, &Counter::Add); at namespace scope, in any
/// translation unit of the program.
#define LUMEN_REMOTE(...)                                                            \
  [[maybe_unused]] static const bool LUMEN_DETAIL_CAT(lumen_remote_registered_,      \
                                                      __COUNTER__) =                 \
      ::lumen::detail::RegisterRemote(#__VA_ARGS__, __VA_ARGS__)
