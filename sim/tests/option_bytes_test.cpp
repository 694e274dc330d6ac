// Write protection of the loader: the option-byte value type, EnsureWriteProtected, the
// emulated STM32F4 option bytes, and what the app's flash driver can no longer do afterwards.
#include "sim/option_bytes.hpp"

#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "ota/option_bytes.hpp"
#include "ota/profile.hpp"
#include "sim/board_flash.hpp"

namespace ota::sim {
namespace {

ConstByteSpan View(const std::vector<uint8_t>& bytes) {
  return ConstByteSpan(bytes.data(), bytes.size());
}

uint32_t LoaderMask(const BoardProfile& profile) {
  const Result<uint32_t> mask = LoaderSectorMask(profile);
  EXPECT_TRUE(mask.ok()) << mask.status().name();
  return mask.ok() ? *mask : 0;
}

// A board whose loader partition holds a recognisable pattern, as a programmer leaves it.
struct Board {
  explicit Board(const BoardProfile& p) : profile(p), flash(p) {
    const Partition& loader = profile.partition(PartitionId::kLoader);
    for (uint32_t i = 0; i < loader.size; ++i)
      flash.internal.raw()[loader.offset + i] = static_cast<uint8_t>(i * 7 + 3);
    // Leave the loader's last word erased, so a refused program there is not kNotErased.
    for (uint32_t i = loader.size - 4; i < loader.size; ++i)
      flash.internal.raw()[loader.offset + i] = 0xFF;
  }
  std::vector<uint8_t> LoaderBytes() const {
    const Partition& loader = profile.partition(PartitionId::kLoader);
    return std::vector<uint8_t>(flash.internal.raw().begin() + loader.offset,
                                flash.internal.raw().begin() + loader.offset + loader.size);
  }
  const BoardProfile& profile;
  BoardFlash flash;
};

// --- The value type and the sector mask ---------------------------------------------------

TEST(UserOptionBytesTest, Default_IsTheFactoryValue) {
  const UserOptionBytes factory;
  EXPECT_EQ(factory.word(), 0x0FFFAAECu);
  EXPECT_EQ(factory.rdp(), kRdpLevel0);
  EXPECT_EQ(factory.rdp_level(), RdpLevel::kLevel0);
  EXPECT_EQ(factory.nwrp(), kWrpSectorsAll);
  EXPECT_FALSE(factory.pcrop_mode());
  EXPECT_EQ(factory.ProtectedSectors(), 0u);
  EXPECT_EQ(UserOptionBytes::FromWord(0xFFFFFFFFu).word(), UserOptionBytes::kErasedWord);
}

TEST(UserOptionBytesTest, RdpLevel_FollowsRm0090) {
  const UserOptionBytes v;
  EXPECT_EQ(v.WithRdp(0xAA).rdp_level(), RdpLevel::kLevel0);
  EXPECT_EQ(v.WithRdp(0xCC).rdp_level(), RdpLevel::kLevel2);
  EXPECT_EQ(v.WithRdp(0xBB).rdp_level(), RdpLevel::kLevel1);
  EXPECT_EQ(v.WithRdp(0xFF).rdp_level(), RdpLevel::kLevel1);  // an erased RDP byte
  EXPECT_EQ(UserOptionBytes::FromWord(UserOptionBytes::kErasedWord).rdp_level(), RdpLevel::kLevel1);
}

TEST(UserOptionBytesTest, WithWriteProtected_ClearsOnlyThoseNwrpBits) {
  const UserOptionBytes v = UserOptionBytes().WithRdp(0xBB).WithUser(UserOptionBytes::kNRstStop);
  const UserOptionBytes p = v.WithWriteProtected(0x3);
  EXPECT_EQ(p.nwrp(), 0xFFCu);
  EXPECT_EQ(p.rdp(), 0xBB);
  EXPECT_EQ(p.user(), v.user());
  EXPECT_TRUE(p.WriteProtected(0x3));
  EXPECT_FALSE(p.WriteProtected(0x7));
  EXPECT_EQ(p.ProtectedSectors(), 0x3u);
}

TEST(UserOptionBytesTest, PcropMode_NwrpBitsSetAreProtectedSectorsButNotWriteProtection) {
  const UserOptionBytes v =
      UserOptionBytes::FromWord(UserOptionBytes::kFactoryWord | UserOptionBytes::kSprmod);
  EXPECT_TRUE(v.pcrop_mode());
  EXPECT_EQ(v.ProtectedSectors(), kWrpSectorsAll);
  EXPECT_FALSE(v.WithWriteProtected(0x3).WriteProtected(0x3));
}

TEST(UserOptionBytesTest, RdpSurvivesTear_RefusesLevel1ValuesInsideAaOrCc) {
  EXPECT_TRUE(RdpSurvivesTear(0xAA));
  EXPECT_TRUE(RdpSurvivesTear(0xBB));
  EXPECT_TRUE(RdpSurvivesTear(0xFF));
  EXPECT_TRUE(RdpSurvivesTear(0xCC));
  EXPECT_FALSE(RdpSurvivesTear(0x00));  // erased bits could come back as 0xAA or 0xCC
  EXPECT_FALSE(RdpSurvivesTear(0x88));
  EXPECT_FALSE(RdpSurvivesTear(0x44));  // -> 0xCC
  EXPECT_FALSE(RdpSurvivesTear(0x22));  // -> 0xAA
}

TEST(SectorMaskTest, LoaderPartitions_AreSectorsZeroAndOne) {
  // The loader's code only: sectors 2-3 hold its trust record, which it writes at run time.
  EXPECT_EQ(LoaderMask(kStm32f429Fire), 0x3u);
  EXPECT_EQ(LoaderMask(kSimSmall), 0x3u);
  const Result<uint32_t> running =
      SectorMask(kStm32f429Fire.internal, kStm32f429Fire.partition(PartitionId::kRunning));
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(*running, 0x1E0u);  // sectors 5-8
}

TEST(SectorMaskTest, LargerLoader_FollowsThePartition) {
  // A loader spread over sectors 0-4 (128 KB) would get all five protected.
  const Partition loader{PartitionId::kLoader, FlashId::kInternal, 0, 128 * 1024};
  const Result<uint32_t> mask = SectorMask(kStm32f429Fire.internal, loader);
  ASSERT_TRUE(mask.ok());
  EXPECT_EQ(*mask, 0x1Fu);
}

TEST(SectorMaskTest, BadPartitions_AreRefused) {
  const FlashGeometry& g = kStm32f429Fire.internal;
  EXPECT_EQ(SectorMask(g, {PartitionId::kLoader, FlashId::kInternal, 0, 20 * 1024}).status(),
            StatusCode::kMisaligned);
  EXPECT_EQ(SectorMask(g, {PartitionId::kLoader, FlashId::kInternal, 0, 0}).status(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SectorMask(g, {PartitionId::kLoader, FlashId::kInternal, 0xE0000, 0x40000}).status(),
            StatusCode::kOutOfRange);
}

// --- The app's flash driver after EnsureWriteProtected ------------------------------------

class WriteProtectTest : public ::testing::TestWithParam<const BoardProfile*> {};

TEST_P(WriteProtectTest, AppFlash_AfterEnsureWriteProtected_CannotEraseOrProgramLoader) {
  Board board(*GetParam());
  const Partition& loader = board.profile.partition(PartitionId::kLoader);
  const Partition& running = board.profile.partition(PartitionId::kRunning);
  const std::vector<uint8_t> before = board.LoaderBytes();

  const Result<WriteProtectResult> r =
      EnsureWriteProtected(board.flash.option_bytes, LoaderMask(board.profile));
  ASSERT_TRUE(r.ok()) << r.status().name();
  EXPECT_EQ(*r, WriteProtectResult::kProtected);

  // The same ota::Flash the app is given for the internal flash.
  Flash& app = board.flash.flash(FlashId::kInternal);
  board.flash.ResetCounters();
  const uint64_t ops = board.flash.power.total_ops();
  const uint32_t first = board.profile.internal.SectorAt(loader.offset)->size;
  EXPECT_EQ(app.Erase(loader.offset, first), StatusCode::kWriteProtected);
  EXPECT_EQ(app.Erase(loader.offset, loader.size), StatusCode::kWriteProtected);
  const std::vector<uint8_t> zeros(4, 0x00);
  EXPECT_EQ(app.Program(loader.offset + loader.size - 4, View(zeros)), StatusCode::kWriteProtected);
  // A call that reaches into the loader from the sector after it is refused whole.
  const SectorInfo last = *board.profile.internal.SectorAt(loader.offset + loader.size - 1);
  EXPECT_EQ(
      app.Erase(last.offset,
                last.size + board.profile.internal.SectorAt(loader.offset + loader.size)->size),
      StatusCode::kWriteProtected);
  EXPECT_EQ(board.LoaderBytes(), before);
  EXPECT_EQ(board.flash.counters().erase_ops, 0u);
  EXPECT_EQ(board.flash.counters().program_ops, 0u);
  EXPECT_EQ(board.flash.power.total_ops(), ops) << "a refused call is not a flash operation";

  // The running slot is still the app's to write.
  const uint32_t slot_sector = board.profile.internal.SectorAt(running.offset)->size;
  ASSERT_TRUE(app.Erase(running.offset, slot_sector).ok());
  const std::vector<uint8_t> data(256, 0x5A);
  ASSERT_TRUE(app.Program(running.offset, View(data)).ok());
  EXPECT_EQ(board.flash.internal.raw()[running.offset], 0x5A);
}

TEST_P(WriteProtectTest, AppFlash_WithoutWriteProtection_CanEraseLoader) {
  // The control: the factory option bytes protect nothing.
  Board board(*GetParam());
  const Partition& loader = board.profile.partition(PartitionId::kLoader);
  const uint32_t first = board.profile.internal.SectorAt(loader.offset)->size;
  EXPECT_TRUE(board.flash.flash(FlashId::kInternal).Erase(loader.offset, first).ok());
}

TEST_P(WriteProtectTest, EnsureWriteProtected_SecondCall_WritesNothing) {
  Board board(*GetParam());
  const uint32_t mask = LoaderMask(board.profile);
  ASSERT_EQ(*EnsureWriteProtected(board.flash.option_bytes, mask), WriteProtectResult::kProtected);
  EXPECT_EQ(board.flash.option_bytes.program_ops(), 1u);
  const uint64_t ops = board.flash.power.total_ops();
  const UserOptionBytes after_first = board.flash.option_bytes.value();

  const Result<WriteProtectResult> again = EnsureWriteProtected(board.flash.option_bytes, mask);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, WriteProtectResult::kAlreadyProtected);
  EXPECT_EQ(board.flash.option_bytes.program_ops(), 1u);
  EXPECT_EQ(board.flash.power.total_ops(), ops);
  EXPECT_EQ(board.flash.option_bytes.value(), after_first);
}

INSTANTIATE_TEST_SUITE_P(Profiles, WriteProtectTest, ::testing::Values(&kStm32f429Fire, &kSimSmall),
                         [](const auto& param_info) {
                           return param_info.param == &kSimSmall ? std::string("SimSmall")
                                                                 : std::string("Fire");
                         });

// --- RDP and the user bits are never changed ----------------------------------------------

TEST(EnsureWriteProtectedTest, Level1_KeepsRdpUserBitsAndOtherSectors) {
  Board board(kStm32f429Fire);
  const UserOptionBytes start = UserOptionBytes()
                                    .WithRdp(0xBB)
                                    .WithUser(UserOptionBytes::kNRstStdby | UserOptionBytes::kBfb2)
                                    .WithWriteProtected(1u << 11);
  board.flash.option_bytes.set(start);
  const std::vector<uint8_t> loader = board.LoaderBytes();

  ASSERT_EQ(*EnsureWriteProtected(board.flash.option_bytes, 0x1F), WriteProtectResult::kProtected);
  const UserOptionBytes end = board.flash.option_bytes.value();
  EXPECT_EQ(end.rdp(), 0xBB);
  EXPECT_EQ(end.user(), start.user());
  EXPECT_EQ(end.nwrp(), start.nwrp() & ~0x1Fu);
  EXPECT_EQ(end, start.WithWriteProtected(0x1F));
  EXPECT_EQ(board.LoaderBytes(), loader) << "no mass erase";
}

TEST(EnsureWriteProtectedTest, Level0_StaysLevel0) {
  Board board(kStm32f429Fire);
  ASSERT_EQ(*EnsureWriteProtected(board.flash.option_bytes, 0x1F), WriteProtectResult::kProtected);
  EXPECT_EQ(board.flash.option_bytes.value().rdp(), kRdpLevel0);
  EXPECT_EQ(board.flash.option_bytes.value().user(), UserOptionBytes().user());
}

TEST(EnsureWriteProtectedTest, Level2_RefusesWithoutProgramming) {
  Board board(kStm32f429Fire);
  const UserOptionBytes start = UserOptionBytes().WithRdp(kRdpLevel2);
  board.flash.option_bytes.set(start);
  const Result<WriteProtectResult> r = EnsureWriteProtected(board.flash.option_bytes, 0x1F);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, WriteProtectResult::kFrozen);
  EXPECT_FALSE(IsWriteProtected(*r));
  EXPECT_EQ(board.flash.option_bytes.program_ops(), 0u);
  EXPECT_EQ(board.flash.option_bytes.refused_ops(), 0u) << "not even attempted";
  EXPECT_EQ(board.flash.option_bytes.value(), start);
}

TEST(EnsureWriteProtectedTest, Level2AlreadyProtected_IsAlreadyProtected) {
  Board board(kStm32f429Fire);
  board.flash.option_bytes.set(UserOptionBytes().WithRdp(kRdpLevel2).WithWriteProtected(0x1F));
  EXPECT_EQ(*EnsureWriteProtected(board.flash.option_bytes, 0x1F),
            WriteProtectResult::kAlreadyProtected);
}

TEST(EnsureWriteProtectedTest, PcropModeOrUnsafeRdp_RefusesWithoutProgramming) {
  Board board(kStm32f429Fire);
  const UserOptionBytes pcrop =
      UserOptionBytes().WithRdp(0xBB).WithUser(UserOptionBytes().user() | UserOptionBytes::kSprmod);
  board.flash.option_bytes.set(pcrop);
  EXPECT_EQ(*EnsureWriteProtected(board.flash.option_bytes, 0x1F), WriteProtectResult::kPcropMode);
  board.flash.option_bytes.set(UserOptionBytes().WithRdp(0x44));
  EXPECT_EQ(*EnsureWriteProtected(board.flash.option_bytes, 0x1F), WriteProtectResult::kUnsafeRdp);
  EXPECT_EQ(board.flash.option_bytes.program_ops(), 0u);
}

TEST(EnsureWriteProtectedTest, BadMask_IsInvalidArgument) {
  Board board(kStm32f429Fire);
  EXPECT_EQ(EnsureWriteProtected(board.flash.option_bytes, 0).status(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EnsureWriteProtected(board.flash.option_bytes, 1u << 12).status(),
            StatusCode::kInvalidArgument);
}

// An OptionBytes that programs something else than asked (sector 0's nWRP bit stuck at 1).
class StuckOptionBytes final : public OptionBytes {
 public:
  Result<UserOptionBytes> Read() override { return value_; }
  Status Program(const UserOptionBytes& value) override {
    value_ = UserOptionBytes::FromWord(value.word() | (1u << UserOptionBytes::kNwrpShift));
    return Status::Ok();
  }

 private:
  UserOptionBytes value_;
};

TEST(EnsureWriteProtectedTest, ReadBackDiffers_IsVerifyFailed) {
  StuckOptionBytes stuck;
  EXPECT_EQ(EnsureWriteProtected(stuck, 0x3).status(), StatusCode::kVerifyFailed);
}

// --- The emulation --------------------------------------------------------------------------

TEST(EmulatedOptionBytesTest, Program_IsOneOperationOfTheSupply) {
  BoardFlash board(kSimSmall);
  board.power.Arm(FaultPlan{});
  ASSERT_TRUE(board.option_bytes.Program(UserOptionBytes().WithWriteProtected(0x1)).ok());
  EXPECT_EQ(board.power.ops_since_arm(), 1u);
  EXPECT_EQ(board.option_bytes.program_ops(), 1u);
}

TEST(EmulatedOptionBytesTest, Program_Cut_ChangesNothing) {
  BoardFlash board(kSimSmall);
  board.power.Arm(FaultPlan{.cut_before = 1, .tear = 0, .seed = 0});
  EXPECT_EQ(board.option_bytes.Program(UserOptionBytes().WithWriteProtected(0x1F)),
            StatusCode::kPowerLost);
  EXPECT_EQ(board.option_bytes.value(), UserOptionBytes());
  EXPECT_EQ(board.option_bytes.Read().status(), StatusCode::kPowerLost);
  board.power.PowerOn();
  EXPECT_EQ(*board.option_bytes.Read(), UserOptionBytes());
}

TEST(EmulatedOptionBytesTest, Program_Torn_LeavesErasedOrPartlyProgrammedBitsAndReplays) {
  const UserOptionBytes before = UserOptionBytes().WithRdp(0xBB);
  const UserOptionBytes after = before.WithWriteProtected(0x1F);
  bool erase_phase = false;
  bool program_phase = false;
  for (uint64_t seed = 1; seed <= 64; ++seed) {
    UserOptionBytes torn[2];
    for (UserOptionBytes& t : torn) {
      BoardFlash board(kSimSmall);
      board.option_bytes.set(before);
      board.power.Arm(FaultPlan{.cut_before = 0, .tear = 1, .seed = seed});
      EXPECT_EQ(board.option_bytes.Program(after), StatusCode::kPowerLost);
      t = board.option_bytes.value();
    }
    EXPECT_EQ(torn[0], torn[1]) << "seed " << seed << " does not replay";
    const uint32_t w = torn[0].word();
    // Each bit is old, erased or new: never 0 where both old and new are 1.
    const uint32_t ones = before.word() & after.word();
    EXPECT_EQ(w & ones, ones) << std::hex << w;
    if ((w & before.word()) == before.word()) erase_phase = true;
    if ((w & after.word()) == after.word()) program_phase = true;
    EXPECT_NE(torn[0].rdp_level(), RdpLevel::kLevel2);
  }
  EXPECT_TRUE(erase_phase);
  EXPECT_TRUE(program_phase);
}

TEST(EmulatedOptionBytesTest, Torn_ProgramPhase_IsErasedWithSomeNewZeros) {
  const UserOptionBytes after = UserOptionBytes().WithWriteProtected(0x1F);
  // No new zero bit programmed yet: the erased sector.
  const UserOptionBytes none = EmulatedOptionBytes::Torn(UserOptionBytes(), after, 1, ~0ull);
  EXPECT_EQ(none.word(), UserOptionBytes::kErasedWord);
  EXPECT_EQ(none.rdp_level(), RdpLevel::kLevel1);  // "the default level after option erase"
  EXPECT_TRUE(none.pcrop_mode());
  // Every new zero bit programmed: the new value.
  EXPECT_EQ(EmulatedOptionBytes::Torn(UserOptionBytes(), after, 1, 0), after);
  // Erase phase: the old value with some bits erased.
  EXPECT_EQ(EmulatedOptionBytes::Torn(UserOptionBytes(), after, 0, 0), UserOptionBytes());
  EXPECT_EQ(EmulatedOptionBytes::Torn(UserOptionBytes(), after, 0, 1u << 31).word(),
            UserOptionBytes::kFactoryWord | UserOptionBytes::kSprmod);
}

TEST(EmulatedOptionBytesTest, ProtectionTakesEffectWhenTheProgramCompletes) {
  BoardFlash board(kSimSmall);
  Flash& internal = board.flash(FlashId::kInternal);
  ASSERT_TRUE(board.option_bytes.Program(UserOptionBytes().WithWriteProtected(1u << 6)).ok());
  const SectorInfo s6 = *kSimSmall.internal.SectorByIndex(6);
  const SectorInfo s7 = *kSimSmall.internal.SectorByIndex(7);
  EXPECT_EQ(internal.Erase(s6.offset, s6.size), StatusCode::kWriteProtected);
  EXPECT_TRUE(internal.Erase(s7.offset, s7.size).ok());
  // The external flash has no option bytes.
  EXPECT_TRUE(board.flash(FlashId::kExternal).Erase(0, 4096).ok());
}

TEST(EmulatedOptionBytesTest, Level2_RefusesEveryProgram) {
  BoardFlash board(kSimSmall);
  board.option_bytes.set(UserOptionBytes().WithRdp(kRdpLevel2));
  board.power.Arm(FaultPlan{});
  EXPECT_EQ(board.option_bytes.Program(UserOptionBytes().WithRdp(kRdpLevel2).WithWriteProtected(1)),
            StatusCode::kWriteProtected);
  EXPECT_EQ(board.option_bytes.refused_ops(), 1u);
  EXPECT_EQ(board.power.ops_since_arm(), 0u);
  EXPECT_EQ(board.option_bytes.value().nwrp(), kWrpSectorsAll);
}

TEST(EmulatedOptionBytesTest, PcropMode_RefusesReleasingSectorsShortOfLevel0) {
  BoardFlash board(kSimSmall);
  const UserOptionBytes pcrop = UserOptionBytes::FromWord(
      UserOptionBytes().WithRdp(0xBB).WithWriteProtected(0xFFE).word() | UserOptionBytes::kSprmod);
  board.option_bytes.set(pcrop);  // only sector 0 is PCROP
  EXPECT_EQ(board.flash(FlashId::kInternal).Erase(0, 1024), StatusCode::kWriteProtected);
  EXPECT_EQ(board.option_bytes.Program(pcrop.WithWriteProtected(0x1)), StatusCode::kWriteProtected);
  EXPECT_EQ(board.option_bytes.Program(pcrop.WithUser(UserOptionBytes().user())),
            StatusCode::kWriteProtected);  // SPRMOD cleared
  EXPECT_EQ(board.option_bytes.value(), pcrop);
}

TEST(EmulatedOptionBytesTest, RdpLevel1To0_MassErasesTheInternalFlash) {
  // Why EnsureWriteProtected never writes RDP: 0xAA at level 1 wipes the loader.
  Board board(kSimSmall);
  board.flash.option_bytes.set(UserOptionBytes().WithRdp(0xBB));
  ASSERT_TRUE(board.flash.option_bytes.Program(UserOptionBytes().WithRdp(kRdpLevel0)).ok());
  EXPECT_EQ(board.LoaderBytes(),
            std::vector<uint8_t>(kSimSmall.partition(PartitionId::kLoader).size, 0xFF));
}

}  // namespace
}  // namespace ota::sim
