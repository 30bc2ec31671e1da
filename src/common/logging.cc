#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace lumen {

bool SetLogLevel(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  static bool configured = [] {
    auto logger = spdlog::stderr_logger_mt("lumen");
    logger->set_pattern("[%H:%M:%S.%e] [lumen %P] [%l] %v");
    spdlog::set_default_logger(logger);
    return true;
  }();
  (void)configured;
  spdlog::set_level(parsed);
  return true;
}

}  // namespace lumen
