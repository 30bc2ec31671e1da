#include "gcs/log_channel.h"

#include <algorithm>

namespace lumen::gcs {
namespace {
constexpr int64_t kMaxWaitMs = 30000;
constexpr int kMaxLinesPerReply = 2000;
}  // namespace

void LogChannel::Answer(const Job& job, int64_t after_seq, rpc::GetLogsReply* reply) const {
  int64_t next = std::max(after_seq + 1, job.first_seq);
  reply->set_dropped(next - (after_seq + 1));
  int64_t end = job.first_seq + int64_t(job.lines.size());
  int64_t last = std::min(end, next + kMaxLinesPerReply);
  for (int64_t seq = next; seq < last; ++seq) {
    *reply->add_lines() = job.lines[size_t(seq - job.first_seq)];
  }
  reply->set_last_seq(std::max(after_seq, last - 1));
}

void LogChannel::WakeParked(Job& job) {
  std::vector<Parked> parked;
  parked.swap(job.parked);
  for (Parked& poll : parked) {
    Answer(job, poll.after_seq, poll.reply);
    poll.done(absl::OkStatus());
  }
}

void LogChannel::Publish(const rpc::PublishLogsRequest& request) {
  std::map<std::string, Job*> touched;
  for (const rpc::LogLine& line : request.lines()) {
    Job& job = jobs_[line.job_id()];
    job.lines.push_back(line);
    if (job.lines.size() > max_lines_) {
      job.lines.pop_front();
      ++job.first_seq;
    }
    touched[line.job_id()] = &job;
  }
  for (auto& [id, job] : touched) WakeParked(*job);
}

void LogChannel::Poll(const rpc::GetLogsRequest& request, rpc::GetLogsReply* reply,
                      rpc::Done done) {
  Job& job = jobs_[request.job_id()];
  int64_t end = job.first_seq + int64_t(job.lines.size());
  if (request.after_seq() + 1 < end || request.wait_ms() <= 0 || stopped_) {
    Answer(job, request.after_seq(), reply);
    return done(absl::OkStatus());
  }
  uint64_t token = next_token_++;
  job.parked.push_back(Parked{token, request.after_seq(), reply, std::move(done)});
  std::string id = request.job_id();
  run_after_(std::chrono::milliseconds(std::min(request.wait_ms(), kMaxWaitMs)),
             [this, id, token] {
               auto it = jobs_.find(id);
               if (it == jobs_.end()) return;
               auto& parked = it->second.parked;
               for (auto p = parked.begin(); p != parked.end(); ++p) {
                 if (p->token != token) continue;
                 Parked poll = std::move(*p);
                 parked.erase(p);
                 Answer(it->second, poll.after_seq, poll.reply);
                 poll.done(absl::OkStatus());
                 return;
               }
             });
}

void LogChannel::DropJob(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  WakeParked(it->second);
  jobs_.erase(it);
}

void LogChannel::Stop() {
  stopped_ = true;
  for (auto& [id, job] : jobs_) WakeParked(job);
}

}  // namespace lumen::gcs
