// Lineage alone: which finished tasks are kept, for how long, and how many times a lost
// result may be made again.
#include "core_worker/lineage.h"

#include <gtest/gtest.h>

namespace lumen::core {
namespace {

rpc::TaskSpec Spec(const TaskId& task, int num_returns) {
  rpc::TaskSpec spec;
  spec.set_task_id(task.Binary());
  spec.set_function_name("MakeBlock");
  spec.set_num_returns(num_returns);
  spec.add_args()->set_value(std::string(1000, 'x'));
  return spec;
}

TEST(LineageTest, KeepsATaskWhileOneOfItsStoredResultsIsWanted) {
  Lineage lineage;
  TaskId task = TaskId::FromRandom();
  lineage.Keep(Spec(task, 2), /*retries_left=*/3, false, /*stored_returns=*/2);
  EXPECT_EQ(lineage.size(), 1u);
  EXPECT_GT(lineage.bytes(), 1000u);  // the spec with its inlined argument
  lineage.Forget(ObjectId::ForTaskReturn(task, 1));
  EXPECT_EQ(lineage.size(), 1u) << "its second result still needs it";
  lineage.Forget(ObjectId::ForTaskReturn(task, 2));
  EXPECT_EQ(lineage.size(), 0u);
  EXPECT_EQ(lineage.bytes(), 0u);
  // Nothing stored: nothing kept.
  lineage.Keep(Spec(task, 1), 3, false, 0);
  EXPECT_EQ(lineage.size(), 0u);
}

TEST(LineageTest, ARebuildSpendsARetryAndRunsOnceHoweverManyAsk) {
  Lineage lineage;
  TaskId task = TaskId::FromRandom();
  ObjectId result = ObjectId::ForTaskReturn(task, 1);
  lineage.Keep(Spec(task, 1), /*retries_left=*/1, true, 1);
  auto attempt = lineage.TakeForRebuild(result);
  ASSERT_TRUE(attempt.ok()) << attempt.status();
  EXPECT_EQ(attempt->spec.attempt(), 1);
  EXPECT_EQ(attempt->retries_left, 0);
  EXPECT_TRUE(attempt->retry_exceptions);
  EXPECT_TRUE(absl::IsAlreadyExists(lineage.TakeForRebuild(result).status()));
  // The rebuilt task finishes: kept again, with no retries left.
  lineage.Keep(attempt->spec, attempt->retries_left, true, 1);
  auto spent = lineage.TakeForRebuild(result);
  EXPECT_EQ(spent.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(spent.status().message().find("no retries left"), std::string::npos)
      << spent.status();
  // Unlimited retries (-1) stay unlimited.
  TaskId forever = TaskId::FromRandom();
  lineage.Keep(Spec(forever, 1), -1, false, 1);
  auto again = lineage.TakeForRebuild(ObjectId::ForTaskReturn(forever, 1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->retries_left, -1);
  // Abandoned before it started: the retry is not spent, and it may be taken again.
  lineage.Abandon(forever);
  EXPECT_TRUE(lineage.TakeForRebuild(ObjectId::ForTaskReturn(forever, 1)).ok());
}

TEST(LineageTest, PutObjectsAndForgottenTasksCannotBeRebuilt) {
  Lineage lineage;
  auto put = lineage.TakeForRebuild(ObjectId::ForPut(TaskId::FromRandom(), 1));
  EXPECT_NE(put.status().message().find("made by Put"), std::string::npos) << put.status();
  auto unknown = lineage.TakeForRebuild(ObjectId::ForTaskReturn(TaskId::FromRandom(), 1));
  EXPECT_NE(unknown.status().message().find("not kept"), std::string::npos)
      << unknown.status();
}

}  // namespace
}  // namespace lumen::core
