// The GCS's executable store and a raylet's executable cache, together, without a
// cluster: uploads in chunks, checked by digest; fetches in chunks into the cache, one per
// digest; failures that leave no file behind and are not remembered.
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "common/digest.h"
#include "gcs/executable_store.h"
#include "raylet/executable_cache.h"

namespace lumen {
namespace {

namespace fs = std::filesystem;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 random(seed);
  std::string out(n, '\0');
  for (char& c : out) c = char(random());
  return out;
}

std::string DigestOf(const std::string& bytes) {
  Sha256 sha;
  sha.Update(bytes);
  return sha.HexDigest();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ExecutableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("lumen-executable-test-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    store_ = std::make_unique<gcs::ExecutableStore>(root_ + "/gcs");
  }
  void TearDown() override {
    cache_.reset();
    store_.reset();
    fs::remove_all(root_);
  }

  absl::StatusOr<bool> Send(const std::string& digest, uint64_t size, uint64_t offset,
                            const std::string& data, const std::string& upload_id = "u1") {
    rpc::UploadExecutableRequest request;
    request.set_digest(digest);
    request.set_size(size);
    request.set_offset(offset);
    request.set_data(data);
    request.set_upload_id(upload_id);
    return store_->Upload(request);
  }
  /// Uploads `bytes` in chunks of `chunk`; the last answer.
  absl::StatusOr<bool> UploadAll(const std::string& bytes, size_t chunk) {
    std::string digest = DigestOf(bytes);
    absl::StatusOr<bool> stored = false;
    for (size_t offset = 0; offset < bytes.size() && stored.ok(); offset += chunk) {
      stored = Send(digest, bytes.size(), offset, bytes.substr(offset, chunk));
    }
    return stored;
  }
  /// Files in `dir`, names only.
  std::vector<std::string> Files(const std::string& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      names.push_back(entry.path().filename());
    }
    return names;
  }
  /// A cache whose reads go to the store (through `corrupt` when set), answered on the
  /// test's thread by Pump(), like a raylet's loop would.
  void MakeCache() {
    cache_ = std::make_unique<raylet::ExecutableCache>(
        root_ + "/node",
        [this](const rpc::ReadExecutableRequest& request,
               std::function<void(absl::Status, rpc::ReadExecutableReply&&)> done) {
          ++reads_;
          if (hold_reads_) {
            held_ = std::move(done);
            return std::function<void()>([this] {
              if (held_) std::exchange(held_, nullptr)(absl::CancelledError("cancelled"), {});
            });
          }
          rpc::ReadExecutableReply reply;
          absl::Status status = store_->Read(request, &reply);
          if (status.ok() && corrupt_ && !reply.data().empty()) (*reply.mutable_data())[0] ^= 1;
          done(status, std::move(reply));
          return std::function<void()>([] {});
        },
        [this](std::function<void()> fn) { queue_.push_back(std::move(fn)); });
  }
  void Pump() {
    while (!queue_.empty()) {
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      fn();
    }
  }
  /// Ensure, pumped to its answer.
  absl::StatusOr<std::string> Ensure(const std::string& digest, uint64_t size) {
    absl::StatusOr<std::string> result = absl::UnknownError("no answer");
    cache_->Ensure(digest, size, [&](absl::StatusOr<std::string> r) { result = std::move(r); });
    Pump();
    return result;
  }

  std::string root_;
  std::unique_ptr<gcs::ExecutableStore> store_;
  std::unique_ptr<raylet::ExecutableCache> cache_;
  std::deque<std::function<void()>> queue_;
  int reads_ = 0;
  bool corrupt_ = false;
  bool hold_reads_ = false;
  std::function<void(absl::Status, rpc::ReadExecutableReply&&)> held_;
};

