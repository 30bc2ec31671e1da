#include <cstdlib>
#include <string>

#include "api/runtime.h"
#include "lumen/errors.h"

namespace lumen::api {
namespace {

double ParseNumber(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  double parsed = std::strtod(value.c_str(), &end);
  if (value.empty() || end == nullptr || *end != '\0') {
    throw ConfigError("lumen: flag " + flag + " needs a number, got '" + value + "'");
  }
  return parsed;
}

bool ParseBool(const std::string& flag, const std::string& value) {
  if (value.empty() || value == "1" || value == "true") return true;
  if (value == "0" || value == "false") return false;
  throw ConfigError("lumen: flag " + flag + " takes true or false, got '" + value + "'");
}

}  // namespace

void ApplyFlags(Config& config, int argc, char** argv) {
  for (int i = 1; i < argc && argv != nullptr; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--lumen-", 0) != 0) continue;
    size_t eq = arg.find('=');
    std::string flag = arg.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    if (flag == "--lumen-address") {
      config.address = value;
    } else if (flag == "--lumen-node-ip-address") {
      config.node_ip_address = value;
    } else if (flag == "--lumen-num-cpus") {
      config.num_cpus = ParseNumber(flag, value);
    } else if (flag == "--lumen-num-gpus") {
      config.num_gpus = ParseNumber(flag, value);
    } else if (flag == "--lumen-object-store-memory") {
      config.object_store_memory = int64_t(ParseNumber(flag, value));
    } else if (flag == "--lumen-max-inline-object-size") {
      config.max_inline_object_size = int64_t(ParseNumber(flag, value));
    } else if (flag == "--lumen-object-spilling-directory") {
      config.object_spilling_directory = value;
    } else if (flag == "--lumen-namespace") {
      config.namespace_ = value;
    } else if (flag == "--lumen-session-dir") {
      config.session_dir = value;
    } else if (flag == "--lumen-log-level") {
      config.log_level = value;
    } else if (flag == "--lumen-keep-session-dir") {
      config.keep_session_dir = ParseBool(flag, value);
    } else if (flag == "--lumen-log-to-driver") {
      config.log_to_driver = ParseBool(flag, value);
    } else if (flag == "--lumen-task-events") {
      config.task_events = ParseBool(flag, value);
    } else if (flag == "--lumen-resources") {
      // name:amount,name:amount
      size_t start = 0;
      while (start <= value.size()) {
        size_t comma = value.find(',', start);
        std::string item = value.substr(start, comma - start);
        size_t colon = item.find(':');
        if (colon == std::string::npos) {
          throw ConfigError("lumen: --lumen-resources takes name:amount[,name:amount], got '" +
                            value + "'");
        }
        config.resources[item.substr(0, colon)] = ParseNumber(flag, item.substr(colon + 1));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else {
      throw ConfigError("lumen: unknown flag " + flag);
    }
  }
}

}  // namespace lumen::api
