// The remote-function registry: LUMEN_REMOTE maps names to invokers at static
// initialisation, in every process that runs the binary, so only names travel.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
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

/// Registers `invoker` under `name`; `key` identifies the function in this process.
/// Registering one name twice for different keys is a fatal error at start-up.
void RegisterFunction(std::string name, const void* key, Invoker invoker);
/// The registered name of the function identified by `key`, or nullptr.
const std::string* FunctionNameOf(const void* key);
/// The invoker registered under `name`, or nullptr.
const Invoker* FindInvoker(const std::string& name);

template <typename R, typename... Params>
Invoker MakeInvoker(R (*fn)(Params...)) {
  return [fn](const std::vector<ArgView>& args, std::string* out,
              std::vector<RefData>* nested) {
    if (args.size() != sizeof...(Params)) {
      throw std::invalid_argument("lumen: wrong number of arguments: got " +
                                  std::to_string(args.size()) + ", function takes " +
                                  std::to_string(sizeof...(Params)));
    }
    auto call = [&]<size_t... I>(std::index_sequence<I...>) -> decltype(auto) {
      std::tuple<std::decay_t<Params>...> values{
          Deserialize<std::decay_t<Params>>(args[I].data, args[I].size)...};
      return fn(std::forward<Params>(std::get<I>(values))...);
    };
    if constexpr (std::is_void_v<R>) {
      call(std::index_sequence_for<Params...>{});
      *out = SerializeNil();
    } else {
      static_assert(AssertSerializable<std::decay_t<R>>::value);
      *out = Serialize<std::decay_t<R>>(call(std::index_sequence_for<Params...>{}), nested);
    }
  };
}

/// Splits the text of LUMEN_REMOTE's arguments into names ("&Counter::Add" -> "Counter::Add").
std::vector<std::string> SplitRemoteNames(std::string_view text);

template <typename F>
void RegisterOne(const std::string& name, F fn) {
  if constexpr (std::is_member_function_pointer_v<F>) {
    static_assert(!std::is_member_function_pointer_v<F>,
                  "lumen: actor methods are not supported by this version of lumen yet");
  } else {
    static_assert(std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>,
                  "lumen: LUMEN_REMOTE takes functions (not lambdas or objects)");
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

/// Registers remote functions by name: LUMEN_REMOTE(Plus, Minus); at namespace scope, in
/// any translation unit of the program.
#define LUMEN_REMOTE(...)                                                            \
  [[maybe_unused]] static const bool LUMEN_DETAIL_CAT(lumen_remote_registered_,      \
                                                      __COUNTER__) =                 \
      ::lumen::detail::RegisterRemote(#__VA_ARGS__, __VA_ARGS__)
