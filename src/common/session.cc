#include "common/session.h"

#include <fcntl.h>
#include <sys/file.h>
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

// Segments are named /dev/shm/lumen_...; their creator holds a shared flock on each for
// its life. One that nobody holds was left by a process that died: remove it. (Not by
// pid: a process in another pid namespace sharing this /dev/shm has a pid we cannot see.)
// A segment written in the last few seconds may be one whose creator is about to lock it.
void RemoveStaleSegments() {
  constexpr auto kNewSegment = std::chrono::seconds(10);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/dev/shm", ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("lumen_", 0) != 0) continue;
    std::error_code time_ec;
    auto written = fs::last_write_time(entry.path(), time_ec);
    if (time_ec || fs::file_time_type::clock::now() - written < kNewSegment) continue;
    int fd = open(entry.path().c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) fs::remove(entry.path(), ec);
    close(fd);
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
