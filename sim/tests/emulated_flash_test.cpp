// Tests for the emulated flash: datasheet semantics, op granularity, counters, timing,
// persistence and power faults. Geometries are the real board profiles'.
#include "sim/emulated_flash.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ota/profile.hpp"
#include "sim/board_flash.hpp"
#include "sim/flash_timing.hpp"
#include "sim/power.hpp"

namespace ota::sim {
namespace {

const FlashGeometry& kFireInternal = kStm32f429Fire.internal;
const FlashGeometry& kFireExternal = kStm32f429Fire.external;
const FlashGeometry& kSmallInternal = kSimSmall.internal;
const FlashGeometry& kSmallExternal = kSimSmall.external;

ConstByteSpan View(const std::vector<uint8_t>& bytes) {
  return ConstByteSpan(bytes.data(), bytes.size());
}

std::vector<uint8_t> Slice(const EmulatedFlash& flash, uint32_t addr, uint32_t len) {
  return std::vector<uint8_t>(flash.raw().begin() + addr, flash.raw().begin() + addr + len);
}

// A file path in the test's temp dir, removed (with its sidecar) when the object goes.
class TempFile {
 public:
  explicit TempFile(const std::string& name)
      : path_(std::filesystem::path(testing::TempDir()) /
              ("ota_sim_" + std::to_string(::getpid()) + "_" + name)) {
    Remove();
  }
  ~TempFile() { Remove(); }
  const std::string& path() const { return path_; }

