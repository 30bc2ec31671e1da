#include "common/session.h"

#include <unistd.h>

#include <chrono>
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

}  // namespace

absl::StatusOr<Session> Session::Create(const std::string& dir) {
  Session session;
  RemoveStaleSessions();
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
