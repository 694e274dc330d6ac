// The peripheral models alone, driven register by register: each rule the board checks while
// the firmware runs is shown to catch a driver that breaks it (so the driver tests above can
// fail), and each datasheet behaviour the firmware relies on is pinned.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ota/profile.hpp"
#include "sim/m4/flash_interface.hpp"
#include "sim/m4/iwdg.hpp"
#include "sim/m4/memory_map.hpp"
#include "sim/m4/systick.hpp"
#include "sim/m4/w25q128_chip.hpp"

namespace ota::sim::m4 {
namespace {

// A board reduced to a clock the test moves and a record of what the models asked for.
class TestMachine final : public Machine {
 public:
  uint64_t cycles() const override { return ns_ * hz_ / 1'000'000'000ull; }
  uint64_t now_ns() const override { return ns_; }
  uint32_t pc() const override { return 0x08000100; }
  void Fail(const std::string& what) override { failures.push_back(what); }
  void SetPending(uint32_t number) override { pending.push_back(number); }
  void RequestReset(ResetCause cause) override { resets.push_back(cause); }
  void TimersChanged() override {}
  uint32_t sysclk_hz() const override { return hz_; }
  void Stall(uint64_t ns) override {
    stalled_ns += ns;
    ns_ += ns;
  }
  void PowerLost() override { power_lost = true; }

  void Advance(uint64_t ns) { ns_ += ns; }

  std::vector<std::string> failures;
  std::vector<uint32_t> pending;
  std::vector<ResetCause> resets;
  uint64_t stalled_ns = 0;
  bool power_lost = false;

 private:
  uint64_t ns_ = 0;
  uint32_t hz_ = 180'000'000;
};

constexpr uint32_t kKeyr = 0x04;
constexpr uint32_t kSr = 0x0C;
constexpr uint32_t kCr = 0x10;
constexpr uint32_t kPgX32 = FlashInterface::kCrPg | (2u << FlashInterface::kCrPsizeShift);

class FlashInterfaceModel : public ::testing::Test {
 protected:
  FlashInterfaceModel()
      : flash_(kStm32f429Fire), flash_if_(machine_, flash_, [](uint32_t, uint32_t) {}) {}
  void Unlock() {
    flash_if_.Write(kKeyr, FlashInterface::kKey1);
    flash_if_.Write(kKeyr, FlashInterface::kKey2);
  }
  bool Has(FlashIfEvent::Kind kind) const {
    for (const FlashIfEvent& e : flash_if_.events()) {
      if (e.kind == kind) return true;
    }
    return false;
  }