TEST_F(ExecutableTest, AnUploadInChunksIsStoredOnceAndFetchedByteForByte) {
  const std::string bytes = RandomBytes(19 * 1024 * 1024 + 123, 1);
  const std::string digest = DigestOf(bytes);
  auto stored = UploadAll(bytes, 3 * 1024 * 1024);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_TRUE(*stored);
  EXPECT_EQ(Files(root_ + "/gcs"), std::vector<std::string>{digest});
  // The next job of the same program sends nothing: the first (empty) chunk says stored.
  auto again = Send(digest, bytes.size(), 0, "", "u2");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*again);

  MakeCache();
  auto path = Ensure(digest, bytes.size());
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, root_ + "/node/" + digest);
  EXPECT_EQ(ReadAll(*path), bytes);
  EXPECT_EQ(reads_, 3);  // 8 MiB chunks
  struct stat st;
  ASSERT_EQ(stat(path->c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  EXPECT_EQ(Files(root_ + "/node"), std::vector<std::string>{digest});  // no part left
  // Cached: no more reads.
  ASSERT_TRUE(Ensure(digest, bytes.size()).ok());
  EXPECT_EQ(reads_, 3);
}

TEST_F(ExecutableTest, ManyWaitersShareOneFetch) {
  const std::string bytes = RandomBytes(9 * 1024 * 1024, 2);
  ASSERT_TRUE(UploadAll(bytes, 4 * 1024 * 1024).ok());
  MakeCache();
  std::vector<absl::StatusOr<std::string>> results;
  for (int i = 0; i < 5; ++i) {
    cache_->Ensure(DigestOf(bytes), bytes.size(),
                   [&](absl::StatusOr<std::string> r) { results.push_back(std::move(r)); });
  }
  Pump();
  ASSERT_EQ(results.size(), 5u);
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(reads_, 2);
}

TEST_F(ExecutableTest, UploadsThatAreWrongAreRefusedAndLeaveNoFile) {
  const std::string bytes = RandomBytes(1000, 3);
  const std::string digest = DigestOf(bytes);
  auto malformed = Send("not-a-digest", 10, 0, "0123456789");
  EXPECT_EQ(malformed.status().code(), absl::StatusCode::kInvalidArgument);
  auto late = Send(digest, bytes.size(), 500, bytes.substr(500));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Send(digest, bytes.size(), 0, bytes.substr(0, 400)).ok());
  auto gap = Send(digest, bytes.size(), 500, bytes.substr(500));
  EXPECT_EQ(gap.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(gap.status().message().find("expected offset 400"), std::string::npos)
      << gap.status();
  auto past = Send(digest, bytes.size(), 400, bytes.substr(400) + "extra");
  EXPECT_EQ(past.status().code(), absl::StatusCode::kInvalidArgument);
  // Content that is not what the digest says.
  std::string other = bytes;
  other[10] ^= 1;
  auto wrong = Send(digest, other.size(), 0, other, "u3");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("SHA-256"), std::string::npos) << wrong.status();
  auto huge = Send(digest, gcs::ExecutableStore::kMaxSize + 1, 0, "");
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Files(root_ + "/gcs").empty());
}

TEST_F(ExecutableTest, AFetchThatFailsLeavesNothingAndIsTriedAgain) {
  const std::string bytes = RandomBytes(100 * 1024, 4);
  const std::string digest = DigestOf(bytes);
  MakeCache();
  auto missing = Ensure(digest, bytes.size());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(digest), std::string::npos) << missing.status();
  EXPECT_TRUE(Files(root_ + "/node").empty());

  ASSERT_TRUE(UploadAll(bytes, bytes.size()).ok());
  corrupt_ = true;
  auto corrupted = Ensure(digest, bytes.size());
  EXPECT_EQ(corrupted.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Files(root_ + "/node").empty());
  auto wrong_size = Ensure(digest, bytes.size() + 1);
  EXPECT_EQ(wrong_size.status().code(), absl::StatusCode::kDataLoss);

  corrupt_ = false;
  auto fetched = Ensure(digest, bytes.size());
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(ReadAll(*fetched), bytes);
  EXPECT_EQ(Ensure("../../etc/passwd", 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ExecutableTest, StopCancelsAReadInFlight) {
  const std::string bytes = RandomBytes(1000, 5);
  ASSERT_TRUE(UploadAll(bytes, bytes.size()).ok());
  hold_reads_ = true;
  MakeCache();
  bool answered = false;
  cache_->Ensure(DigestOf(bytes), bytes.size(), [&](absl::StatusOr<std::string> r) {
    answered = true;
    EXPECT_FALSE(r.ok());
  });
  ASSERT_TRUE(held_ != nullptr);
  cache_->Stop();  // returns once the cancelled read's callback ran
  EXPECT_FALSE(held_);
  Pump();
  EXPECT_TRUE(answered);
  cache_.reset();
  EXPECT_TRUE(Files(root_ + "/node").empty());
}

}  // namespace
}  // namespace lumen
