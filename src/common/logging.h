// The runtime's logger (spdlog), on stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace lumen {

/// Sets the level of the runtime's log ("trace" ... "off"); false on an unknown name.
bool SetLogLevel(const std::string& level);

}  // namespace lumen

#define LUMEN_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define LUMEN_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define LUMEN_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define LUMEN_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