 private:
  void Remove() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
    std::filesystem::remove(path_ + ".wear", ignored);
  }
  std::string path_;
};

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// --- Geometry -----------------------------------------------------------------------------

TEST(SectorAtTest, SectorAt_Stm32NonUniformSectors_ReturnsSectorHoldingAddress) {
  struct Case {
    uint32_t addr;
    uint32_t index;
    uint32_t offset;
    uint32_t size;
  };
  const Case cases[] = {
      {0x00000, 0, 0x00000, 16 * 1024},   {0x04000, 1, 0x04000, 16 * 1024},
      {0x0FFFF, 3, 0x0C000, 16 * 1024},   {0x10000, 4, 0x10000, 64 * 1024},
      {0x1FFFF, 4, 0x10000, 64 * 1024},   {0x20000, 5, 0x20000, 128 * 1024},
      {0xE0000, 11, 0xE0000, 128 * 1024}, {0xFFFFF, 11, 0xE0000, 128 * 1024},
  };
  for (const Case& c : cases) {
    const Result<SectorInfo> sector = kFireInternal.SectorAt(c.addr);
    ASSERT_TRUE(sector.ok()) << std::hex << c.addr;
    EXPECT_EQ(sector->index, c.index) << std::hex << c.addr;
    EXPECT_EQ(sector->offset, c.offset) << std::hex << c.addr;
    EXPECT_EQ(sector->size, c.size) << std::hex << c.addr;
  }
}

TEST(SectorAtTest, SectorAt_PastEnd_ReturnsOutOfRange) {
  EXPECT_EQ(kFireInternal.total_size(), 0x100000u);
  EXPECT_EQ(kFireInternal.SectorAt(0x100000).status(), StatusCode::kOutOfRange);
  EXPECT_EQ(kFireInternal.SectorAt(0xFFFFFFFF).status(), StatusCode::kOutOfRange);
}

// --- Program and erase semantics ------------------------------------------------------------

TEST(EmulatedFlashTest, Constructor_NewDevice_IsErasedWithoutWear) {
  EmulatedFlash flash(kSmallInternal, kStm32f4InternalTiming, nullptr);
  EXPECT_EQ(flash.raw().size(), kSmallInternal.total_size());
  EXPECT_TRUE(std::all_of(flash.raw().begin(), flash.raw().end(),
                          [](uint8_t b) { return b == Flash::kErased; }));
  EXPECT_EQ(flash.wear(), std::vector<uint32_t>(kSmallInternal.sector_count(), 0));
}

TEST(EmulatedFlashTest, Program_OverProgrammedBits_ResultIsAndOfOldAndNew) {
  EmulatedFlash flash(kSmallInternal, kStm32f4InternalTiming, nullptr);
  const std::vector<uint8_t> first = {0xF0, 0xF0, 0x0F, 0xFF};
  const std::vector<uint8_t> second = {0x30, 0xF0, 0x00, 0x7F};
  ASSERT_EQ(flash.Program(0x100, View(first)), StatusCode::kOk);
  ASSERT_EQ(flash.Program(0x100, View(second)), StatusCode::kOk);
  EXPECT_EQ(Slice(flash, 0x100, 4), second);
  std::vector<uint8_t> readback(4);
  ASSERT_EQ(flash.Read(0x100, ByteSpan(readback.data(), readback.size())), StatusCode::kOk);
  EXPECT_EQ(readback, second);
}

TEST(EmulatedFlashTest, Program_BitFromZeroToOne_ReturnsNotErasedAndChangesNothing) {
  EmulatedFlash flash(kSmallInternal, kStm32f4InternalTiming, nullptr);
  std::fill_n(flash.raw().begin() + 0x10C, 4, 0xF0);  // the last word of the call
  const std::vector<uint8_t> before = flash.raw();
  const std::vector<uint8_t> data(16, 0x0F);  // 0x0F over 0xF0 needs 0 -> 1
  EXPECT_EQ(flash.Program(0x100, View(data)), StatusCode::kNotErased);
  EXPECT_EQ(flash.raw(), before);  // the first three words were not programmed either
  EXPECT_EQ(flash.counters().program_ops, 0u);
}

TEST(EmulatedFlashTest, Program_MisalignedOnInternal_ReturnsMisaligned) {
  EmulatedFlash flash(kSmallInternal, kStm32f4InternalTiming, nullptr);
  const std::vector<uint8_t> word(4, 0x00);
  const std::vector<uint8_t> three(3, 0x00);
  EXPECT_EQ(flash.Program(0x102, View(word)), StatusCode::kMisaligned);
  EXPECT_EQ(flash.Program(0x100, View(three)), StatusCode::kMisaligned);
  EXPECT_EQ(flash.Program(0x100, View(word)), StatusCode::kOk);
  EXPECT_EQ(flash.counters().program_ops, 1u);
}

TEST(EmulatedFlashTest, Program_CrossesW25qPage_ReturnsMisaligned) {
  EmulatedFlash flash(kSmallExternal, kW25q128Timing, nullptr);
  const std::vector<uint8_t> data(32, 0x00);
  EXPECT_EQ(flash.Program(0x1F0, View(data)), StatusCode::kMisaligned);
  EXPECT_TRUE(std::all_of(flash.raw().begin(), flash.raw().end(),
                          [](uint8_t b) { return b == Flash::kErased; }));
  EXPECT_EQ(flash.Program(0x1E0, View(data)), StatusCode::kOk);  // ends exactly at 0x200
  EXPECT_EQ(flash.Program(0x203, View(data)), StatusCode::kOk);  // any alignment in a page
}

TEST(EmulatedFlashTest, AllOps_PastEnd_ReturnOutOfRange) {
  EmulatedFlash flash(kSmallExternal, kW25q128Timing, nullptr);
  const uint32_t size = kSmallExternal.total_size();
  std::vector<uint8_t> data(8, 0x00);
  EXPECT_EQ(flash.Program(size - 4, View(data)), StatusCode::kOutOfRange);
  EXPECT_EQ(flash.Read(size - 4, ByteSpan(data.data(), data.size())), StatusCode::kOutOfRange);
  EXPECT_EQ(flash.Erase(size - 4096, 8192), StatusCode::kOutOfRange);
  EXPECT_EQ(flash.Erase(size, 4096), StatusCode::kOutOfRange);
}

TEST(EmulatedFlashTest, Erase_NotOnSectorBoundary_ReturnsMisaligned) {
  EmulatedFlash flash(kSmallInternal, kStm32f4InternalTiming, nullptr);
  // sim-small internal: 4 x 1 KB, 4 KB at 0x1000, 8 KB sectors from 0x2000.
  EXPECT_EQ(flash.Erase(0x200, 0x400), StatusCode::kMisaligned);
  EXPECT_EQ(flash.Erase(0x000, 0x600), StatusCode::kMisaligned);
  EXPECT_EQ(flash.Erase(0x1000, 0x2000), StatusCode::kMisaligned);  // ends inside 0x2000
  EXPECT_EQ(flash.counters().erase_ops, 0u);
  EXPECT_EQ(flash.Erase(0x1000, 0x3000), StatusCode::kOk);
  EXPECT_EQ(flash.counters().erase_ops, 2u);
}

TEST(EmulatedFlashTest, Erase_ProgrammedSector_SetsErasedAndCountsWear) {
  EmulatedFlash flash(kSmallInternal, kStm32f4InternalTiming, nullptr);
  std::fill(flash.raw().begin(), flash.raw().end(), 0x00);
  ASSERT_EQ(flash.Erase(0x1000, 0x1000), StatusCode::kOk);  // sector 4, 4 KB
  ASSERT_EQ(flash.Erase(0x1000, 0x1000), StatusCode::kOk);
  for (uint32_t addr = 0; addr < flash.size(); ++addr) {
    const bool in_sector = addr >= 0x1000 && addr < 0x2000;
    ASSERT_EQ(flash.raw()[addr], in_sector ? 0xFF : 0x00) << std::hex << addr;
  }
  std::vector<uint32_t> expected_wear(kSmallInternal.sector_count(), 0);
  expected_wear[4] = 2;
  EXPECT_EQ(flash.wear(), expected_wear);
}

TEST(EmulatedFlashTest, Erase_W25q128KbAt64KbBoundary_UsesTwo64KbBlockOps) {
  EmulatedFlash flash(kFireExternal, kW25q128Timing, nullptr);
  ASSERT_EQ(flash.Erase(0x10000, 0x20000), StatusCode::kOk);
  const FlashCounters& counters = flash.counters();
  EXPECT_EQ(counters.erase_ops, 2u);
  EXPECT_EQ(counters.erase_ops_of(64 * 1024), 2u);
  EXPECT_EQ(counters.erase_ops_of(32 * 1024), 0u);
  EXPECT_EQ(counters.erase_ops_of(4 * 1024), 0u);
  EXPECT_EQ(counters.erased_bytes, 0x20000u);
  EXPECT_EQ(counters.time_typ_us, 2 * 150'000u);
  EXPECT_EQ(counters.time_max_us, 2 * 2'000'000u);
  // A block erase wears every 4 KB sector inside it.
  for (uint32_t i = 0; i < flash.wear().size(); ++i) {
    ASSERT_EQ(flash.wear()[i], (i >= 16 && i < 48) ? 1u : 0u) << i;
  }
}

TEST(EmulatedFlashTest, Erase_W25qFrom4KbTo128Kb_Uses4KbThen32KbThen64KbOps) {
  EmulatedFlash flash(kFireExternal, kW25q128Timing, nullptr);
  std::fill_n(flash.raw().begin(), 0x21000, 0x00);
  ASSERT_EQ(flash.Erase(0x1000, 0x1F000), StatusCode::kOk);
  const FlashCounters& counters = flash.counters();
  EXPECT_EQ(counters.erase_ops_of(4 * 1024), 7u);   // 0x1000 .. 0x8000
  EXPECT_EQ(counters.erase_ops_of(32 * 1024), 1u);  // 0x8000 .. 0x10000
  EXPECT_EQ(counters.erase_ops_of(64 * 1024), 1u);  // 0x10000 .. 0x20000
  EXPECT_EQ(counters.erase_ops, 9u);
  EXPECT_EQ(counters.time_typ_us, 7 * 45'000u + 120'000u + 150'000u);
  EXPECT_EQ(flash.raw()[0x0FFF], 0x00);
  EXPECT_EQ(flash.raw()[0x1000], 0xFF);
  EXPECT_EQ(flash.raw()[0x1FFFF], 0xFF);
  EXPECT_EQ(flash.raw()[0x20000], 0x00);
}

// --- Counters and timing ------------------------------------------------------------------

TEST(EmulatedFlashTest, Program_1KbOnInternal_Counts256WordOpsAndTheirTime) {
  EmulatedFlash flash(kSmallInternal, kStm32f4InternalTiming, nullptr);
  const std::vector<uint8_t> data(1024, 0x5A);
  ASSERT_EQ(flash.Program(0x2000, View(data)), StatusCode::kOk);
  const FlashCounters& counters = flash.counters();
  EXPECT_EQ(counters.program_ops, 256u);
  EXPECT_EQ(counters.program_bytes, 1024u);
  EXPECT_EQ(counters.time_typ_us, 256 * 16u);
  EXPECT_EQ(counters.time_max_us, 256 * 100u);
  EXPECT_EQ(counters.erase_ops, 0u);
}

TEST(EmulatedFlashTest, Program_PageOnW25q_CountsOneOpAndPageProgramTime) {
  EmulatedFlash flash(kSmallExternal, kW25q128Timing, nullptr);
  const std::vector<uint8_t> data(256, 0x5A);
  ASSERT_EQ(flash.Program(0x300, View(data)), StatusCode::kOk);
  EXPECT_EQ(flash.counters().program_ops, 1u);
  EXPECT_EQ(flash.counters().program_bytes, 256u);
  EXPECT_EQ(flash.counters().time_typ_us, 700u);
  EXPECT_EQ(flash.counters().time_max_us, 3000u);
}

TEST(EmulatedFlashTest, Erase_Stm32Sectors_TakesDatasheetTime) {
  EmulatedFlash flash(kFireInternal, kStm32f4InternalTiming, nullptr);
  ASSERT_EQ(flash.Erase(0x00000, 0x4000), StatusCode::kOk);   // 16 KB
  ASSERT_EQ(flash.Erase(0x10000, 0x10000), StatusCode::kOk);  // 64 KB
  ASSERT_EQ(flash.Erase(0x20000, 0x20000), StatusCode::kOk);  // 128 KB
  EXPECT_EQ(flash.counters().time_typ_us, 250'000u + 550'000u + 1'000'000u);
  EXPECT_EQ(flash.counters().time_max_us, 500'000u + 1'100'000u + 2'000'000u);
  EXPECT_EQ(flash.counters().erase_ops_of(16 * 1024), 1u);
  EXPECT_EQ(flash.counters().erase_ops_of(64 * 1024), 1u);
  EXPECT_EQ(flash.counters().erase_ops_of(128 * 1024), 1u);
}

TEST(FlashTimingTest, EraseCost_SizeWithoutEntry_ScalesNearestEntryByBytes) {
  const EraseTiming one_kb = kStm32f4InternalTiming.EraseCost(1024);  // from the 16 KB entry
  EXPECT_EQ(one_kb.typ_us, 250'000u / 16);
  EXPECT_EQ(one_kb.max_us, 500'000u / 16);
  const EraseTiming eight_kb = kW25q128Timing.EraseCost(8 * 1024);  // from the 4 KB entry
  EXPECT_EQ(eight_kb.typ_us, 90'000u);
  EXPECT_EQ(eight_kb.max_us, 800'000u);
  EXPECT_EQ(kW25q128Timing.EraseCost(32 * 1024).typ_us, 120'000u);  // exact entry
}

TEST(EmulatedFlashTest, Read_W25qSector_CountsCallsBytesAndSpiTime) {
  EmulatedFlash flash(kSmallExternal, kW25q128Timing, nullptr);
  std::vector<uint8_t> out(4096);
  ASSERT_EQ(flash.Read(0, ByteSpan(out.data(), out.size())), StatusCode::kOk);
  EXPECT_EQ(flash.counters().read_calls, 1u);
  EXPECT_EQ(flash.counters().read_bytes, 4096u);
  EXPECT_EQ(flash.counters().time_typ_us, 729u);  // 1 + 4096 / 5.625 = 729.2 us
  // Fractions accumulate: 100 one-byte reads take 100 * (1 + 0.178) = 117.8 us.
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(flash.Read(0, ByteSpan(out.data(), 1)), StatusCode::kOk);
  }
  EXPECT_EQ(flash.counters().read_calls, 101u);
  EXPECT_EQ(flash.counters().time_typ_us, 846u);  // floor(729.18 + 117.78)
  EXPECT_EQ(flash.counters().time_max_us, flash.counters().time_typ_us);
}

TEST(EmulatedFlashTest, ResetCounters_AfterOps_ZeroesCountersButKeepsWear) {
  EmulatedFlash flash(kSmallExternal, kW25q128Timing, nullptr);
  std::vector<uint8_t> data(16, 0x00);
  ASSERT_EQ(flash.Program(0, View(data)), StatusCode::kOk);
  ASSERT_EQ(flash.Read(0, ByteSpan(data.data(), data.size())), StatusCode::kOk);
  ASSERT_EQ(flash.Erase(0, 4096), StatusCode::kOk);
  flash.ResetCounters();
  const FlashCounters& counters = flash.counters();
  EXPECT_EQ(counters.read_calls + counters.read_bytes + counters.program_ops +
                counters.program_bytes + counters.erase_ops + counters.erased_bytes +
                counters.time_typ_us + counters.time_max_us,
            0u);
  EXPECT_TRUE(counters.erase_ops_by_size.empty());
  EXPECT_EQ(flash.wear()[0], 1u);
}

TEST(FlashTimingTest, FormatMicros_EachMagnitude_ReadsNaturally) {
  EXPECT_EQ(FormatMicros(0), "0 us");
  EXPECT_EQ(FormatMicros(850), "850 us");
  EXPECT_EQ(FormatMicros(12'500), "12.5 ms");
  EXPECT_EQ(FormatMicros(2'310'000), "2.31 s");
  EXPECT_EQ(FormatMicros(2'000'000), "2 s");
  EXPECT_EQ(FormatMicros(192'000'000), "3 min 12 s");
}

// --- Persistence --------------------------------------------------------------------------

TEST(EmulatedFlashTest, OpenFile_MissingFile_CreatesErasedFileOfDeviceSize) {
  TempFile file("missing");
  EmulatedFlash flash(kSmallExternal, kW25q128Timing, nullptr);
  ASSERT_EQ(flash.OpenFile(file.path()), StatusCode::kOk);
  const std::vector<uint8_t> bytes = ReadFileBytes(file.path());
  EXPECT_EQ(bytes, std::vector<uint8_t>(kSmallExternal.total_size(), 0xFF));
  EXPECT_EQ(ReadFileBytes(file.path() + ".wear"),
            std::vector<uint8_t>(size_t{kSmallExternal.sector_count()} * 4, 0x00));
}

TEST(EmulatedFlashTest, OpenFile_AfterRestart_KeepsContentsAndWear) {
  TempFile file("restart");
  std::vector<uint8_t> contents;
  std::vector<uint32_t> wear;
  {
    EmulatedFlash flash(kSmallExternal, kW25q128Timing, nullptr);
    ASSERT_EQ(flash.OpenFile(file.path()), StatusCode::kOk);
    std::vector<uint8_t> data(256);
    for (size_t i = 0; i < data.size(); ++i)
      data[i] = static_cast<uint8_t>(i);
    ASSERT_EQ(flash.Program(0x1000, View(data)), StatusCode::kOk);
    ASSERT_EQ(flash.Program(0x2100, View(data)), StatusCode::kOk);
    ASSERT_EQ(flash.Erase(0x2000, 0x1000), StatusCode::kOk);
    ASSERT_EQ(flash.Erase(0x2000, 0x1000), StatusCode::kOk);
    ASSERT_EQ(flash.Erase(0x10000, 0x10000), StatusCode::kOk);  // one 64 KB block op
    contents = flash.raw();
    wear = flash.wear();
  }
  EXPECT_EQ(ReadFileBytes(file.path()), contents);
  const std::vector<uint8_t> wear_file = ReadFileBytes(file.path() + ".wear");
  ASSERT_EQ(wear_file.size(), wear.size() * 4);
  EXPECT_EQ(wear_file[2 * 4], 2);  // sector 2, little-endian
  EXPECT_EQ(wear_file[2 * 4 + 1], 0);

  EmulatedFlash reopened(kSmallExternal, kW25q128Timing, nullptr);
  ASSERT_EQ(reopened.OpenFile(file.path()), StatusCode::kOk);
  EXPECT_EQ(reopened.raw(), contents);
  EXPECT_EQ(reopened.wear(), wear);
  EXPECT_EQ(reopened.raw()[0x1005], 0x05);
  EXPECT_EQ(reopened.wear()[16], 1u);
  EXPECT_EQ(reopened.wear()[2], 2u);
}

TEST(EmulatedFlashTest, OpenFile_WrongSize_ReturnsInvalidArgumentAndKeepsContents) {
  TempFile file("wrong_size");
  {
    std::ofstream out(file.path(), std::ios::binary);
    const std::vector<char> short_file(kSmallExternal.total_size() - 1, 0);
    out.write(short_file.data(), static_cast<std::streamsize>(short_file.size()));
  }
  EmulatedFlash flash(kSmallExternal, kW25q128Timing, nullptr);
  flash.raw()[0] = 0x12;
  EXPECT_EQ(flash.OpenFile(file.path()), StatusCode::kInvalidArgument);
  EXPECT_EQ(flash.raw()[0], 0x12);
  EXPECT_EQ(flash.raw()[1], 0xFF);
  // A file of the other device's size is rejected too.
  EmulatedFlash internal(kSmallInternal, kStm32f4InternalTiming, nullptr);
  TempFile other("other_device");
  {
    EmulatedFlash external(kSmallExternal, kW25q128Timing, nullptr);
    ASSERT_EQ(external.OpenFile(other.path()), StatusCode::kOk);
  }
  EXPECT_EQ(internal.OpenFile(other.path()), StatusCode::kInvalidArgument);
}

TEST(EmulatedFlashTest, OpenFile_PowerCutMidCall_FileHoldsFlashAsAtTheCut) {
  TempFile file("cut");
  PowerSupply power;
  EmulatedFlash flash(kSmallInternal, kStm32f4InternalTiming, &power);
  ASSERT_EQ(flash.OpenFile(file.path()), StatusCode::kOk);
  std::fill_n(flash.raw().begin(), 0x400, 0x00);  // not written through: raw() bypasses
  power.Arm(FaultPlan{.cut_before = 0, .tear = 3, .seed = 7});
  ASSERT_EQ(flash.Erase(0x000, 0x400), StatusCode::kOk);  // op 1
  const std::vector<uint8_t> data(16, 0x00);
  EXPECT_EQ(flash.Program(0x2000, View(data)), StatusCode::kPowerLost);  // ops 2, 3 (torn)
  EXPECT_EQ(ReadFileBytes(file.path()), flash.raw());
}

// --- Power faults -------------------------------------------------------------------------

TEST(PowerSupplyTest, BeginMutatingOp_CutAndTearOnSameOp_CutWins) {
  PowerSupply power;
  power.Arm(FaultPlan{.cut_before = 2, .tear = 2, .seed = 0});
  EXPECT_EQ(power.BeginMutatingOp(), PowerDecision::kProceed);
  EXPECT_EQ(power.BeginMutatingOp(), PowerDecision::kCut);
  EXPECT_TRUE(power.lost());
  EXPECT_EQ(power.ops_since_arm(), 1u);
  EXPECT_EQ(power.BeginMutatingOp(), PowerDecision::kCut);  // still off
  EXPECT_EQ(power.total_ops(), 1u);
}

TEST(PowerSupplyTest, PowerOn_AfterCut_RestoresPowerAndDisarms) {
  PowerSupply power;
  power.Arm(FaultPlan{.cut_before = 1, .tear = 3, .seed = 9});
  EXPECT_EQ(power.BeginMutatingOp(), PowerDecision::kCut);
  power.PowerOn();
  EXPECT_FALSE(power.lost());
  EXPECT_EQ(power.plan().cut_before, 0u);
  EXPECT_EQ(power.plan().tear, 0u);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(power.BeginMutatingOp(), PowerDecision::kProceed);
  EXPECT_EQ(power.ops_since_arm(), 5u);
  power.Arm(FaultPlan{});
  EXPECT_EQ(power.ops_since_arm(), 0u);
  EXPECT_EQ(power.total_ops(), 5u);
  power.CutNow();
  EXPECT_EQ(power.BeginMutatingOp(), PowerDecision::kCut);
}

TEST(EmulatedFlashTest, CutBefore_NthWordOfCall_ExactlyNMinus1OpsTookEffect) {
  PowerSupply power;
  EmulatedFlash flash(kSmallInternal, kStm32f4InternalTiming, &power);
  std::vector<uint8_t> data(32);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<uint8_t>(i);
  power.Arm(FaultPlan{.cut_before = 5, .tear = 0, .seed = 0});
  EXPECT_EQ(flash.Program(0x400, View(data)), StatusCode::kPowerLost);
  EXPECT_TRUE(power.lost());
  EXPECT_EQ(power.ops_since_arm(), 4u);
  EXPECT_EQ(flash.counters().program_ops, 4u);
  // Words 1-4 (ops 1-4) programmed, word 5 (op 5) and later untouched.
  EXPECT_EQ(Slice(flash, 0x400, 16), std::vector<uint8_t>(data.begin(), data.begin() + 16));
  EXPECT_EQ(Slice(flash, 0x410, 16), std::vector<uint8_t>(16, 0xFF));

  // Dead: nothing gets through, reads included, and nothing changes.
  const std::vector<uint8_t> at_cut = flash.raw();
  std::vector<uint8_t> out(4, 0x00);
  EXPECT_EQ(flash.Read(0x400, ByteSpan(out.data(), out.size())), StatusCode::kPowerLost);
  EXPECT_EQ(out, std::vector<uint8_t>(4, 0x00));
  EXPECT_EQ(flash.Program(0x800, View(data)), StatusCode::kPowerLost);
  EXPECT_EQ(flash.Erase(0x000, 0x400), StatusCode::kPowerLost);
  EXPECT_EQ(flash.raw(), at_cut);
  EXPECT_EQ(flash.counters().read_calls, 0u);
  EXPECT_EQ(flash.wear()[0], 0u);

  power.PowerOn();
  ASSERT_EQ(flash.Read(0x400, ByteSpan(out.data(), out.size())), StatusCode::kOk);
  EXPECT_EQ(out, std::vector<uint8_t>(data.begin(), data.begin() + 4));
  EXPECT_EQ(flash.Program(0x410, View(data).subspan(16)), StatusCode::kOk);
  EXPECT_EQ(Slice(flash, 0x400, 32), data);
}

TEST(EmulatedFlashTest, CutBefore_EraseBlockOp_EarlierOpsDoneLaterUntouched) {
  PowerSupply power;
  EmulatedFlash flash(kSmallExternal, kW25q128Timing, &power);
  std::fill(flash.raw().begin(), flash.raw().end(), 0x00);
  // [0x8000, 0x20000): 32 KB op, then 64 KB op (cut), then another 64 KB op.
  power.Arm(FaultPlan{.cut_before = 2, .tear = 0, .seed = 0});
  EXPECT_EQ(flash.Erase(0x8000, 0x18000), StatusCode::kPowerLost);
  EXPECT_EQ(Slice(flash, 0x8000, 0x8000), std::vector<uint8_t>(0x8000, 0xFF));
  EXPECT_EQ(Slice(flash, 0x10000, 0x10000), std::vector<uint8_t>(0x10000, 0x00));
  EXPECT_EQ(flash.counters().erase_ops, 1u);
  EXPECT_EQ(flash.wear()[8], 1u);
  EXPECT_EQ(flash.wear()[16], 0u);
}

// The structure a torn program leaves: a prefix done, one byte partly, the rest untouched.
// Returns the index of the partial byte, or -1 if `after` has another shape.
int TornProgramSplit(const std::vector<uint8_t>& before, const std::vector<uint8_t>& data,
                     const std::vector<uint8_t>& after) {
  for (size_t k = 0; k < data.size(); ++k) {
    bool matches = true;
    for (size_t i = 0; i < k && matches; ++i)
      matches = after[i] == (before[i] & data[i]);
    for (size_t i = k + 1; i < data.size() && matches; ++i)
      matches = after[i] == before[i];
    // The partial byte only loses bits the data clears.
    matches = matches && (after[k] & before[k] & data[k]) == (before[k] & data[k]) &&
              (after[k] | before[k]) == before[k];
    if (matches) return static_cast<int>(k);
  }
  return -1;
}

TEST(EmulatedFlashTest, Tear_W25qPageProgram_LeavesPartialPageReproducibly) {
  PowerSupply power;
  EmulatedFlash flash(kSmallExternal, kW25q128Timing, &power);
  const std::vector<uint8_t> before = flash.raw();
  // Every byte clears at least four bits, so a partly programmed byte is visible as such.
  std::vector<uint8_t> data(256);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<uint8_t>((i * 7) & 0x0F);

  auto torn_page = [&](uint64_t seed) {
    flash.raw() = before;
    power.PowerOn();
    power.Arm(FaultPlan{.cut_before = 0, .tear = 1, .seed = seed});
    EXPECT_EQ(flash.Program(0x100, View(data)), StatusCode::kPowerLost);
    EXPECT_TRUE(power.lost());
    EXPECT_EQ(power.ops_since_arm(), 1u);
    return Slice(flash, 0x100, 256);
  };

  const std::vector<uint8_t> untouched(256, 0xFF);
  std::set<int> splits;
  int partial_bytes = 0;  // the byte at the split is neither old nor fully programmed
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const std::vector<uint8_t> torn = torn_page(seed);
    const int split = TornProgramSplit(untouched, data, torn);
    ASSERT_GE(split, 0) << "seed " << seed;
    splits.insert(split);
    if (torn[split] != 0xFF && torn[split] != data[split]) ++partial_bytes;
    EXPECT_EQ(torn_page(seed), torn) << "seed " << seed;  // same seed, same bytes
  }
  // The split point is drawn over the page (8 draws from 256) and the partial byte mixed.
  EXPECT_GE(splits.size(), 6u);
  EXPECT_LT(*splits.begin(), 192);
  EXPECT_GE(partial_bytes, 4);
  EXPECT_NE(torn_page(1), torn_page(2));
  // Nothing outside the page moved.
  EXPECT_EQ(Slice(flash, 0, 0x100), std::vector<uint8_t>(0x100, 0xFF));
  EXPECT_EQ(Slice(flash, 0x200, 0x100), std::vector<uint8_t>(0x100, 0xFF));
}

TEST(EmulatedFlashTest, Tear_ThirdWordOfInternalProgram_EarlierWordsDoneLaterUntouched) {
  PowerSupply power;
  EmulatedFlash flash(kSmallInternal, kStm32f4InternalTiming, &power);
  const std::vector<uint8_t> data(16, 0x00);
  power.Arm(FaultPlan{.cut_before = 0, .tear = 3, .seed = 42});
  EXPECT_EQ(flash.Program(0x800, View(data)), StatusCode::kPowerLost);
  EXPECT_EQ(flash.counters().program_ops, 3u);
  EXPECT_EQ(Slice(flash, 0x800, 8), std::vector<uint8_t>(8, 0x00));
  EXPECT_GE(TornProgramSplit(std::vector<uint8_t>(4, 0xFF), std::vector<uint8_t>(4, 0x00),
                             Slice(flash, 0x808, 4)),
            0);
  EXPECT_EQ(Slice(flash, 0x80C, 4), std::vector<uint8_t>(4, 0xFF));
}

TEST(EmulatedFlashTest, Tear_SectorErase_LeavesMixOfErasedOldAndBetweenReproducibly) {
  PowerSupply power;
  EmulatedFlash flash(kSmallExternal, kW25q128Timing, &power);
  constexpr uint8_t kOld = 0x24;
  std::fill(flash.raw().begin(), flash.raw().end(), kOld);
  const std::vector<uint8_t> before = flash.raw();

  auto torn_sector = [&](uint64_t seed) {
    flash.raw() = before;
    power.PowerOn();
    power.Arm(FaultPlan{.cut_before = 0, .tear = 1, .seed = seed});
    EXPECT_EQ(flash.Erase(0x3000, 0x1000), StatusCode::kPowerLost);
    return Slice(flash, 0x3000, 0x1000);
  };

  const std::vector<uint8_t> torn = torn_sector(5);
  int erased = 0;
  int old = 0;
  int between = 0;
  for (const uint8_t b : torn) {
    ASSERT_EQ(b & kOld, kOld);  // erase only sets bits
    if (b == 0xFF) {
      ++erased;
    } else if (b == kOld) {
      ++old;
    } else {
      ++between;
    }
  }
  // About a third each of 4096 bytes; far from 0 whatever the seed.
  EXPECT_GT(erased, 1000);
  EXPECT_GT(old, 1000);
  EXPECT_GT(between, 1000);
  EXPECT_EQ(torn_sector(5), torn);
  EXPECT_NE(torn_sector(6), torn);
  EXPECT_EQ(Slice(flash, 0x2000, 0x1000), std::vector<uint8_t>(0x1000, kOld));
  EXPECT_EQ(Slice(flash, 0x4000, 0x1000), std::vector<uint8_t>(0x1000, kOld));
  EXPECT_EQ(flash.wear()[3], 3u);  // three torn erases, each stressed the sector
}

TEST(EmulatedFlashTest, Tear_SameSeedDifferentOpNumber_LeavesDifferentBytes) {
  PowerSupply power;
  EmulatedFlash flash(kSmallExternal, kW25q128Timing, &power);
  std::vector<uint8_t> data(256, 0x00);
  power.Arm(FaultPlan{.cut_before = 0, .tear = 1, .seed = 3});
  EXPECT_EQ(flash.Program(0x000, View(data)), StatusCode::kPowerLost);
  power.PowerOn();
  power.Arm(FaultPlan{.cut_before = 0, .tear = 2, .seed = 3});
  ASSERT_EQ(flash.Program(0x200, View(data)), StatusCode::kOk);
  EXPECT_EQ(flash.Program(0x100, View(data)), StatusCode::kPowerLost);
  EXPECT_NE(Slice(flash, 0x000, 256), Slice(flash, 0x100, 256));
}

// --- A board: two devices, one supply -----------------------------------------------------

TEST(BoardFlashTest, CutBefore_OpsOnBothDevices_NumberedInOneSequence) {
  BoardFlash board(kSimSmall);
  const std::vector<uint8_t> word(4, 0x00);
  board.power.Arm(FaultPlan{.cut_before = 4, .tear = 0, .seed = 0});
  ASSERT_EQ(board.flash(FlashId::kInternal).Program(0x2000, View(word)), StatusCode::kOk);  // 1
  ASSERT_EQ(board.flash(FlashId::kExternal).Program(0x0000, View(word)), StatusCode::kOk);  // 2
  ASSERT_EQ(board.flash(FlashId::kExternal).Erase(0x1000, 0x1000), StatusCode::kOk);        // 3
  EXPECT_EQ(board.flash(FlashId::kInternal).Program(0x2004, View(word)),
            StatusCode::kPowerLost);  // 4: cut
  EXPECT_EQ(board.power.ops_since_arm(), 3u);
  EXPECT_EQ(board.internal.raw()[0x2004], 0xFF);

  // The other device is dead too.
  std::vector<uint8_t> out(4);
  EXPECT_EQ(board.flash(FlashId::kExternal).Read(0, ByteSpan(out.data(), out.size())),
            StatusCode::kPowerLost);
  board.power.PowerOn();
  EXPECT_EQ(board.flash(FlashId::kExternal).Read(0, ByteSpan(out.data(), out.size())),
            StatusCode::kOk);
  EXPECT_EQ(out, word);
}

TEST(BoardFlashTest, Counters_OpsOnBothDevices_AreSummedWithEachDevicesTiming) {
  BoardFlash board(kSimSmall);
  EXPECT_EQ(&board.flash(FlashId::kInternal), &board.internal);
  EXPECT_EQ(&board.flash(FlashId::kExternal), &board.external);
  EXPECT_EQ(board.internal.size(), kSimSmall.internal.total_size());
  EXPECT_EQ(board.external.size(), kSimSmall.external.total_size());
  const std::vector<uint8_t> data(8, 0x00);
  ASSERT_EQ(board.internal.Program(0x2000, View(data)), StatusCode::kOk);  // 2 word ops
  ASSERT_EQ(board.external.Program(0x0000, View(data)), StatusCode::kOk);  // 1 page op
  ASSERT_EQ(board.external.Erase(0x1000, 0x1000), StatusCode::kOk);
  const FlashCounters sum = board.counters();
  EXPECT_EQ(sum.program_ops, 3u);
  EXPECT_EQ(sum.program_bytes, 16u);
  EXPECT_EQ(sum.erase_ops_of(4096), 1u);
  EXPECT_EQ(sum.time_typ_us, 2 * 16u + 700u + 45'000u);
  EXPECT_EQ(board.power.total_ops(), 4u);
  board.ResetCounters();
  EXPECT_EQ(board.counters().program_ops, 0u);
}

}  // namespace
}  // namespace ota::sim
