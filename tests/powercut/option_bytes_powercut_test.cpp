// Power cuts during the loader's first-boot write protection: EnsureWriteProtected's
// option-byte program is cut, and torn with many seeds, at every operation; the board powers
// on and the loader runs it again. A clean cut must always end with the loader's sectors
// protected and nothing else changed. A tear is the STM32F4's own hazard (the configuration
// sector is erased, then programmed): it can change RDP and the user bits before the loader
// runs again, which the loader can neither detect as such nor undo; the sweep checks that the
// loader's second run then does exactly the right thing with what it finds, and counts the
// boards a real F4 would not boot (PCROP mode over sectors the loader must read).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "ota/option_bytes.hpp"
#include "ota/profile.hpp"
#include "sim/board_flash.hpp"

namespace ota::testing {
namespace {

using sim::BoardFlash;
using sim::FaultPlan;

struct Config {
  const char* name;
  const BoardProfile* profile;
  UserOptionBytes start;
};

struct Tally {
  uint64_t ops = 0;
  uint64_t cuts = 0;
  uint64_t torn = 0;
  uint64_t recovered = 0;
  uint64_t cuts_recovered = 0;
  uint64_t bricked = 0;
  uint64_t sequence_failures = 0;  // the loader's second run did not do what it should
  uint64_t changed_by_tear = 0;    // the tear changed bits the loader never writes
  uint64_t rdp_raised = 0;         // ... among them: level 0 became level 1
  uint64_t pcrop_mode = 0;         // ... SPRMOD set: PCROP mode (locked on a real F4)
  uint64_t dual_bank = 0;          // ... DB1M set: another sector layout
  std::vector<std::string> failures;
};

// What the loader's run must do with `found`.
WriteProtectResult ExpectedResult(const UserOptionBytes& found, uint32_t mask) {
  if (found.WriteProtected(mask)) return WriteProtectResult::kAlreadyProtected;
  if (found.rdp_level() == RdpLevel::kLevel2) return WriteProtectResult::kFrozen;
  if (found.pcrop_mode()) return WriteProtectResult::kPcropMode;
  if (!RdpSurvivesTear(found.rdp())) return WriteProtectResult::kUnsafeRdp;
  return WriteProtectResult::kProtected;
}

std::string Describe(const Config& c, const FaultPlan& plan, const UserOptionBytes& found,
                     const UserOptionBytes& final_value) {
  char buf[200];
  std::snprintf(buf, sizeof(buf),
                "%s cut_before=%llu tear=%llu seed=%llu: after the fault 0x%08X, final 0x%08X",
                c.name, static_cast<unsigned long long>(plan.cut_before),
                static_cast<unsigned long long>(plan.tear),
                static_cast<unsigned long long>(plan.seed), found.word(), final_value.word());
  return buf;
}

// One interrupted first boot, then boots until EnsureWriteProtected answers.
void Run(const Config& c, const FaultPlan& plan, Tally& tally) {
  const uint32_t mask = *LoaderSectorMask(*c.profile);
  const uint32_t must_read =
      mask | *SectorMask(c.profile->internal, c.profile->partition(PartitionId::kRunning));
  BoardFlash board(*c.profile);
  board.option_bytes.set(c.start);
  board.power.Arm(plan);
  const Result<WriteProtectResult> first = EnsureWriteProtected(board.option_bytes, mask);
  EXPECT_EQ(first.status(), StatusCode::kPowerLost) << "the fault missed the program";
  const UserOptionBytes found = board.option_bytes.value();

  Result<WriteProtectResult> r = StatusCode::kPowerLost;
  for (int boot = 0; boot < 3 && !r.ok(); ++boot) {
    board.power.PowerOn();
    r = EnsureWriteProtected(board.option_bytes, mask);
  }
  const UserOptionBytes final_value = board.option_bytes.value();

  const WriteProtectResult want = ExpectedResult(found, mask);
  const UserOptionBytes want_value =
      want == WriteProtectResult::kProtected ? found.WithWriteProtected(mask) : found;
  const bool sequence_ok = r.ok() && *r == want && final_value == want_value;
  const uint32_t loader_bits = mask << UserOptionBytes::kNwrpShift;
  const bool changed = (found.word() | loader_bits) != (c.start.word() | loader_bits);
  const bool recovered = sequence_ok && final_value == c.start.WithWriteProtected(mask);
  // RM0090, PCROP: a PCROP sector cannot be read as data, so neither the loader's constants
  // nor the image it must hash are readable: the F4 does not boot.
  const bool locked = final_value.pcrop_mode() && (final_value.nwrp() & must_read) != 0;

  ++(plan.cut_before != 0 ? tally.cuts : tally.torn);
  if (recovered) ++tally.recovered;
  if (recovered && plan.cut_before != 0) ++tally.cuts_recovered;
  if (!sequence_ok) ++tally.sequence_failures;
  if (!sequence_ok || locked) ++tally.bricked;
  if (changed) {
    ++tally.changed_by_tear;
    if (c.start.rdp_level() == RdpLevel::kLevel0 && found.rdp_level() == RdpLevel::kLevel1) {
      ++tally.rdp_raised;
    }
    if (found.pcrop_mode() && !c.start.pcrop_mode()) ++tally.pcrop_mode;
    if ((found.user() & UserOptionBytes::kDb1m) != (c.start.user() & UserOptionBytes::kDb1m)) {
      ++tally.dual_bank;
    }
  }
  if (!sequence_ok && tally.failures.size() < 5) {
    tally.failures.push_back(Describe(c, plan, found, final_value));
  }
}

void Sweep(const Config& c, uint64_t seeds, Tally& tally) {
  // The uninterrupted run numbers the operations.
  BoardFlash board(*c.profile);
  board.option_bytes.set(c.start);
  board.power.Arm(FaultPlan{});
  const Result<WriteProtectResult> r =
      EnsureWriteProtected(board.option_bytes, *LoaderSectorMask(*c.profile));
  ASSERT_TRUE(r.ok()) << r.status().name();
  ASSERT_EQ(*r, WriteProtectResult::kProtected) << c.name;
  const uint64_t ops = board.power.ops_since_arm();
  tally.ops += ops;
  for (uint64_t n = 1; n <= ops; ++n) {
    Run(c, FaultPlan{n, 0, 0}, tally);
    for (uint64_t seed = 1; seed <= seeds; ++seed)
      Run(c, FaultPlan{0, n, seed}, tally);
  }
}

TEST(OptionBytesPowerCut, EnsureWriteProtected_CutAndTornAtEveryOperation) {
  const UserOptionBytes factory;
  // A production-like level-1 board whose integrator set other options: BOR level 3
  // (BOR_LEV = 00), reset on standby off, sector 11 already protected.
  const UserOptionBytes level1 =
      factory.WithRdp(kRdpLevel1)
          .WithUser(factory.user() & ~UserOptionBytes::kBorLevMask & ~UserOptionBytes::kNRstStdby)
          .WithWriteProtected(1u << 11);
  const Config configs[] = {
      {"fire-factory", &kStm32f429Fire, factory},
      {"fire-level1", &kStm32f429Fire, level1},
      {"small-factory", &kSimSmall, factory},
  };
  constexpr uint64_t kSeeds = 64;
  Tally t;
  for (const Config& c : configs)
    Sweep(c, kSeeds, t);

  std::printf("powercut: option-bytes cuts=%llu torn=%llu recovered=%llu bricked=%llu\n",
              static_cast<unsigned long long>(t.cuts), static_cast<unsigned long long>(t.torn),
              static_cast<unsigned long long>(t.recovered),
              static_cast<unsigned long long>(t.bricked));
  std::printf(
      "powercut-detail: option-bytes ops=%llu sequence-failures=%llu torn-changed-options=%llu "
      "rdp-level-raised=%llu pcrop-mode=%llu dual-bank=%llu\n",
      static_cast<unsigned long long>(t.ops), static_cast<unsigned long long>(t.sequence_failures),
      static_cast<unsigned long long>(t.changed_by_tear),
      static_cast<unsigned long long>(t.rdp_raised), static_cast<unsigned long long>(t.pcrop_mode),
      static_cast<unsigned long long>(t.dual_bank));
  for (const std::string& f : t.failures)
    std::printf("  replay: %s\n", f.c_str());

  EXPECT_EQ(t.ops, 3u) << "one option-byte program per unprotected board";
  EXPECT_EQ(t.cuts, t.ops);
  EXPECT_EQ(t.torn, t.ops * kSeeds);
  // The loader's own part is never wrong, whatever it finds.
  EXPECT_EQ(t.sequence_failures, 0u);
  // A clean cut always recovers, with RDP and the user bits as they were; a tear recovers
  // fully only when it happened to change nothing the loader does not write.
  EXPECT_EQ(t.recovered + t.changed_by_tear, t.cuts + t.torn);
  EXPECT_EQ(t.cuts_recovered, t.cuts);
  // Every board a real F4 would not boot is one a tear put in PCROP mode: none comes from a
  // clean cut or from the loader.
  EXPECT_EQ(t.bricked, t.pcrop_mode);
}

}  // namespace
}  // namespace ota::testing
