// The runtime's logger (spdlog), on stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace lumen {

/// Sets the level of the runtime's log ("trace" ... "off"); false on an unknown name.
bool SetLogLevel(const std::string& level);

/// A daemon's log: from now on the runtime's log goes to files in `logs_dir` instead of
/// stderr: messages of the GCS ("gcs: ...") to gcs.log, every other one to raylet.log.
/// Keeps the level. False when the files cannot be opened.
bool LogToFiles(const std::string& logs_dir);

}  // namespace lumen

#define LUMEN_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define LUMEN_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define LUMEN_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define LUMEN_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
