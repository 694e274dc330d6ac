// The board port's drivers (boards/stm32f429-fire/) checked against the datasheets while the
// real loader.bin and appv1.bin run on the emulated board: what the host suite cannot see,
// since there the flash interface is ota::sim::EmulatedFlash itself. The peripheral models
// record every operation and every rule broken; these tests assert on those records after a
// cold boot (the loader's first boot programs the trust record and the option bytes), the
// shell's `provision` (the app writes its settings to the W25Q128), `reboot` (a system reset:
// the loader's second boot) and `settings` (read back through the driver).
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>

#include "board_image.hpp"
#include "ota/option_bytes.hpp"
#include "ota/profile.hpp"
#include "sim/m4/board.hpp"

namespace ota::sim::m4 {
namespace {

using Kind = FlashIfEvent::Kind;

// One cold boot of loader.bin into appv1.bin, shared by the tests below.
class DriverDatasheet : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    loader_ = testing::LoadImage("loader.bin");
    app_ = testing::LoadImage("appv1.bin");
    flash_ = std::make_unique<BoardFlash>(kStm32f429Fire);
    testing::FlashFactoryImages(*flash_, loader_, app_);
    board_ = std::make_unique<M4Board>(*flash_);
    board_->PowerOn();
    // Cold boot to the shell, `provision` (the settings sector of the W25Q128: erase and
    // page programs), `reboot` (AIRCR: the loader's second boot), `settings` read back.
    const auto console_has = [](const std::string& text, size_t count = 1) {
      return [text, count] {
        size_t found = 0;
        for (size_t at = board_->console().find(text); at != std::string::npos;
             at = board_->console().find(text, at + 1)) {
          ++found;
        }
        return found >= count;
      };
    };
    const std::string prompt = "use `provision`, then `reboot`\r\n> ";
    result_ = board_->Run(console_has(prompt));
    if (result_.reason != StopReason::kCondition) return;
    board_->ConsoleReceive("provision m4-board-1 s3cret-value broker.example 8883\r");
    result_ = board_->Run(console_has("saved; reboot to use them"));
    if (result_.reason != StopReason::kCondition) return;
    board_->ConsoleReceive("reboot\r");
    result_ = board_->Run(console_has("app: version FOTAV1", 2));
    if (result_.reason != StopReason::kCondition) return;
    result_ = board_->Run(console_has("> ", 4));
    if (result_.reason != StopReason::kCondition) return;
    board_->ConsoleReceive("settings\r");
    result_ = board_->Run(console_has("broker broker.example:8883"));
  }
  static void TearDownTestSuite() {
    board_.reset();
    flash_.reset();
  }
  void SetUp() override {
    ASSERT_FALSE(loader_.empty());
    ASSERT_FALSE(app_.empty());
    ASSERT_EQ(result_.reason, StopReason::kCondition)
        << StopReasonName(result_.reason) << ": " << result_.error << "\n"
        << board_->console();
  }

  static std::vector<uint8_t> loader_;
  static std::vector<uint8_t> app_;
  static std::unique_ptr<BoardFlash> flash_;
  static std::unique_ptr<M4Board> board_;
  static RunResult result_;
};

std::vector<uint8_t> DriverDatasheet::loader_;
std::vector<uint8_t> DriverDatasheet::app_;
std::unique_ptr<BoardFlash> DriverDatasheet::flash_;
std::unique_ptr<M4Board> DriverDatasheet::board_;
RunResult DriverDatasheet::result_;

std::string Describe(const FlashIfEvent& e) {
  char text[160];
  std::snprintf(text, sizeof(text), "%s addr=0x%08x size=%u cr=0x%08x value=0x%08x pc=0x%08x %s",
                FlashIfEventName(e.kind), e.address, e.size, e.cr, e.value, e.pc, e.note.c_str());
  return text;
}

