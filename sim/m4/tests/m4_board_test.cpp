// The real loader.bin and appv1.bin (make firmware) on the emulated FIRE board: a cold boot
// from the factory layout runs the loader's first boot and its jump into the app, which
// prints its banner on USART1.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "board_image.hpp"
#include "ota/profile.hpp"
#include "sim/m4/board.hpp"
#include "sim/m4/memory_map.hpp"

namespace ota::sim::m4 {
namespace {

using testing::FlashFactoryImages;
using testing::LoadImage;
using testing::RunningSlotAddress;

void ExpectNoViolations(const M4Board& board) {
  EXPECT_TRUE(board.Violations().empty()) << ::testing::PrintToString(board.Violations());
}

TEST(M4Board, ColdBoot_LoaderJumpsToAppv1_AppPrintsBanner) {
  const std::vector<uint8_t> loader = LoadImage("loader.bin");
  const std::vector<uint8_t> app = LoadImage("appv1.bin");
  ASSERT_FALSE(loader.empty());
  ASSERT_FALSE(app.empty());
  BoardFlash flash(kStm32f429Fire);
  FlashFactoryImages(flash, loader, app);
  M4Board board(flash);
  board.PowerOn();
  const uint32_t slot = RunningSlotAddress();
  board.WatchEntry(slot, slot + kStm32f429Fire.partition(PartitionId::kRunning).size);

  const std::string banner = "app: version FOTAV1";
  const RunResult result =
      board.Run([&] { return board.console().find(banner) != std::string::npos; });
  ASSERT_EQ(result.reason, StopReason::kCondition)
      << StopReasonName(result.reason) << ": " << result.error << "\nconsole:\n"
      << board.console();

  // The loader's own account of the boot, then the jump: VTOR at the app, the core entered
  // the app at its reset handler on its initial stack (both from its vector table).
  EXPECT_NE(board.console().find("loader: stm32f429-fire"), std::string::npos);
  EXPECT_NE(board.console().find("loader: booting FOTAV1 at 0x08020000"), std::string::npos)
      << board.console();
  EXPECT_EQ(board.vtor(), slot);
  ASSERT_TRUE(board.entry().hit);
  EXPECT_EQ(board.entry().pc, testing::Le32(app, 4) & ~1u);
  EXPECT_EQ(board.entry().sp, testing::Le32(app, 0));
  EXPECT_EQ(board.resets().size(), 1u) << "no reset on the way: the watchdog was kept happy";
  EXPECT_TRUE(board.iwdg().running()) << "the loader started the watchdog before the jump";
  ExpectNoViolations(board);

  const double emulated_ms = static_cast<double>(board.now_ns()) / 1e6;
  const double mips = static_cast<double>(board.instructions()) / board.host_seconds() / 1e6;
  std::printf(
      "m4-board: cold boot loader -> FOTAV1 ok instructions=%llu emulated_ms=%.1f "
      "mips=%.1f\n",
      static_cast<unsigned long long>(board.instructions()), emulated_ms, mips);
  std::printf("m4-board: jump after %llu instructions; console:\n%s\n",
              static_cast<unsigned long long>(board.entry().instructions), board.console().c_str());
}

// Nothing in the running slot: the loader says so five times a second apart (DelayMs on
// SysTick, the core asleep in WFI in between) and resets through AIRCR.SYSRESETREQ, without
// refreshing the watchdog (docs/firmware.md "Watchdog": halts reset).
TEST(M4Board, BlankRunningSlot_LoaderHaltsFiveSecondsThenResets) {
  const std::vector<uint8_t> loader = LoadImage("loader.bin");
  ASSERT_FALSE(loader.empty());
  BoardFlash flash(kStm32f429Fire);
  FlashFactoryImages(flash, loader, {});
  M4Board board(flash);
  board.PowerOn();
  RunLimits limits;
  limits.stop_on_reset = true;
  const RunResult result = board.Run([] { return false; }, limits);
  ASSERT_EQ(result.reason, StopReason::kReset)
      << StopReasonName(result.reason) << ": " << result.error << "\n"
      << board.console();
  ASSERT_EQ(board.resets().size(), 2u);
  EXPECT_EQ(board.resets()[1].cause, ResetCause::kSoftware);
  size_t reports = 0;
  for (size_t at = board.console().find("loader: nothing to boot: running slot");
       at != std::string::npos;
       at = board.console().find("loader: nothing to boot: running slot", at + 1)) {
    ++reports;
  }
  EXPECT_EQ(reports, 5u) << board.console();
  EXPECT_NE(board.console().find("loader: resetting"), std::string::npos);
  // Five one-second delays: the emulated clock ran on SysTick through the WFIs.
  EXPECT_GE(board.resets()[1].ns, 5'000'000'000ull);
  EXPECT_LT(board.resets()[1].ns, 7'000'000'000ull);
  ExpectNoViolations(board);
  std::printf("m4-board: blank slot: halt then reset after emulated_ms=%.1f instructions=%llu\n",
              static_cast<double>(board.resets()[1].ns) / 1e6,
              static_cast<unsigned long long>(board.resets()[1].instructions));
}

// A few hand-assembled Thumb instructions at 0x08000008 after a vector table (SP at the top of
// SRAM1, reset handler there): what the board says when code touches what it does not model.
RunResult RunSnippet(BoardFlash& flash, std::initializer_list<uint16_t> code, M4Board& board) {
  auto& raw = flash.internal.raw();
  const uint32_t vectors[2] = {0x2001C000, kFlashBase + 8 + 1};
  std::memcpy(raw.data(), vectors, sizeof(vectors));
  size_t at = 8;
  for (const uint16_t halfword : code) {
    raw[at++] = static_cast<uint8_t>(halfword);
    raw[at++] = static_cast<uint8_t>(halfword >> 8);
  }
  board.PowerOn();
  RunLimits limits;
  limits.max_instructions = 1000;
  return board.Run([] { return false; }, limits);
}

TEST(M4Board, UnmappedStore_StopsWithAddressSizeValueAndBlockPc) {
  BoardFlash flash(kStm32f429Fire);
  M4Board board(flash);
  // movs r0, #0x50; lsls r0, r0, #24 (0x50000000: USB OTG FS, not modelled); movs r1, #42;
  // str r1, [r0]; b .
  const RunResult result = RunSnippet(flash, {0x2050, 0x0600, 0x212A, 0x6001, 0xE7FE}, board);
  ASSERT_EQ(result.reason, StopReason::kFault);
  EXPECT_NE(result.error.find("unmapped write of 4 bytes at 0x50000000"), std::string::npos)
      << result.error;
  EXPECT_NE(result.error.find("value 0x0000002a"), std::string::npos) << result.error;
  // The PC of the block holding the store (Unicorn 2.0.1 syncs it only at block starts).
  EXPECT_NE(result.error.find("in the block at pc 0x08000008"), std::string::npos) << result.error;
}

TEST(M4Board, UnmodelledRegisterOfAModelledPeripheral_StopsWithItsName) {
  BoardFlash flash(kStm32f429Fire);
  M4Board board(flash);
  // ldr r0, [pc, #4] (RCC_BDCR, 0x40023870); ldr r1, [r0]; b .; (pad); .word 0x40023870
  const RunResult result =
      RunSnippet(flash, {0x4801, 0x6801, 0xE7FE, 0xBF00, 0x3870, 0x4002}, board);
  ASSERT_EQ(result.reason, StopReason::kFault);
  EXPECT_NE(result.error.find("unmodelled 32-bit read of RCC+0x00000070 (0x40023870)"),
            std::string::npos)
      << result.error;
  EXPECT_NE(result.error.find("in the block at pc 0x08000008"), std::string::npos) << result.error;
}

TEST(M4Board, PeripheralWithItsClockOff_StopsTheRun) {
  BoardFlash flash(kStm32f429Fire);
  M4Board board(flash);
  // ldr r0, [pc, #4] (GPIOF_MODER, 0x40021400); ldr r1, [r0]; b .; (pad); .word 0x40021400
  const RunResult result =
      RunSnippet(flash, {0x4801, 0x6801, 0xE7FE, 0xBF00, 0x1400, 0x4002}, board);
  ASSERT_EQ(result.reason, StopReason::kFault);
  EXPECT_NE(result.error.find("GPIOF read at 0x40021400 with its clock off (RCC_AHB1ENR bit 5)"),
            std::string::npos)
      << result.error;
}

// M4Board::Violations() is the one place that says whether the firmware broke a rule: it
// gathers every model's records, each line named after its model.
TEST(M4Board, Violations_GathersTheFlashInterfaceW25q128AndSpi5) {
  BoardFlash flash(kStm32f429Fire);
  M4Board board(flash);
  board.PowerOn();
  EXPECT_TRUE(board.Violations().empty());
  board.flash_interface().Write(0x10, FlashInterface::kCrPg);      // FLASH_CR while locked
  board.flash_interface().MemoryWrite(kFlashBase + 0x8000, 4, 0);  // no PG: PGSERR
  board.w25q128().Select();
  for (const uint8_t b : std::initializer_list<uint8_t>{0x20, 0x00, 0x10, 0x00})
    board.w25q128().Transfer(b);
  board.w25q128().Deselect();      // an erase without write enable
  board.spi5().Write(0x0C, 0x05);  // DR with SPE clear
  const std::vector<std::string> v = board.Violations();
  ASSERT_EQ(v.size(), 4u) << ::testing::PrintToString(v);
  EXPECT_EQ(v[0].rfind("FLASH: FLASH_CR written", 0), 0u) << v[0];
  EXPECT_EQ(v[1].rfind("FLASH: ", 0), 0u) << v[1];
  EXPECT_NE(v[1].find("PGSERR"), std::string::npos) << v[1];
  EXPECT_EQ(v[2].rfind("W25Q128: 0x20: erase without write enable", 0), 0u) << v[2];
  EXPECT_EQ(v[3].rfind("SPI5: SPI5 DR written with SPE clear", 0), 0u) << v[3];
}

}  // namespace
}  // namespace ota::sim::m4
