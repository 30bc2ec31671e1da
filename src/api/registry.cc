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
  std::unordered_map<const void*, std::string> name_by_key;
};

// Function-local: LUMEN_REMOTE runs during static initialisation, in any order.
Registry& GetRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace

void RegisterFunction(std::string name, const void* key, Invoker invoker) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto existing = registry.name_by_key.find(key);
  if (existing != registry.name_by_key.end()) return;  // same function, registered again
  for (const auto& [other_key, other_name] : registry.name_by_key) {
    if (other_name == name) {
      std::fprintf(stderr, "lumen: two different functions are registered as '%s'\n",
                   name.c_str());
      std::abort();
    }
  }
  registry.name_by_key[key] = name;
  registry.by_name[name] = std::move(invoker);
}

const std::string* FunctionNameOf(const void* key) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto it = registry.name_by_key.find(key);
  return it == registry.name_by_key.end() ? nullptr : &it->second;
}

const Invoker* FindInvoker(const std::string& name) {
  Registry& registry = GetRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto it = registry.by_name.find(name);
  return it == registry.by_name.end() ? nullptr : &it->second;
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
