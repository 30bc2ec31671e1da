#include <gtest/gtest.h>

#include <set>

#include "common/ids.h"

namespace lumen {
namespace {

TEST(IdsTest, RandomIdsAreUniqueAndRoundTrip) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    TaskId id = TaskId::FromRandom();
    EXPECT_FALSE(id.IsNil());
    EXPECT_TRUE(seen.insert(id.Binary()).second);
    EXPECT_EQ(TaskId::FromHex(id.Hex()), id);
    EXPECT_EQ(TaskId::FromBinary(id.Binary()), id);
  }
}

TEST(IdsTest, BadInputGivesNil) {
  EXPECT_TRUE(TaskId::FromBinary("short").IsNil());
  EXPECT_TRUE(TaskId::FromHex("zz").IsNil());
  EXPECT_TRUE(NodeId::Nil().IsNil());
}

TEST(IdsTest, ObjectIdsKnowTheirTask) {
  TaskId task = TaskId::FromRandom();
  ObjectId ret = ObjectId::ForTaskReturn(task, 1);
  ObjectId put = ObjectId::ForPut(task, 1);
  EXPECT_EQ(ret.Task(), task);
  EXPECT_NE(ret, put);
}

}  // namespace
}  // namespace lumen
