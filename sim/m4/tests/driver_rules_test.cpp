// The real drivers against the models' stricter settings: an error flag left set before
// they start (they must clear it first, RM0090 3.9.5), and every flash operation at its
// datasheet maximum (their timeouts must cover it). Each runs loader.bin and appv1.bin.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "board_image.hpp"
#include "ota/profile.hpp"
#include "sim/m4/board.hpp"
#include "sim/m4/memory_map.hpp"

namespace ota::sim::m4 {
namespace {

using Kind = FlashIfEvent::Kind;

bool HasEvent(M4Board& board, Kind kind) {
  for (const FlashIfEvent& e : board.flash_interface().events()) {
    if (e.kind == kind) return true;
  }
  return false;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// A stray store into flash (a wild pointer, as in ST's forum reports of "stuck" PGSERR)
// leaves PGSERR set between the option-byte program and the trust record's erase: the
// internal flash driver (stm32f4_flash.cpp, `Unlocked`) must clear the flags before its
// erase and programs, else the model records an operation started over a stale error.
TEST(DriverRules, StaleErrorFlag_InternalFlashDriverClearsItBeforeItsOperations) {
  const std::vector<uint8_t> loader = testing::LoadImage("loader.bin");
  const std::vector<uint8_t> app = testing::LoadImage("appv1.bin");
  ASSERT_FALSE(loader.empty());
  ASSERT_FALSE(app.empty());
  BoardFlash flash(kStm32f429Fire);
  testing::FlashFactoryImages(flash, loader, app);
  M4Board board(flash);
  board.PowerOn();
  RunResult result = board.Run([&] { return HasEvent(board, Kind::kOptionLock); });
  ASSERT_EQ(result.reason, StopReason::kCondition) << result.error << "\n" << board.console();
  ASSERT_FALSE(HasEvent(board, Kind::kErase)) << "the trust record is erased after";
  board.flash_interface().MemoryWrite(kFlashBase + 0x000F0000, 4, 0);  // locked: PGSERR
  ASSERT_NE(board.flash_interface().Read(0x0C) & FlashInterface::kSrPgserr, 0u);

  result =
      board.Run([&] { return board.console().find("app: version FOTAV1") != std::string::npos; });
  ASSERT_EQ(result.reason, StopReason::kCondition) << result.error << "\n" << board.console();
  EXPECT_TRUE(HasEvent(board, Kind::kErase));
  EXPECT_TRUE(HasEvent(board, Kind::kProgram));
  // The stray store's own error is the only record: the driver cleared it before it started.
  const std::vector<std::string> v = board.Violations();
  ASSERT_EQ(v.size(), 1u) << ::testing::PrintToString(v);
  EXPECT_NE(v[0].find("PGSERR"), std::string::npos) << v[0];
  EXPECT_EQ(board.flash_interface().Read(0x0C) & 0x1F2u, 0u) << "no error flag left set";
}

// Every flash operation at its datasheet maximum (M4Board::set_flash_timing): the cold boot
// (option bytes, the trust record's 16 KB erase and word programs), the shell's `provision`
// (a W25Q128 4 KB erase and page programs), `reboot` and `settings` still succeed, so the
// drivers' timeouts (stm32f4_flash.cpp, stm32f4_option_bytes.cpp, w25q128.cpp) cover the
// maximums. No fast waiting: the drivers poll for the whole time, as on the part.
TEST(DriverRules, WorstCaseFlashTimings_ColdBootProvisionRebootStillSucceed) {
  const std::vector<uint8_t> loader = testing::LoadImage("loader.bin");
  const std::vector<uint8_t> app = testing::LoadImage("appv1.bin");
  ASSERT_FALSE(loader.empty());
  ASSERT_FALSE(app.empty());
  BoardFlash flash(kStm32f429Fire);
  testing::FlashFactoryImages(flash, loader, app);
  M4Board board(flash);
  board.set_flash_timing(FlashTimingCase::kMaximum);
  board.PowerOn();
  const auto console_has = [&](const std::string& text, size_t count = 1) {
    return [&board, text, count] { return Count(board.console(), text) >= count; };
  };
  const auto run = [&](const std::function<bool()>& until, const char* what) {
    const RunResult r = board.Run(until);
    ASSERT_EQ(r.reason, StopReason::kCondition)
        << what << ": " << StopReasonName(r.reason) << " " << r.error << "\n"
        << board.console();
  };
  run(console_has("use `provision`, then `reboot`\r\n> "), "cold boot");
  const uint64_t boot_ns = board.now_ns();
  board.ConsoleReceive("provision m4-board-1 s3cret-value broker.example 8883\r");
  run(console_has("saved; reboot to use them"), "provision");
  board.ConsoleReceive("reboot\r");
  run(console_has("app: version FOTAV1", 2), "reboot");
  run(console_has("> ", 4), "prompt");
  board.ConsoleReceive("settings\r");
  run(console_has("broker broker.example:8883"), "settings");

  // The maximums were in force: the option-byte program and the trust sector's erase take
  // 500 ms each at most (twice the typical 250 ms), the words 100 us each.
  EXPECT_GE(boot_ns, 1'000'000'000ull) << "the cold boot waited for the maximum times";
  EXPECT_EQ(board.console().find("failed"), std::string::npos) << board.console();
  EXPECT_EQ(board.console().find("error"), std::string::npos) << board.console();
  EXPECT_EQ(board.resets().size(), 2u) << "power-on and the reboot only: no watchdog reset";
  EXPECT_TRUE(board.Violations().empty()) << ::testing::PrintToString(board.Violations());
  std::printf(
      "m4-board: worst-case flash timings: cold boot emulated_ms=%.1f, whole run "
      "emulated_ms=%.1f instructions=%llu\n",
      static_cast<double>(boot_ns) / 1e6, static_cast<double>(board.now_ns()) / 1e6,
      static_cast<unsigned long long>(board.instructions()));
}

}  // namespace
}  // namespace ota::sim::m4
