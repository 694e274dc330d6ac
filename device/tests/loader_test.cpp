#include "ota/loader.hpp"

#include <gtest/gtest.h>

#include "sim_board.hpp"
#include "test_images.hpp"
#include "test_installers.hpp"

namespace ota {
namespace {

using testing::CorruptingInstaller;
using testing::MakeTestImage;
using testing::SimBoard;

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_ = MakeTestImage("FOTAV1", 9000, board_.running_address(), 1);
    new_ = MakeTestImage("FOTAV2", 11000, board_.running_address(), 2);
    board_.FlashRunning(old_);
    // The factory's first power-on: the loader records the image it finds as the confirmed one.
    ASSERT_TRUE(board_.Boot().ok());
    board_.flash().ResetCounters();
  }
  SimBoard board_{kSimSmall};
  std::vector<uint8_t> old_, new_;
};

TEST_F(LoaderTest, Boot_Idle_BootsWithoutWriting) {
  const Result<BootDecision> d = board_.Boot();
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->boot_app);
  EXPECT_STREQ(d->image.header.version, "FOTAV1");
  EXPECT_EQ(board_.flash().counters().program_ops, 0u);
  EXPECT_EQ(board_.flash().counters().erase_ops, 0u);
}

TEST_F(LoaderTest, Boot_GoodPackage_InstallsAndStartsTrial) {
  ASSERT_TRUE(board_.Stage(new_, "FOTAV2").ok());
  const Result<BootDecision> d = board_.Boot();
  ASSERT_TRUE(d.ok()) << d.status().name();
  EXPECT_TRUE(d->boot_app);
  EXPECT_STREQ(d->image.header.version, "FOTAV2");
  EXPECT_TRUE(board_.RunningHolds(new_));
  EXPECT_EQ(d->record.status, UpgradeStatus::kUpgradedOk);
  EXPECT_EQ(d->record.step, UpgradeStep::kDone);
  EXPECT_EQ(d->record.backup_size, old_.size());
  EXPECT_EQ(d->record.trial_boots_left, kSimSmall.trial_boots - 1);
}

TEST_F(LoaderTest, Boot_NewImage_ErasesOnlyTheSectorsItNeeds) {
  ASSERT_TRUE(board_.Stage(new_, "FOTAV2").ok());
  ASSERT_TRUE(board_.Boot().ok());
  // 11000 bytes from 0x2000 need sectors 5 (0x2000) and 6 (0x4000) of 8 KB; not 7 or 8.
  const auto& wear = board_.flash().internal.wear();
  EXPECT_EQ(wear[5], 1u);
  EXPECT_EQ(wear[6], 1u);
  EXPECT_EQ(wear[7], 0u);
  EXPECT_EQ(wear[8], 0u);
}

TEST_F(LoaderTest, Boot_CorruptPackage_RefusedBeforeAnyErase) {
  std::vector<uint8_t> bad = new_;
  bad[3000] ^= 0x80;
  ASSERT_TRUE(board_.Stage(bad, "FOTAV2").ok());
  const std::vector<uint8_t> before = board_.RunningSlot();
  board_.flash().ResetCounters();
  const Result<BootDecision> d = board_.Boot();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->record.status, UpgradeStatus::kUpgradedFailed);
  EXPECT_EQ(d->record.reason, FailReason::kPackageInvalid);
  EXPECT_EQ(IotdaResultCode(d->record.reason), 7);
  EXPECT_EQ(board_.RunningSlot(), before);
  EXPECT_EQ(board_.flash().internal.counters().erase_ops, 0u);
  EXPECT_EQ(board_.flash().internal.counters().program_ops, 0u);
  EXPECT_STREQ(d->image.header.version, "FOTAV1");
}

TEST_F(LoaderTest, Boot_TruncatedPackage_Refused) {
  std::vector<uint8_t> cut(new_.begin(), new_.begin() + 6000);
  ASSERT_TRUE(board_.Stage(cut, "FOTAV2").ok());
  const std::vector<uint8_t> before = board_.RunningSlot();
  const Result<BootDecision> d = board_.Boot();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->record.reason, FailReason::kPackageInvalid);
  EXPECT_EQ(board_.RunningSlot(), before);
}

