#include "api/log_echo.h"

#include <chrono>
#include <cstdio>

#include "rpc/rpc.h"

namespace lumen::api {

LogEcho::LogEcho(const std::string& gcs_endpoint, std::string job_id, std::string local_node_id)
    : gcs_(rpc::GcsService::NewStub(rpc::MakeChannel(gcs_endpoint))),
      job_id_(std::move(job_id)),
      local_node_id_(std::move(local_node_id)) {
  thread_ = std::thread([this] { Run(); });
}

LogEcho::~LogEcho() { Stop(); }

void LogEcho::Run() {
  while (!stopping_.load()) {
    if (!PollOnce(/*wait_ms=*/10000, /*cancellable=*/true) && !stopping_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // GCS away: retry
    }
  }
}

bool LogEcho::PollOnce(int64_t wait_ms, bool cancellable) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(wait_ms + (cancellable ? 5000 : 1000)));
  if (cancellable) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_.load()) return true;
    current_ = &context;
  }
  rpc::GetLogsRequest request;
  request.set_job_id(job_id_);
  request.set_after_seq(after_seq_);
  request.set_wait_ms(wait_ms);
  rpc::GetLogsReply reply;
  grpc::Status status = gcs_->GetLogs(&context, request, &reply);
  if (cancellable) {
    std::lock_guard<std::mutex> lock(mutex_);
    current_ = nullptr;
  }
  if (!status.ok()) return false;
  if (reply.dropped() > 0) {
    std::fprintf(stderr, "lumen: %lld lines of worker output were dropped (printed faster "
                 "than this driver read them; the workers' log files have them)\n",
                 static_cast<long long>(reply.dropped()));
  }
  for (const rpc::LogLine& line : reply.lines()) {
    std::string prefix = "(pid=" + std::to_string(line.pid());
    if (line.node_id() != local_node_id_) prefix += ", node=" + line.node_ip();
    prefix += ") ";
    FILE* out = line.from_stderr() ? stderr : stdout;
    std::fwrite(prefix.data(), 1, prefix.size(), out);
    std::fwrite(line.text().data(), 1, line.text().size(), out);
    std::fputc('\n', out);
  }
  if (reply.lines_size() > 0) {
    std::fflush(stdout);
    std::fflush(stderr);
  }
  after_seq_ = reply.last_seq();
  return true;
}

void LogEcho::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_.exchange(true)) return;
    if (current_ != nullptr) current_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
  // What the raylets published up to now, and what comes within 50 ms (lines a worker
  // printed just before the driver's last Get returned may still be on their way).
  for (int i = 0; i < 100; ++i) {
    int64_t before = after_seq_;
    if (!PollOnce(/*wait_ms=*/50, /*cancellable=*/false) || after_seq_ == before) break;
  }
}

}  // namespace lumen::api