// RM0090 3.5.1 and 3.6.2-3.6.3: every program and erase happens with FLASH_CR unlocked by
// KEY1, KEY2, and the driver locks it again afterwards; programs are 32-bit stores with
// PSIZE x32 and PG set (the parallelism for VDD 2.7-3.6 V, table 16); erases SER with the
// sector in SNB and PSIZE x32; nothing is refused by the interface (no SR error flag).
TEST_F(DriverDatasheet, InternalFlash_UnlockProgramX32Lock) {
  const auto& events = board_->flash_interface().events();
  bool unlocked = false;
  int programs = 0;
  int erases = 0;
  int sequences = 0;
  for (const FlashIfEvent& e : events) {
    SCOPED_TRACE(Describe(e));
    switch (e.kind) {
      case Kind::kUnlock:
        EXPECT_FALSE(unlocked) << "unlocked twice without a lock in between";
        unlocked = true;
        ++sequences;
        break;
      case Kind::kLock:
        unlocked = false;
        break;
      case Kind::kProgram:
        ++programs;
        EXPECT_TRUE(unlocked);
        EXPECT_EQ(e.size, 4u) << "32-bit stores";
        EXPECT_EQ((e.cr & FlashInterface::kCrPsizeMask) >> FlashInterface::kCrPsizeShift, 2u)
            << "PSIZE x32";
        EXPECT_NE(e.cr & FlashInterface::kCrPg, 0u);
        EXPECT_EQ(e.cr & FlashInterface::kCrSer, 0u);
        break;
      case Kind::kErase:
        ++erases;
        EXPECT_TRUE(unlocked);
        EXPECT_EQ((e.cr & FlashInterface::kCrPsizeMask) >> FlashInterface::kCrPsizeShift, 2u);
        EXPECT_EQ(e.cr & FlashInterface::kCrPg, 0u);
        break;
      case Kind::kError:
      case Kind::kViolation:
        ADD_FAILURE() << "the flash interface refused or flagged this";
        break;
      default:
        break;
    }
  }
  EXPECT_FALSE(unlocked) << "FLASH_CR left unlocked";
  // The first boot records the factory image in the trust record: word programs.
  EXPECT_GT(programs, 0);
  std::printf(
      "m4-board: flash interface: %d unlock/lock sequences, %d word programs, %d sector "
      "erases\n",
      sequences, programs, erases);
}

// RM0090 3.5.4 step 4 / 3.9.4: the driver waits for BSY to clear after each operation
// before it starts the next one, changes CR or locks: the model records a violation when an
// operation starts, or CR is written, before the firmware has read SR with BSY clear.
TEST_F(DriverDatasheet, InternalFlash_WaitsForBsyAfterEveryOperation) {
  EXPECT_TRUE(board_->flash_interface().Violations().empty())
      << ::testing::PrintToString(board_->flash_interface().Violations());
}

// RM0090 3.5.2: the ART caches are reset (ICRST/DCRST) only while disabled, after every
// program or erase sequence, so no stale line is read back.
TEST_F(DriverDatasheet, InternalFlash_CachesResetWhileDisabledAfterEachSequence) {
  const auto& events = board_->flash_interface().events();
  int locks = 0;
  int resets_after_lock = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].kind != Kind::kLock) continue;
    ++locks;
    if (i + 1 < events.size() && events[i + 1].kind == Kind::kCacheReset) ++resets_after_lock;
  }
  EXPECT_GT(locks, 0);
  EXPECT_EQ(resets_after_lock, locks);
}

// RM0090 3.6.2: OPTKEY1, OPTKEY2, the new value, OPTSTRT, wait, OPTLOCK. The first boot
// write-protects the loader's sectors 0-1 and changes nothing else (docs/firmware.md).
TEST_F(DriverDatasheet, OptionBytes_UnlockProgramLoaderWrpLock) {
  const auto& events = board_->flash_interface().events();
  std::vector<Kind> sequence;
  uint32_t programmed = 0;
  for (const FlashIfEvent& e : events) {
    if (e.kind == Kind::kOptionUnlock || e.kind == Kind::kOptionProgram ||
        e.kind == Kind::kOptionLock) {
      sequence.push_back(e.kind);
    }
    if (e.kind == Kind::kOptionProgram) programmed = e.value;
  }
  const std::vector<Kind> expected = {Kind::kOptionUnlock, Kind::kOptionProgram, Kind::kOptionLock};
  EXPECT_EQ(sequence, expected);
  EXPECT_EQ(programmed, UserOptionBytes::kFactoryWord & ~(3u << UserOptionBytes::kNwrpShift));
  EXPECT_EQ(flash_->option_bytes.value().word(), programmed);
}