TEST_F(LoaderTest, Boot_ImageLargerThanSlot_RefusedWithNotEnoughStorage) {
  // The same board with a 16 KB running slot (sectors 5-6): a 20 KB image cannot fit.
  BoardProfile narrow = kSimSmall;
  narrow.partitions[static_cast<int>(PartitionId::kRunning)].size = 16 * 1024;
  SimBoard board(narrow);
  board.FlashRunning(old_);
  ASSERT_TRUE(
      board.Stage(MakeTestImage("FOTAV2", 20000, board.running_address(), 3), "FOTAV2").ok());
  const std::vector<uint8_t> before = board.RunningSlot();
  const Result<BootDecision> d = board.Boot();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->record.reason, FailReason::kTooLarge);
  EXPECT_EQ(IotdaResultCode(d->record.reason), 5);
  EXPECT_EQ(board.RunningSlot(), before);
}

TEST_F(LoaderTest, Boot_WrittenImageMismatch_RecoversOldImage) {
  ASSERT_TRUE(board_.Stage(new_, "FOTAV2").ok());
  CorruptingInstaller corrupting;
  const Result<BootDecision> d = board_.Boot(corrupting);
  ASSERT_TRUE(d.ok()) << d.status().name();
  EXPECT_EQ(d->record.status, UpgradeStatus::kUpgradedFailed);
  EXPECT_EQ(d->record.reason, FailReason::kTargetMismatch);
  EXPECT_EQ(IotdaResultCode(d->record.reason), 10);
  EXPECT_TRUE(board_.RunningHolds(old_));
  EXPECT_TRUE(d->boot_app);
  EXPECT_STREQ(d->image.header.version, "FOTAV1");
}

TEST_F(LoaderTest, Boot_NeverConfirmed_RevertsAfterTrialBoots) {
  ASSERT_TRUE(board_.Stage(new_, "FOTAV2").ok());
  for (uint32_t boot = 1; boot <= kSimSmall.trial_boots; ++boot) {
    const Result<BootDecision> d = board_.Boot();
    ASSERT_TRUE(d.ok());
    EXPECT_STREQ(d->image.header.version, "FOTAV2") << "boot " << boot;
  }
  const Result<BootDecision> d = board_.Boot();
  ASSERT_TRUE(d.ok());
  EXPECT_STREQ(d->image.header.version, "FOTAV1");
  EXPECT_EQ(d->record.status, UpgradeStatus::kUpgradedFailed);
  EXPECT_EQ(d->record.reason, FailReason::kNotConfirmed);
  EXPECT_TRUE(board_.RunningHolds(old_));
}

TEST_F(LoaderTest, Boot_Confirmed_KeepsNewImage) {
  ASSERT_TRUE(board_.Stage(new_, "FOTAV2").ok());
  ASSERT_TRUE(board_.Boot().ok());
  ASSERT_TRUE(board_.Confirm().ok());
  for (int boot = 0; boot < 6; ++boot) {
    const Result<BootDecision> d = board_.Boot();
    ASSERT_TRUE(d.ok());
    EXPECT_STREQ(d->image.header.version, "FOTAV2");
    EXPECT_EQ(d->record.status, UpgradeStatus::kUpgradedOk);
  }
}

TEST_F(LoaderTest, Boot_BlankSlot_InstallsWithoutBackup) {
  board_.FlashRunning({});
  ASSERT_TRUE(board_.Stage(new_, "FOTAV2").ok());
  const Result<BootDecision> d = board_.Boot();
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->boot_app);
  EXPECT_EQ(d->record.backup_size, 0u);
  EXPECT_TRUE(board_.RunningHolds(new_));
}

TEST_F(LoaderTest, Boot_CorruptedRunningImage_StaysInLoader) {
  std::vector<uint8_t> bad = old_;
  bad[100] ^= 0xFF;
  board_.FlashRunning(bad);
  const Result<BootDecision> d = board_.Boot();
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->boot_app);
}

}  // namespace
}  // namespace ota
