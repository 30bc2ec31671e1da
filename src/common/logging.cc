#include "common/logging.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <memory>
#include <mutex>

namespace lumen {
namespace {

constexpr char kPattern[] = "[%Y-%m-%d %H:%M:%S.%e] [lumen %P] [%l] %v";

// The GCS and the raylet share a head daemon's process: each message goes to its
// component's file, by the prefix every message of the GCS carries.
class ComponentSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  ComponentSink(std::shared_ptr<spdlog::sinks::sink> gcs,
                std::shared_ptr<spdlog::sinks::sink> raylet)
      : gcs_(std::move(gcs)), raylet_(std::move(raylet)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    (payload.rfind("gcs:", 0) == 0 ? gcs_ : raylet_)->log(msg);
  }
  void flush_() override {
    gcs_->flush();
    raylet_->flush();
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> gcs_, raylet_;
};

}  // namespace

bool SetLogLevel(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  static bool configured = [] {
    auto logger = spdlog::stderr_logger_mt("lumen");
    logger->set_pattern(kPattern);
    spdlog::set_default_logger(logger);
    return true;
  }();
  (void)configured;
  spdlog::set_level(parsed);
  return true;
}

bool LogToFiles(const std::string& logs_dir) {
  try {
    auto gcs = std::make_shared<spdlog::sinks::basic_file_sink_mt>(logs_dir + "/gcs.log");
    auto raylet = std::make_shared<spdlog::sinks::basic_file_sink_mt>(logs_dir + "/raylet.log");
    gcs->set_pattern(kPattern);
    raylet->set_pattern(kPattern);
    auto level = spdlog::get_level();
    auto logger = std::make_shared<spdlog::logger>(
        "lumen-daemon", std::make_shared<ComponentSink>(std::move(gcs), std::move(raylet)));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    spdlog::set_level(level);
    return true;
  } catch (const spdlog::spdlog_ex&) {
    return false;
  }
}

}  // namespace lumen
