#include "common/session.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "common/process.h"

namespace fs = std::filesystem;

namespace lumen {
namespace {

constexpr char kRoot[] = "/tmp/lumen";
constexpr char kOwnerFile[] = "owner.pid";

void RemoveStaleSessions() {
  std::error_code ec;
  if (!fs::is_directory(kRoot, ec)) return;
  for (const auto& entry : fs::directory_iterator(kRoot, ec)) {
    if (entry.path().filename().string().rfind("session_", 0) != 0) continue;
    std::ifstream in(entry.path() / kOwnerFile);
    pid_t pid = 0;
    if (!(in >> pid)) continue;  // not ours to judge
    if (!ProcessAlive(pid)) fs::remove_all(entry.path(), ec);
  }
}

// Segments are named /dev/shm/lumen_<pid>_...: remove those whose process is gone.
void RemoveStaleSegments() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/dev/shm", ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("lumen_", 0) != 0) continue;
    pid_t pid = pid_t(std::atoi(name.c_str() + 6));
    if (pid > 0 && !ProcessAlive(pid)) fs::remove(entry.path(), ec);
  }
}

}  // namespace

std::string Session::Root() { return kRoot; }

std::string Session::ShmName(const std::string& what) const {
  return "/lumen_" + std::to_string(getpid()) + "_" + std::to_string(serial_) + "_" + what;
}

absl::StatusOr<Session> Session::Create(const std::string& dir) {
  static std::atomic<int> serial{0};
  Session session;
  session.serial_ = serial++;
  RemoveStaleSessions();
  RemoveStaleSegments();
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  std::string name = std::string("session_") + stamp + "_" + std::to_string(getpid());
  std::error_code ec;
  if (dir.empty()) {
    session.dir_ = std::string(kRoot) + "/" + name;
  } else if (fs::exists(dir, ec)) {
    session.dir_ = dir + "/" + name;
  } else {
    session.dir_ = dir;
  }
  if (fs::exists(session.dir_, ec)) {
    return absl::AlreadyExistsError("session directory '" + session.dir_ + "' already exists");
  }
  fs::create_directories(session.dir_ + "/logs", ec);
  if (!ec) fs::create_directories(session.dir_ + "/sockets", ec);
  if (ec) {
    return absl::FailedPreconditionError("cannot create session directory '" +
                                         session.dir_ + "': " + ec.message());
  }
  std::ofstream(session.dir_ + "/" + kOwnerFile) << getpid() << "\n";
  return session;
}

void Session::Remove() const {
  std::error_code ec;
  // Only the session's own directory: /tmp/lumen stays, since another program may be
  // creating its session in it at this very moment.
  fs::remove_all(dir_, ec);
}

}  // namespace lumen
