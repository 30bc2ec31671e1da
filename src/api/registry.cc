#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "lumen/detail/registry.h"

namespace lumen::detail {
namespace {

struct Registry {
  std::mutex mutex;
  std::unordered_map<std::string, Invoker> by_name;
  std::unordered_map<std::string, FactoryInvoker> factories;
  std::unordered_map<std::string, MethodInvoker> methods;
  std::unordered_map<const void*, std::string> name_by_key;         // functions, factories
  std::unordered_map<std::string, std::string> method_name_by_key;  // MethodKey -> name
};

[[noreturn]] void DuplicateName(const std::string& name) {
  std::fprintf(stderr, "lumen: two different functions are registered as '%s'\n",
               name.c_str());
  std::abort();
}

// Records `key` -> `name` for a function or factory; false when `key` was registered
// before (the same function named again).
bool ClaimName(Registry& registry, const std::string& name, const void* key) {
  if (registry.name_by_key.count(key)) return false;
  for (const auto& [other_key, other_name] : registry.name_by_key) {
    if (other_name == name) DuplicateName(name);
  }
  if (registry.methods.count(name)) DuplicateName(name);
  registry.name_by_key[key] = name;
  return true;
}

// Function-local: LUMEN_REMOTE runs during static initialisation, in any order.
Registry& GetRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace

void RegisterFunction(std::string name, const void* key, Invoker invoker) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  if (ClaimName(registry, name, key)) registry.by_name[name] = std::move(invoker);
}

void RegisterFactory(std::string name, const void* key, FactoryInvoker invoker) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  if (ClaimName(registry, name, key)) registry.factories[name] = std::move(invoker);
}

void RegisterMethod(std::string name, std::string key, MethodInvoker invoker) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  if (registry.method_name_by_key.count(key)) return;  // same method, registered again
  if (registry.methods.count(name) || registry.by_name.count(name) ||
      registry.factories.count(name)) {
    DuplicateName(name);
  }
  registry.method_name_by_key[key] = name;
  registry.methods[name] = std::move(invoker);
}

const std::string* FunctionNameOf(const void* key) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto it = registry.name_by_key.find(key);
  return it == registry.name_by_key.end() ? nullptr : &it->second;
}

const std::string* MethodNameOf(const std::string& key) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto it = registry.method_name_by_key.find(key);
  return it == registry.method_name_by_key.end() ? nullptr : &it->second;
}

namespace {

template <typename Map>
const typename Map::mapped_type* FindIn(Map& map, const std::string& name) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto it = map.find(name);
  return it == map.end() ? nullptr : &it->second;
}

}  // namespace

const Invoker* FindInvoker(const std::string& name) {
  return FindIn(GetRegistry().by_name, name);
}
const FactoryInvoker* FindFactory(const std::string& name) {
  return FindIn(GetRegistry().factories, name);
}
const MethodInvoker* FindMethod(const std::string& name) {
  return FindIn(GetRegistry().methods, name);
}

std::vector<std::string> SplitRemoteNames(std::string_view text) {
  std::vector<std::string> names;
  std::string current;
  int depth = 0;
  auto flush = [&] {
    std::string name;
    for (char c : current) {
      if (c != ' ' && c != '\t' && c != '\n') name.push_back(c);
    }
    if (!name.empty() && name[0] == '&') name.erase(0, 1);
    if (name.rfind("::", 0) == 0) name.erase(0, 2);
    names.push_back(name);
    current.clear();
  };
  for (char c : text) {
    if (c == '<' || c == '(') ++depth;
    if (c == '>' || c == ')') --depth;
    if (c == ',' && depth == 0) {
      flush();
    } else {
      current.push_back(c);
    }
  }
  flush();
  return names;
}

}  // namespace lumen::detail
