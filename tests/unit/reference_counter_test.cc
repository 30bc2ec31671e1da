#include "core_worker/reference_counter.h"

#include <gtest/gtest.h>

#include <vector>

namespace lumen::core {
namespace {

class ReferenceCounterTest : public ::testing::Test {
 protected:
  std::vector<ObjectId> freed_;
  ReferenceCounter refs_{[this](const ObjectId& id, bool) { freed_.push_back(id); }};
  ObjectId id_ = ObjectId::ForPut(TaskId::FromRandom(), 0);
};

TEST_F(ReferenceCounterTest, FreesWhenLastHandleGoes) {
  refs_.AddOwned(id_);
  refs_.AddLocal(id_, "");
  refs_.RemoveLocal(id_);
  EXPECT_TRUE(freed_.empty());
  refs_.RemoveLocal(id_);
  EXPECT_EQ(freed_, std::vector<ObjectId>{id_});
  EXPECT_FALSE(refs_.IsOwnedAndLive(id_));
}

TEST_F(ReferenceCounterTest, PendingTaskKeepsArgumentAlive) {
  refs_.AddOwned(id_);
  refs_.AddTaskUse(id_);
  refs_.RemoveLocal(id_);
  EXPECT_TRUE(freed_.empty());
  refs_.RemoveTaskUse(id_);
  EXPECT_EQ(freed_.size(), 1u);
}

TEST_F(ReferenceCounterTest, EscapedObjectsAreKept) {
  refs_.AddOwned(id_);
  refs_.MarkEscaped(id_);
  refs_.RemoveLocal(id_);
  EXPECT_TRUE(freed_.empty());
  EXPECT_TRUE(refs_.IsOwnedAndLive(id_));
}

TEST_F(ReferenceCounterTest, BorrowedRefsRememberTheirOwner) {
  refs_.AddLocal(id_, "unix:/owner.sock");
  EXPECT_EQ(refs_.OwnerOf(id_), "unix:/owner.sock");
  EXPECT_FALSE(refs_.IsOwnedAndLive(id_));
  refs_.RemoveLocal(id_);
  EXPECT_EQ(freed_.size(), 1u);
  EXPECT_EQ(refs_.NumTracked(), 0u);
}

}  // namespace
}  // namespace lumen::core