  TestMachine machine_;
  BoardFlash flash_;
  FlashInterface flash_if_;
};

TEST_F(FlashInterfaceModel, CrWrittenWhileLocked_IgnoredAndRecorded) {
  flash_if_.Write(kCr, kPgX32);
  EXPECT_EQ(flash_if_.Read(kCr), FlashInterface::kCrLock);
  ASSERT_EQ(flash_if_.Violations().size(), 1u);
  EXPECT_NE(flash_if_.Violations()[0].find("while locked"), std::string::npos);
}

TEST_F(FlashInterfaceModel, WrongKeySequence_StopsTheRunAsABusError) {
  flash_if_.Write(kKeyr, FlashInterface::kKey2);
  ASSERT_EQ(machine_.failures.size(), 1u);
  EXPECT_NE(machine_.failures[0].find("wrong FLASH_KEYR sequence"), std::string::npos);
  EXPECT_EQ(flash_if_.Read(kCr) & FlashInterface::kCrLock, FlashInterface::kCrLock);
}

TEST_F(FlashInterfaceModel, StoreWithPsizeX8_PgperrAndNothingProgrammed) {
  Unlock();
  flash_if_.Write(kCr, FlashInterface::kCrPg);  // PSIZE 0: x8
  flash_if_.MemoryWrite(kFlashBase + 0x8000, 4, 0x12345678);
  EXPECT_NE(flash_if_.Read(kSr) & FlashInterface::kSrPgperr, 0u);
  EXPECT_EQ(flash_.internal.raw()[0x8000], 0xFF);
  EXPECT_EQ(flash_.internal.counters().program_ops, 0u);
}

TEST_F(FlashInterfaceModel, StoreWithoutPg_Pgserr) {
  Unlock();
  flash_if_.MemoryWrite(kFlashBase + 0x8000, 4, 0);
  EXPECT_NE(flash_if_.Read(kSr) & FlashInterface::kSrPgserr, 0u);
  EXPECT_EQ(flash_.internal.counters().program_ops, 0u);
}

TEST_F(FlashInterfaceModel, WordProgram_BusyForTheTypicalTimeThenDone) {
  Unlock();
  flash_if_.Write(kCr, kPgX32);
  flash_if_.MemoryWrite(kFlashBase + 0x8004, 4, 0xA5A55A5A);
  EXPECT_EQ(flash_.internal.raw()[0x8004], 0x5A);
  EXPECT_EQ(flash_.internal.counters().program_ops, 1u);
  EXPECT_NE(flash_if_.Read(kSr) & FlashInterface::kSrBsy, 0u);
  machine_.Advance(15'000);
  EXPECT_NE(flash_if_.Read(kSr) & FlashInterface::kSrBsy, 0u);
  machine_.Advance(1'000);  // 16 us: DS9405's typical word program
  EXPECT_EQ(flash_if_.Read(kSr) & FlashInterface::kSrBsy, 0u);
  EXPECT_TRUE(flash_if_.Violations().empty());
}

TEST_F(FlashInterfaceModel, SecondStoreBeforeBsyWasSeenClear_StallsAndIsRecorded) {
  Unlock();
  flash_if_.Write(kCr, kPgX32);
  flash_if_.MemoryWrite(kFlashBase + 0x8000, 4, 0);
  flash_if_.MemoryWrite(kFlashBase + 0x8004, 4, 0);  // no SR poll in between
  EXPECT_EQ(machine_.stalled_ns, 16'000u);
  EXPECT_EQ(flash_.internal.counters().program_ops, 2u);
  EXPECT_GE(flash_if_.Violations().size(), 1u);
}

TEST_F(FlashInterfaceModel, SectorErase_SnbErasesThatSectorForItsTime) {
  flash_.internal.raw()[0xC000] = 0;
  Unlock();
  flash_if_.Write(kCr, FlashInterface::kCrSer | (2u << FlashInterface::kCrPsizeShift) |
                           (3u << FlashInterface::kCrSnbShift));
  flash_if_.Write(kCr, flash_if_.Read(kCr) | FlashInterface::kCrStrt);
  EXPECT_EQ(flash_.internal.raw()[0xC000], 0xFF);
  EXPECT_TRUE(Has(FlashIfEvent::Kind::kErase));
  machine_.Advance(249'000'000);
  EXPECT_NE(flash_if_.Read(kSr) & FlashInterface::kSrBsy, 0u);
  machine_.Advance(1'000'000);  // 250 ms: a 16 KB sector
  EXPECT_EQ(flash_if_.Read(kSr) & FlashInterface::kSrBsy, 0u);
}

TEST_F(FlashInterfaceModel, WriteProtectedSector_Wrperr) {
  UserOptionBytes protected_loader = UserOptionBytes::FromWord(
      UserOptionBytes::kFactoryWord & ~(1u << UserOptionBytes::kNwrpShift));
  flash_.option_bytes.set(protected_loader);
  Unlock();
  flash_if_.Write(kCr, kPgX32);
  flash_if_.MemoryWrite(kFlashBase + 0x100, 4, 0);
  EXPECT_NE(flash_if_.Read(kSr) & FlashInterface::kSrWrperr, 0u);
  EXPECT_EQ(flash_.internal.counters().program_ops, 0u);
}

class W25q128Model : public ::testing::Test {
 protected:
  W25q128Model() : flash_(kStm32f429Fire), chip_(machine_, flash_.external) {}
  void Command(std::initializer_list<uint8_t> bytes) {
    chip_.Select();
    for (const uint8_t b : bytes)
      chip_.Transfer(b);
    chip_.Deselect();
  }

  TestMachine machine_;
  BoardFlash flash_;
  W25q128Chip chip_;
};

TEST_F(W25q128Model, PageProgramWithoutWriteEnable_IgnoredAndRecorded) {
  Command({0x02, 0x00, 0x10, 0x00, 0x11, 0x22});
  EXPECT_EQ(flash_.external.raw()[0x1000], 0xFF);
  ASSERT_EQ(chip_.Violations().size(), 1u);
  EXPECT_NE(chip_.Violations()[0].find("without write enable"), std::string::npos);
}

TEST_F(W25q128Model, WriteEnableThenProgram_ProgramsAndClearsWelWhenDone) {
  Command({0x06});
  EXPECT_EQ(chip_.status1(), W25q128Chip::kStatusWel);
  Command({0x02, 0x00, 0x10, 0x00, 0x11, 0x22});
  EXPECT_EQ(flash_.external.raw()[0x1000], 0x11);
  EXPECT_EQ(flash_.external.raw()[0x1001], 0x22);
  EXPECT_EQ(chip_.status1(), W25q128Chip::kStatusWel | W25q128Chip::kStatusBusy);
  machine_.Advance(700'000);  // tPP typical
  EXPECT_EQ(chip_.status1(), 0);
  // WEL is needed again for the next one.
  Command({0x20, 0x00, 0x10, 0x00});
  EXPECT_EQ(flash_.external.raw()[0x1000], 0x11);
  EXPECT_FALSE(chip_.commands().back().executed);
}

TEST_F(W25q128Model, ProgramPastThePageEnd_WrapsToThePageStartAndIsRecorded) {
  Command({0x06});
  Command({0x02, 0x00, 0x10, 0xFE, 0x01, 0x02, 0x03, 0x04});
  EXPECT_EQ(flash_.external.raw()[0x10FE], 0x01);
  EXPECT_EQ(flash_.external.raw()[0x10FF], 0x02);
  EXPECT_EQ(flash_.external.raw()[0x1000], 0x03);  // wrapped, not 0x1100
  EXPECT_EQ(flash_.external.raw()[0x1100], 0xFF);
  ASSERT_EQ(chip_.Violations().size(), 1u);
  EXPECT_NE(chip_.Violations()[0].find("wrapped"), std::string::npos);
}

TEST_F(W25q128Model, CommandWhileBusy_IgnoredStatusReadAnswers) {
  Command({0x06});
  Command({0x20, 0x00, 0x20, 0x00});
  Command({0x06});  // ignored: BUSY
  EXPECT_FALSE(chip_.commands().back().executed);
  chip_.Select();
  chip_.Transfer(0x05);
  EXPECT_EQ(chip_.Transfer(0xFF) & W25q128Chip::kStatusBusy, W25q128Chip::kStatusBusy);
  chip_.Deselect();
}

TEST_F(W25q128Model, JedecId_Ef4018) {
  chip_.Select();
  chip_.Transfer(0x9F);
  EXPECT_EQ(chip_.Transfer(0), 0xEF);
  EXPECT_EQ(chip_.Transfer(0), 0x40);
  EXPECT_EQ(chip_.Transfer(0), 0x18);
  chip_.Deselect();
}

TEST(IwdgModel, NotRefreshed_ResetsTheBoardAfterItsTimeout) {
  TestMachine machine;
  Iwdg iwdg(machine);
  iwdg.Write(0x00, 0xCCCC);
  iwdg.Write(0x00, 0x5555);
  iwdg.Write(0x04, 6);      // /256
  iwdg.Write(0x08, 0xFFF);  // 4096 x 256 / 32 kHz = 32.768 s
  EXPECT_EQ(iwdg.TimeoutNs(), 32'768'000'000ull);
  iwdg.Write(0x00, 0xAAAA);
  machine.Advance(32'000'000'000ull);
  iwdg.OnTime();
  EXPECT_TRUE(machine.resets.empty());
  iwdg.Write(0x00, 0xAAAA);  // refreshed: a whole period again
  machine.Advance(32'000'000'000ull);
  iwdg.OnTime();
  EXPECT_TRUE(machine.resets.empty());
  machine.Advance(1'000'000'000ull);
  ASSERT_GE(iwdg.NextEventNs(), 0u);
  iwdg.OnTime();
  ASSERT_EQ(machine.resets.size(), 1u);
  EXPECT_EQ(machine.resets[0], ResetCause::kWatchdog);
}

TEST(SysTickModel, OneMillisecondAt180MHz_PendsException15EachPeriod) {
  TestMachine machine;
  SysTick tick(machine);
  tick.WriteLoad(180'000 - 1);
  tick.WriteVal(0);
  tick.WriteCtrl(7);
  EXPECT_EQ(tick.NextEventNs(), 1'000'000u);
  machine.Advance(999'000);
  tick.OnTime();
  EXPECT_TRUE(machine.pending.empty());
  machine.Advance(1'000);
  tick.OnTime();
  EXPECT_EQ(machine.pending, std::vector<uint32_t>{15});
  EXPECT_EQ(tick.NextEventNs(), 2'000'000u);
  EXPECT_NE(tick.ReadCtrl() & (1u << 16), 0u);  // COUNTFLAG, cleared by the read
  EXPECT_EQ(tick.ReadCtrl() & (1u << 16), 0u);
}

}  // namespace
}  // namespace ota::sim::m4
