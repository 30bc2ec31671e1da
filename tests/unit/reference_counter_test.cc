#include "core_worker/reference_counter.h"

#include <gtest/gtest.h>

#include <vector>

namespace lumen::core {
namespace {

constexpr char kSelf[] = "unix:/self.sock";
constexpr char kOwner[] = "unix:/owner.sock";
constexpr char kBorrower[] = "unix:/borrower.sock";

class ReferenceCounterTest : public ::testing::Test {
 protected:
  static ObjectId NewId() { return ObjectId::ForPut(TaskId::FromRandom(), 0); }
  static google::protobuf::RepeatedPtrField<rpc::ObjectRefProto> Refs(
      const std::vector<std::pair<ObjectId, std::string>>& refs) {
    google::protobuf::RepeatedPtrField<rpc::ObjectRefProto> out;
    for (const auto& [id, owner] : refs) {
      rpc::ObjectRefProto* ref = out.Add();
      ref->set_id(id.Binary());
      ref->set_owner(owner);
    }
    return out;
  }
  std::vector<ObjectId> FreedIds() const {
    std::vector<ObjectId> ids;
    for (const auto& f : freed_) ids.push_back(f.id);
    return ids;
  }

  std::vector<ReferenceCounter::Freed> freed_;
  ReferenceCounter refs_{[this](const ReferenceCounter::Freed& f) { freed_.push_back(f); }};
  ObjectId id_ = NewId();
};

TEST_F(ReferenceCounterTest, FreesWhenLastHandleGoes) {
  refs_.AddOwned(id_);
  refs_.AddLocal(id_, "");
  refs_.RemoveLocal(id_);
  EXPECT_TRUE(freed_.empty());
  refs_.RemoveLocal(id_);
  EXPECT_EQ(FreedIds(), std::vector<ObjectId>{id_});
  EXPECT_TRUE(freed_[0].owned);
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

TEST_F(ReferenceCounterTest, BorrowedRefsRememberTheirOwner) {
  refs_.AddLocal(id_, kOwner);
  EXPECT_EQ(refs_.OwnerOf(id_), kOwner);
  EXPECT_FALSE(refs_.IsOwnedAndLive(id_));
  refs_.RemoveLocal(id_);
  ASSERT_EQ(freed_.size(), 1u);
  EXPECT_FALSE(freed_[0].owned);
  EXPECT_EQ(freed_[0].registrations, 0);  // never registered: nothing to give back
  EXPECT_EQ(refs_.NumTracked(), 0u);
}

TEST_F(ReferenceCounterTest, OwnerKeepsObjectWhileBorrowersHoldIt) {
  refs_.AddOwned(id_);
  EXPECT_TRUE(refs_.AddBorrower(id_, kBorrower));
  EXPECT_TRUE(refs_.AddBorrower(id_, kBorrower));
  refs_.RemoveLocal(id_);
  EXPECT_TRUE(freed_.empty());
  EXPECT_EQ(refs_.BorrowerCount(id_, kBorrower), 2);
  refs_.RemoveBorrower(id_, kBorrower, 1);
  EXPECT_TRUE(freed_.empty());
  refs_.RemoveBorrower(id_, kBorrower, 1);
  EXPECT_EQ(FreedIds(), std::vector<ObjectId>{id_});
}

TEST_F(ReferenceCounterTest, UnknownObjectsCannotBeBorrowed) {
  EXPECT_FALSE(refs_.AddBorrower(id_, kBorrower));
  refs_.AddLocal(id_, kOwner);  // borrowed here, not owned
  EXPECT_FALSE(refs_.AddBorrower(id_, kBorrower));
}

TEST_F(ReferenceCounterTest, DeadBorrowerReleasesEverything) {
  ObjectId other = NewId();
  refs_.AddOwned(id_);
  refs_.AddOwned(other);
  refs_.AddBorrower(id_, kBorrower);
  refs_.AddBorrower(other, kBorrower);
  refs_.AddBorrower(other, "unix:/another.sock");
  refs_.RemoveLocal(id_);
  refs_.RemoveLocal(other);
  refs_.RemoveBorrowerEverywhere(kBorrower);
  EXPECT_EQ(FreedIds(), std::vector<ObjectId>{id_});
  EXPECT_TRUE(refs_.IsOwnedAndLive(other));
}

TEST_F(ReferenceCounterTest, DeserializedBorrowIsRegisteredOnceAndGivenBack) {
  refs_.AddLocal(id_, kOwner);
  refs_.AddLocal(id_, kOwner);
  auto pending = refs_.TakeUnregistered();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, id_);
  EXPECT_EQ(pending[0].owner, kOwner);
  // While the registration is in flight the entry stays, whatever the handles do.
  refs_.RemoveLocal(id_);
  refs_.RemoveLocal(id_);
  EXPECT_TRUE(freed_.empty());
  refs_.FinishRegistration(id_, true);
  ASSERT_EQ(freed_.size(), 1u);
  EXPECT_EQ(freed_[0].owner, kOwner);
  EXPECT_EQ(freed_[0].registrations, 1);
  EXPECT_TRUE(refs_.TakeUnregistered().empty());
}

TEST_F(ReferenceCounterTest, RefsGoneBeforeRegisteringNeedNoRegistration) {
  refs_.AddLocal(id_, kOwner);
  refs_.RemoveLocal(id_);
  EXPECT_TRUE(refs_.TakeUnregistered().empty());
}

TEST_F(ReferenceCounterTest, FailedRegistrationGivesNothingBack) {
  refs_.AddLocal(id_, kOwner);
  ASSERT_EQ(refs_.TakeUnregistered().size(), 1u);
  refs_.FinishRegistration(id_, false);
  refs_.RemoveLocal(id_);
  ASSERT_EQ(freed_.size(), 1u);
  EXPECT_EQ(freed_[0].registrations, 0);
}

TEST_F(ReferenceCounterTest, ContainedRefsLiveAsLongAsTheirContainer) {
  ObjectId outer = NewId();
  ObjectId borrowed = NewId();
  refs_.AddOwned(id_);  // an object owned here, put inside `outer`
  refs_.AddOwned(outer);
  refs_.AddContained(outer, Refs({{id_, kSelf}, {borrowed, kOwner}}), kSelf,
                     /*registered=*/true);
  refs_.RemoveLocal(id_);
  EXPECT_TRUE(freed_.empty());
  EXPECT_EQ(refs_.OwnerOf(borrowed), kOwner);
  EXPECT_TRUE(refs_.TakeUnregistered().empty());  // the sender registered it already
  refs_.RemoveLocal(outer);
  ASSERT_EQ(freed_.size(), 3u);  // outer, then what only it held
  EXPECT_EQ(freed_[0].id, outer);
  for (const auto& f : freed_) {
    if (f.id == borrowed) EXPECT_EQ(f.registrations, 1);
    if (f.id == id_) EXPECT_TRUE(f.owned);
  }
  EXPECT_EQ(refs_.NumTracked(), 0u);
}

TEST_F(ReferenceCounterTest, ContainerAlreadyGoneReleasesItsRefsAtOnce) {
  ObjectId gone = NewId();
  refs_.AddContained(gone, Refs({{id_, kOwner}}), kSelf, /*registered=*/true);
  ASSERT_EQ(freed_.size(), 1u);
  EXPECT_EQ(freed_[0].id, id_);
  EXPECT_EQ(freed_[0].registrations, 1);  // given back to the owner
}

TEST_F(ReferenceCounterTest, NestedContainersFreeTransitively) {
  ObjectId a = NewId(), b = NewId(), c = NewId();
  refs_.AddOwned(a);
  refs_.AddOwned(b);
  refs_.AddOwned(c);
  refs_.AddContained(b, Refs({{c, kSelf}}), kSelf, false);
  refs_.AddContained(a, Refs({{b, kSelf}}), kSelf, false);
  refs_.RemoveLocal(c);
  refs_.RemoveLocal(b);
  EXPECT_TRUE(freed_.empty());
  refs_.RemoveLocal(a);
  EXPECT_EQ(FreedIds(), (std::vector<ObjectId>{a, b, c}));
}

TEST_F(ReferenceCounterTest, ShutdownGivesBackEveryRegistrationOnce) {
  refs_.AddLocal(id_, kOwner);
  refs_.TakeUnregistered();
  refs_.FinishRegistration(id_, true);
  auto registered = refs_.TakeAllRegistered();
  ASSERT_EQ(registered.size(), 1u);
  EXPECT_EQ(registered[0].registrations, 1);
  EXPECT_TRUE(refs_.TakeAllRegistered().empty());
  refs_.RemoveLocal(id_);
  ASSERT_EQ(freed_.size(), 1u);
  EXPECT_EQ(freed_[0].registrations, 0);
}

}  // namespace
}  // namespace lumen::core
