// The power-cut suite: every flash operation of an upgrade, cut and torn, on the scaled-down
// profile; a seeded sample on the full-size FIRE profile (label "long").
#include <gtest/gtest.h>

#include <cstdio>

#include "powercut.hpp"
#include "test_images.hpp"
#include "test_installers.hpp"

namespace ota::testing {
namespace {

class PowerCut : public ::testing::Test {
 protected:
  Scenario Make(const std::string& name, const BoardProfile& profile, uint32_t old_size,
                uint32_t new_size) {
    const uint32_t load = profile.internal_base + profile.partition(PartitionId::kRunning).offset;
    Scenario s;
    s.name = name;
    s.profile = &profile;
    s.old_image = MakeTestImage("FOTAV1", old_size, load, 11);
    s.new_image = MakeTestImage("FOTAV2", new_size, load, 22);
    s.package = s.new_image;
    s.installer = &plain_;
    return s;
  }
  void Sweep(const Scenario& s, const SweepOptions& options) {
    const SweepResult r = RunSweep(s, options);
    std::printf("%s\n", SummaryLine(s.name, r).c_str());
    std::printf("powercut-detail: %s ops=%llu unexpected=%llu\n", s.name.c_str(),
                static_cast<unsigned long long>(r.total_ops),
                static_cast<unsigned long long>(r.unexpected));
    for (const std::string& f : r.failures)
      std::printf("  replay: %s\n", f.c_str());
    EXPECT_GT(r.total_ops, 0u);
    EXPECT_EQ(r.bricked, 0u);
    EXPECT_EQ(r.unexpected, 0u) << "a cut changed the outcome of the upgrade";
    EXPECT_EQ(r.recovered, r.cuts + r.torn);
    if (options.stride == 1) {
      EXPECT_EQ(r.cuts, r.total_ops) << "not every operation was cut";
    }
  }

  PlainImageInstaller plain_;
  CorruptingInstaller corrupting_;
};

// Small images that still span several sectors of each kind: 9000 -> 11000 bytes moves the
// image across the 8 KB internal sectors and the 4 KB SPI sectors.
TEST_F(PowerCut, FullInstall_EveryOperation_NeverBricks) {
  Sweep(Make("full-install", kSimSmall, 9000, 11000), {});
}

TEST_F(PowerCut, ShrinkingImage_EveryOperation_NeverBricks) {
  Sweep(Make("shrinking-image", kSimSmall, 17000, 6000), {});
}

TEST_F(PowerCut, TargetMismatchRecovery_EveryOperation_NeverBricks) {
  Scenario s = Make("target-mismatch-recover", kSimSmall, 9000, 11000);
  s.installer = &corrupting_;
  s.expect = Expect::kOldImage;
  Sweep(s, {});
}

TEST_F(PowerCut, TrialRevert_EveryOperation_NeverBricks) {
  Scenario s = Make("trial-revert", kSimSmall, 9000, 11000);
  s.app_confirms = false;
  s.expect = Expect::kOldImage;
  Sweep(s, {});
}

TEST_F(PowerCut, RefusedPackage_EveryOperation_NeverBricks) {
  Scenario s = Make("refused-package", kSimSmall, 9000, 11000);
  s.package[4000] ^= 0x01;
  s.expect = Expect::kOldImage;
  Sweep(s, {});
}

TEST_F(PowerCut, DoubleCut_EveryOperationThenRandomInRecovery_NeverBricks) {
  SweepOptions options;
  options.double_cut = true;
  options.seed = 7;
  Sweep(Make("double-cut", kSimSmall, 9000, 11000), options);
}

TEST_F(PowerCut, DoubleCutRecovery_EveryOperationThenRandom_NeverBricks) {
  Scenario s = Make("double-cut-recover", kSimSmall, 9000, 11000);
  s.installer = &corrupting_;
  s.expect = Expect::kOldImage;
  SweepOptions options;
  options.double_cut = true;
  options.seed = 9;
  Sweep(s, options);
}

// Full-size FIRE profile: 300 KB -> 320 KB images, ~100k operations; a seeded sample.
TEST_F(PowerCut, Long_FireProfileFullInstall_SampledNeverBricks) {
  SweepOptions options;
  options.stride = 211;
  options.random_samples = 300;
  options.seed = 3;
  Sweep(Make("fire-full-install", kStm32f429Fire, 300 * 1024, 320 * 1024), options);
}

TEST_F(PowerCut, Long_FireProfileRecovery_SampledNeverBricks) {
  Scenario s = Make("fire-target-mismatch-recover", kStm32f429Fire, 300 * 1024, 320 * 1024);
  s.installer = &corrupting_;
  s.expect = Expect::kOldImage;
  SweepOptions options;
  options.stride = 499;
  options.random_samples = 200;
  options.double_cut = true;
  options.seed = 5;
  Sweep(s, options);
}

TEST_F(PowerCut, Long_FireProfileTrialRevert_SampledNeverBricks) {
  Scenario s = Make("fire-trial-revert", kStm32f429Fire, 300 * 1024, 320 * 1024);
  s.app_confirms = false;
  s.expect = Expect::kOldImage;
  SweepOptions options;
  options.stride = 1999;
  options.random_samples = 100;
  options.seed = 6;
  Sweep(s, options);
}

}  // namespace
}  // namespace ota::testing
