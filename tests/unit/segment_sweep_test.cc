// Sweeping /dev/shm at a session's start: segments of dead processes go, live ones stay,
// also when their creator's pid is not one this process can see (another container
// sharing /dev/shm).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/session.h"
#include "object_store/allocator.h"

namespace lumen {
namespace {

namespace fs = std::filesystem;

// A pid above any pid_max: no process here has it, as for a process in another pid
// namespace.
constexpr char kUnseenPid[] = "999999999";

std::string Segment(const std::string& what) {
  return std::string("/lumen_") + kUnseenPid + "_" + std::to_string(getpid()) + "_" + what;
}

// Backdates a segment so that the sweep does not take it for one just being made.
void MakeOld(const std::string& name) {
  timespec times[2] = {{0, UTIME_OMIT}, {time(nullptr) - 3600, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, ("/dev/shm" + name).c_str(), times, 0), 0);
}

void Sweep() {
  char dir[] = "/tmp/lumen_sweep_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  auto session = Session::Create(std::string(dir) + "/s");
  ASSERT_TRUE(session.ok()) << session.status();
  session->Remove();
  fs::remove_all(dir);
}

TEST(SegmentSweepTest, ALiveStoreWhosePidIsUnseenStaysAndALeftoverGoes) {
  auto live = object_store::ShmAllocator::Create(Segment("live"), 1 << 20);
  ASSERT_TRUE(live.ok()) << live.status();
  MakeOld(Segment("live"));
  // Left by a process that died: made without anyone holding it.
  int fd = shm_open(Segment("left").c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  close(fd);
  MakeOld(Segment("left"));
  // Just made (its creator may not hold it yet): left for a later sweep.
  fd = shm_open(Segment("new").c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  close(fd);

  Sweep();
  EXPECT_TRUE(fs::exists("/dev/shm" + Segment("live"))) << "a live store was removed";
  EXPECT_FALSE(fs::exists("/dev/shm" + Segment("left"))) << "a leftover segment stayed";
  EXPECT_TRUE(fs::exists("/dev/shm" + Segment("new")));
  shm_unlink(Segment("new").c_str());
  live->reset();
  EXPECT_FALSE(fs::exists("/dev/shm" + Segment("live")));
}

}  // namespace
}  // namespace lumen