// W25Q128JV datasheet 8.2.13-8.2.17: Write Enable (06) before every Page Program and
// erase, each of which the chip would otherwise ignore; no command but a status read while
// BUSY (the driver polls 05 until BUSY clears); no page program past its 256-byte page.
TEST_F(DriverDatasheet, W25q128_WriteEnableBeforeEveryProgramAndErase_PagesNotCrossed) {
  const auto& commands = board_->w25q128().commands();
  std::map<uint8_t, int> counts;
  int mutating = 0;
  for (size_t i = 0; i < commands.size(); ++i) {
    const W25qCommand& c = commands[i];
    ++counts[c.opcode];
    SCOPED_TRACE(::testing::Message() << "command " << i << " opcode 0x" << std::hex
                                      << int{c.opcode} << " at 0x" << c.address);
    EXPECT_TRUE(c.executed) << c.note;
    EXPECT_TRUE(c.note.empty()) << c.note;
    const bool program = c.opcode == 0x02;
    const bool erase = c.opcode == 0x20 || c.opcode == 0x52 || c.opcode == 0xD8;
    if (!program && !erase) continue;
    ++mutating;
    EXPECT_TRUE(c.wel_before) << "no write enable before it";
    // The driver also checks WEL with a status read after 06: 06, 05, then the command.
    ASSERT_GE(i, 2u);
    EXPECT_EQ(commands[i - 2].opcode, 0x06);
    EXPECT_EQ(commands[i - 1].opcode, 0x05);
    if (program) {
      EXPECT_LE(c.address % 256 + c.data_bytes, 256u) << "crosses a page boundary";
      EXPECT_GT(c.data_bytes, 0u);
    }
    // Then it polls the status until BUSY clears: the next command is a status read, and the
    // first non-status command after it finds the chip idle.
    ASSERT_LT(i + 1, commands.size());
    EXPECT_EQ(commands[i + 1].opcode, 0x05);
    for (size_t j = i + 1; j < commands.size(); ++j) {
      if (commands[j].opcode == 0x05) continue;
      EXPECT_FALSE(commands[j].busy_before) << "command " << j << " sent while BUSY";
      break;
    }
  }
  EXPECT_GT(mutating, 0) << "`provision` writes the settings sector";
  EXPECT_GE(counts[0x9F], 2) << "JEDEC ID read by the loader and by the app";
  std::string summary;
  for (const auto& [opcode, n] : counts) {
    char part[24];
    std::snprintf(part, sizeof(part), " %02X=%d", opcode, n);
    summary += part;
  }
  std::printf("m4-board: w25q128 commands:%s; spi5 bytes=%llu\n", summary.c_str(),
              static_cast<unsigned long long>(board_->spi5().bytes()));
  EXPECT_TRUE(board_->spi5().violations().empty())
      << ::testing::PrintToString(board_->spi5().violations());
}

// Every model's rules over the whole run (M4Board::Violations(): the flash interface's
// violations and error flags, the W25Q128's, SPI5's, the USARTs' overruns).
TEST_F(DriverDatasheet, Board_NoModelRecordsABrokenRule) {
  EXPECT_TRUE(board_->Violations().empty()) << ::testing::PrintToString(board_->Violations());
}

// The reboot went through AIRCR.SYSRESETREQ (the model resets the core and peripherals, RAM
// and the flash devices keep their contents), and the settings survived it.
TEST_F(DriverDatasheet, Reboot_SystemResetThenSettingsReadBack) {
  ASSERT_EQ(board_->resets().size(), 2u);
  EXPECT_EQ(board_->resets()[1].cause, ResetCause::kSoftware);
  EXPECT_NE(board_->console().find("device_id m4-board-1"), std::string::npos) << board_->console();
  // The second boot found the loader already write-protected: one option-byte program only.
  int option_programs = 0;
  for (const FlashIfEvent& e : board_->flash_interface().events())
    option_programs += e.kind == Kind::kOptionProgram ? 1 : 0;
  EXPECT_EQ(option_programs, 1);
  std::printf("m4-board: provision + reboot + settings ok instructions=%llu emulated_ms=%.1f\n",
              static_cast<unsigned long long>(board_->instructions()),
              static_cast<double>(board_->now_ns()) / 1e6);
}

// The console runs at the datasheet's 115200 baud from the 90 MHz APB2 (RM0090 30.3.4:
// BRR = fPCLK / baud, within 2 %), and the clock tree reached 180 MHz (the RCC model checks
// PLL ranges, the over-drive and the flash wait states when SYSCLK switches).
TEST_F(DriverDatasheet, Clock_180MHzAndConsoleAt115200Baud) {
  EXPECT_EQ(board_->rcc().sysclk_hz(), 180'000'000u);
  EXPECT_EQ(board_->rcc().apb2_hz(), 90'000'000u);
  EXPECT_EQ(board_->flash_interface().latency(), 5u);
  const double baud = board_->usart1().baud();
  EXPECT_NEAR(baud, 115200.0, 115200.0 * 0.02);
}

}  // namespace
}  // namespace ota::sim::m4
