// The real loader.bin and appv1.bin (make firmware) on the emulated FIRE board: a cold boot
// from the factory layout runs the loader's first boot and its jump into the app, which
// prints its banner on USART1.
#include <gtest/gtest.h>

#include <cstdio>

#include "board_image.hpp"
#include "ota/profile.hpp"
#include "sim/m4/board.hpp"

namespace ota::sim::m4 {
namespace {

using testing::FlashFactoryImages;
using testing::LoadImage;
using testing::RunningSlotAddress;

void ExpectNoViolations(M4Board& board) {
  EXPECT_TRUE(board.flash_interface().Violations().empty())
      << ::testing::PrintToString(board.flash_interface().Violations());
  EXPECT_TRUE(board.w25q128().Violations().empty())
      << ::testing::PrintToString(board.w25q128().Violations());
  EXPECT_TRUE(board.spi5().violations().empty())
      << ::testing::PrintToString(board.spi5().violations());
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

}  // namespace
}  // namespace ota::sim::m4
