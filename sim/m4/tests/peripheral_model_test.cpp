// The peripheral models alone, driven register by register: each rule the board checks while
// the firmware runs is shown to catch a driver that breaks it (so the driver tests above can
// fail), and each datasheet behaviour the firmware relies on is pinned.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "ota/profile.hpp"
#include "sim/m4/flash_interface.hpp"
#include "sim/m4/gpio.hpp"
#include "sim/m4/iwdg.hpp"
#include "sim/m4/memory_map.hpp"
#include "sim/m4/rcc.hpp"
#include "sim/m4/spi.hpp"
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

// RM0090 3.5.3: a program only clears bits; a 1 over a 0 stays 0, and the F42x sets no
// error flag for it (FLASH_SR has none). The model does the same and records it.
TEST_F(FlashInterfaceModel, OneProgrammedOverZero_StaysZeroNoErrorFlagRecorded) {
  Unlock();
  flash_if_.Write(kCr, kPgX32);
  flash_if_.MemoryWrite(kFlashBase + 0x8000, 4, 0x0000FFFF);
  machine_.Advance(16'000);
  EXPECT_EQ(flash_if_.Read(kSr) & FlashInterface::kSrBsy, 0u);
  EXPECT_TRUE(flash_if_.Violations().empty()) << "an erased word: no rule broken";
  flash_if_.MemoryWrite(kFlashBase + 0x8000, 4, 0x00FF00FF);  // 1s over the programmed 0s
  machine_.Advance(16'000);
  uint32_t cells;
  std::memcpy(&cells, &flash_.internal.raw()[0x8000], sizeof(cells));
  EXPECT_EQ(cells, 0x000000FFu) << "the AND of both: the 0s stayed";
  EXPECT_EQ(flash_if_.Read(kSr), 0u) << "no error flag, not busy";
  EXPECT_EQ(flash_.internal.counters().program_ops, 2u);
  ASSERT_EQ(flash_if_.Violations().size(), 1u);
  EXPECT_NE(flash_if_.Violations()[0].find("a 1 programmed over a 0 stays 0"), std::string::npos);
  // Clearing more bits of a programmed word is allowed (RM0090 3.5.3): no record.
  flash_if_.MemoryWrite(kFlashBase + 0x8000, 4, 0x0000000F);
  machine_.Advance(16'000);
  EXPECT_EQ(flash_.internal.raw()[0x8000], 0x0F);
  EXPECT_EQ(flash_if_.Violations().size(), 1u);
}

// RM0090 3.9.5: PGSERR/PGPERR/PGAERR/WRPERR stay set until written 1 (a later operation that
// succeeds does not clear them); the next operation starts anyway, and the model records
// that the firmware started it with an earlier error never cleared.
TEST_F(FlashInterfaceModel, ErrorFlagsStickUntilWrittenOne_OperationStartedOverOneRecorded) {
  Unlock();
  flash_if_.MemoryWrite(kFlashBase + 0x8000, 4, 0);  // no PG: PGSERR
  flash_if_.Write(kCr, FlashInterface::kCrPg);       // PSIZE x8
  flash_if_.MemoryWrite(kFlashBase + 0x8000, 4, 0);  // a word store at x8: PGPERR
  flash_if_.Write(kCr, kPgX32);
  flash_if_.MemoryWrite(kFlashBase + 0x8002, 4, 0);  // misaligned: PGAERR
  constexpr uint32_t kSet =
      FlashInterface::kSrPgserr | FlashInterface::kSrPgperr | FlashInterface::kSrPgaerr;
  EXPECT_EQ(flash_if_.Read(kSr), kSet);
  EXPECT_TRUE(flash_if_.Violations().empty());
  // A program that works: done, the flags are still there, and it is recorded.
  flash_if_.MemoryWrite(kFlashBase + 0x8000, 4, 0x12345678);
  EXPECT_EQ(flash_.internal.raw()[0x8000], 0x78);
  machine_.Advance(16'000);
  EXPECT_EQ(flash_if_.Read(kSr), kSet);
  ASSERT_EQ(flash_if_.Violations().size(), 1u);
  EXPECT_NE(flash_if_.Violations()[0].find("error flags 0x000000e0"), std::string::npos)
      << flash_if_.Violations()[0];
  // Writing 0 clears nothing; writing 1 clears that flag only.
  flash_if_.Write(kSr, 0);
  EXPECT_EQ(flash_if_.Read(kSr), kSet);
  flash_if_.Write(kSr, FlashInterface::kSrPgserr);
  EXPECT_EQ(flash_if_.Read(kSr), FlashInterface::kSrPgperr | FlashInterface::kSrPgaerr);
  flash_if_.Write(kSr, kSet);
  EXPECT_EQ(flash_if_.Read(kSr), 0u);
  flash_if_.MemoryWrite(kFlashBase + 0x8004, 4, 0);
  EXPECT_EQ(flash_if_.Violations().size(), 1u) << "flags cleared first: nothing recorded";
}

// set_timing(kMaximum): BSY for DS9405's maximum (x32): 100 us a word, 500 ms a 16 KB sector.
TEST_F(FlashInterfaceModel, MaximumTiming_WordProgram100usSector500ms) {
  flash_if_.set_timing(FlashTimingCase::kMaximum);
  Unlock();
  flash_if_.Write(kCr, kPgX32);
  flash_if_.MemoryWrite(kFlashBase + 0x8000, 4, 0);
  machine_.Advance(99'000);
  EXPECT_NE(flash_if_.Read(kSr) & FlashInterface::kSrBsy, 0u);
  machine_.Advance(1'000);
  EXPECT_EQ(flash_if_.Read(kSr) & FlashInterface::kSrBsy, 0u);
  flash_if_.Write(kCr, FlashInterface::kCrSer | (2u << FlashInterface::kCrPsizeShift) |
                           (3u << FlashInterface::kCrSnbShift));
  flash_if_.Write(kCr, flash_if_.Read(kCr) | FlashInterface::kCrStrt);
  machine_.Advance(499'000'000);
  EXPECT_NE(flash_if_.Read(kSr) & FlashInterface::kSrBsy, 0u);
  machine_.Advance(1'000'000);
  EXPECT_EQ(flash_if_.Read(kSr) & FlashInterface::kSrBsy, 0u);
  EXPECT_TRUE(flash_if_.Violations().empty());
}

// A store into an OTP block whose lock byte is 0x00 (RM0090 3.7) is ignored and recorded;
// the same status from the main flash or the option bytes is not the OTP's lock: the run
// stops (the part's result would be undefined), never a silent "ignored".
TEST_F(FlashInterfaceModel, LockedOtpBlock_IgnoredAndRecorded_StatusMappedPerDevice) {
  flash_.otp.cells().raw()[kOtpLockOffset + 1] = 0x00;  // block 1 locked
  Unlock();
  flash_if_.Write(kCr, kPgX32);
  flash_if_.MemoryWrite(kOtpBase + kOtpBlockSize, 4, 0);
  EXPECT_EQ(flash_.otp.cells().raw()[kOtpBlockSize], 0xFF);
  EXPECT_TRUE(machine_.failures.empty());
  ASSERT_FALSE(flash_if_.events().empty());
  EXPECT_EQ(flash_if_.events().back().kind, FlashIfEvent::Kind::kError);
  EXPECT_NE(flash_if_.events().back().note.find("locked OTP block"), std::string::npos);
  flash_if_.MemoryWrite(kOtpBase, 4, 0);  // block 0 is not locked
  EXPECT_EQ(flash_.otp.cells().raw()[0], 0x00);

  EXPECT_EQ(AnswerFor(StatusCode::kFailedPrecondition, FlashTarget::kOtp),
            FlashAnswer::kLockedOtpBlock);
  EXPECT_EQ(AnswerFor(StatusCode::kFailedPrecondition, FlashTarget::kMainFlash),
            FlashAnswer::kNotModelled);
  EXPECT_EQ(AnswerFor(StatusCode::kFailedPrecondition, FlashTarget::kOptionBytes),
            FlashAnswer::kNotModelled);
  EXPECT_EQ(AnswerFor(StatusCode::kWriteProtected, FlashTarget::kMainFlash), FlashAnswer::kWrperr);
  EXPECT_EQ(AnswerFor(StatusCode::kWriteProtected, FlashTarget::kOtp), FlashAnswer::kNotModelled);
  EXPECT_EQ(AnswerFor(StatusCode::kNotErased, FlashTarget::kMainFlash), FlashAnswer::kNotModelled);
  EXPECT_EQ(AnswerFor(StatusCode::kPowerLost, FlashTarget::kOtp), FlashAnswer::kPowerLost);
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

// Datasheet 8.2.13: a page program only clears bits: a 1 over a 0 stays 0, nothing reported
// by the chip (no error bit); the model records it.
TEST_F(W25q128Model, PageProgramOfAOneOverAZero_StaysZeroRecorded) {
  Command({0x06});
  Command({0x02, 0x00, 0x40, 0x00, 0x0F, 0xF0});
  machine_.Advance(700'000);
  EXPECT_TRUE(chip_.Violations().empty());
  Command({0x06});
  Command({0x02, 0x00, 0x40, 0x00, 0xFF, 0x30});  // 1s over 0s, then only 0s cleared
  machine_.Advance(700'000);
  EXPECT_EQ(flash_.external.raw()[0x4000], 0x0F);
  EXPECT_EQ(flash_.external.raw()[0x4001], 0x30);
  EXPECT_TRUE(chip_.commands().back().executed);
  EXPECT_EQ(chip_.status1(), 0);
  ASSERT_EQ(chip_.Violations().size(), 1u);
  EXPECT_NE(chip_.Violations()[0].find("a 1 programmed over a 0 stays 0"), std::string::npos);
}

// set_timing(kMaximum): BUSY for the datasheet's tPP max 3 ms, tSE max 400 ms.
TEST_F(W25q128Model, MaximumTiming_PageProgram3msSectorErase400ms) {
  chip_.set_timing(FlashTimingCase::kMaximum);
  Command({0x06});
  Command({0x02, 0x00, 0x10, 0x00, 0x11});
  machine_.Advance(2'999'000);
  EXPECT_EQ(chip_.status1() & W25q128Chip::kStatusBusy, W25q128Chip::kStatusBusy);
  machine_.Advance(1'000);
  EXPECT_EQ(chip_.status1(), 0);
  Command({0x06});
  Command({0x20, 0x00, 0x10, 0x00});
  machine_.Advance(399'999'000);
  EXPECT_EQ(chip_.status1() & W25q128Chip::kStatusBusy, W25q128Chip::kStatusBusy);
  machine_.Advance(1'000);
  EXPECT_EQ(chip_.status1(), 0);
  EXPECT_TRUE(chip_.Violations().empty());
}

TEST_F(W25q128Model, EraseWithIncompleteAddress_NotExecuted) {
  flash_.external.raw()[0x3000] = 0x00;
  Command({0x06});
  Command({0x20, 0x00, 0x30});  // two of the three address bytes
  EXPECT_EQ(flash_.external.raw()[0x3000], 0x00);
  EXPECT_FALSE(chip_.commands().back().executed);
  EXPECT_EQ(chip_.status1(), W25q128Chip::kStatusWel);  // not busy: nothing started
  ASSERT_EQ(chip_.Violations().size(), 1u);
  EXPECT_NE(chip_.Violations()[0].find("whole address"), std::string::npos);
}

TEST_F(W25q128Model, ChipSelectRaisedMidByte_ProgramEraseAndWriteEnableNotExecuted) {
  // Write enable cut in its only byte: WEL stays clear.
  chip_.Select();
  chip_.Transfer(0x06);
  chip_.Deselect(/*byte_complete=*/false);
  EXPECT_EQ(chip_.status1(), 0);
  EXPECT_FALSE(chip_.commands().back().executed);
  // A page program whose last data byte was cut: nothing programmed.
  Command({0x06});
  chip_.Select();
  for (const uint8_t b : std::initializer_list<uint8_t>{0x02, 0x00, 0x10, 0x00, 0x11, 0x22})
    chip_.Transfer(b);
  chip_.Deselect(/*byte_complete=*/false);
  EXPECT_EQ(flash_.external.raw()[0x1000], 0xFF);
  EXPECT_EQ(flash_.external.raw()[0x1001], 0xFF);
  EXPECT_FALSE(chip_.commands().back().executed);
  EXPECT_EQ(chip_.status1() & W25q128Chip::kStatusBusy, 0);
  // A sector erase cut in its last address byte: nothing erased.
  flash_.external.raw()[0x2000] = 0x00;
  chip_.Select();
  for (const uint8_t b : std::initializer_list<uint8_t>{0x20, 0x00, 0x20, 0x00})
    chip_.Transfer(b);
  chip_.Deselect(/*byte_complete=*/false);
  EXPECT_EQ(flash_.external.raw()[0x2000], 0x00);
  EXPECT_FALSE(chip_.commands().back().executed);
  EXPECT_EQ(chip_.Violations().size(), 3u);
  // The same erase with its last byte whole is executed.
  chip_.Select();
  for (const uint8_t b : std::initializer_list<uint8_t>{0x20, 0x00, 0x20, 0x00})
    chip_.Transfer(b);
  chip_.Deselect();
  EXPECT_EQ(flash_.external.raw()[0x2000], 0xFF);
}

// SPI5 on its pins, at reset clocks (APB2 16 MHz, BR 0: 8 MHz SCK, 1 us a byte).
class Spi5Model : public ::testing::Test {
 protected:
  Spi5Model()
      : flash_(kStm32f429Fire),
        rcc_(machine_, [] { return 0u; }),
        port_f_(machine_, 5),
        chip_(machine_, flash_.external),
        spi_(machine_, rcc_, port_f_, chip_) {
    port_f_.Write(0x00, (2u << 14) | (2u << 16) | (2u << 18));  // MODER: PF7-9 AF
    port_f_.Write(0x24, (5u << 0) | (5u << 4));                 // AFRH: PF8, PF9 AF5
    port_f_.Write(0x20, 5u << 28);                              // AFRL: PF7 AF5
    spi_.Write(0x00, (1u << 2) | (1u << 6));                    // CR1: MSTR, SPE
  }
  // One byte, waited for and its answer read, as the driver does.
  void Byte(uint8_t b) {
    spi_.Write(0x0C, b);
    machine_.Advance(1'000);
    (void)spi_.Read(0x0C);
  }

  TestMachine machine_;
  BoardFlash flash_;
  Rcc rcc_;
  Gpio port_f_;
  W25q128Chip chip_;
  Spi spi_;
};

TEST_F(Spi5Model, ChipSelectRaisedWhileTheLastByteShifts_EraseNotExecuted) {
  flash_.external.raw()[0x2000] = 0x00;
  spi_.ChipSelect(false);
  Byte(0x06);
  spi_.ChipSelect(true);
  EXPECT_EQ(chip_.status1(), W25q128Chip::kStatusWel);
  spi_.ChipSelect(false);
  for (const uint8_t b : std::initializer_list<uint8_t>{0x20, 0x00, 0x20})
    Byte(b);
  spi_.Write(0x0C, 0x00);  // the last address byte, still shifting
  spi_.ChipSelect(true);
  EXPECT_EQ(flash_.external.raw()[0x2000], 0x00);
  ASSERT_EQ(spi_.violations().size(), 1u);
  EXPECT_NE(spi_.violations()[0].find("still shifting"), std::string::npos);
  ASSERT_EQ(chip_.Violations().size(), 1u);
  EXPECT_NE(chip_.Violations()[0].find("middle of a byte"), std::string::npos);
  // Waited for: the same erase is executed.
  machine_.Advance(1'000);
  (void)spi_.Read(0x0C);
  spi_.ChipSelect(false);
  for (const uint8_t b : std::initializer_list<uint8_t>{0x20, 0x00, 0x20, 0x00})
    Byte(b);
  spi_.ChipSelect(true);
  EXPECT_EQ(flash_.external.raw()[0x2000], 0xFF);
  EXPECT_EQ(spi_.violations().size(), 1u);
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
