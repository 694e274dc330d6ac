// The power-cut suite: every flash operation of an upgrade, cut and torn, on the scaled-down
// profile; a seeded sample on the full-size FIRE profile (label "long").
#include <gtest/gtest.h>

#include <cstdio>

#include "ota/host/image_builder.hpp"
#include "ota/image.hpp"
#include "powercut.hpp"
#include "test_images.hpp"
#include "test_installers.hpp"
#include "test_packages.hpp"

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

  // A signed package of the scenario's new image (a diff against its old one, or full).
  void UsePackage(Scenario& s, PackageKind kind) {
    host::PackageSpec spec;
    spec.kind = kind;
    spec.version = "FOTAV2";
    spec.image = s.new_image;
    if (kind == PackageKind::kDiff) {
      spec.from_version = "FOTAV1";
      spec.source = s.old_image;
    }
    spec.profile = s.profile;
    s.package = MakePackage(spec, &key_);
    s.installer = &signed_;
  }

  PlainImageInstaller plain_;
  CorruptingInstaller corrupting_;
  TestKey key_;
  TrustedKey keys_[1] = {key_.trusted()};
  PackageInstaller signed_{PackagePolicy{Span<const TrustedKey>(keys_), false}};
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

TEST_F(PowerCut, SignedFullPackage_EveryOperation_NeverBricks) {
  Scenario s = Make("signed-full", kSimSmall, 9000, 11000);
  UsePackage(s, PackageKind::kFull);
  Sweep(s, {});
}

// The new image keeps most of the old one, as a real update does, so the diff is small and
// the decoder reads the old image from the backup region while the slot is rewritten.
TEST_F(PowerCut, SignedDiffPackage_EveryOperation_NeverBricks) {
  Scenario s = Make("signed-diff", kSimSmall, 9000, 11000);
  std::copy(s.old_image.begin() + 0x300, s.old_image.begin() + 8000, s.new_image.begin() + 0x300);
  s.new_image.resize(s.new_image.size() - kImageTrailerSize);
  std::fill(s.new_image.begin() + kImageHeaderOffset,
            s.new_image.begin() + kImageHeaderOffset + kImageHeaderSize, 0);
  const uint32_t load =
      s.profile->internal_base + s.profile->partition(PartitionId::kRunning).offset;
  s.new_image = host::StampImage(std::move(s.new_image), "FOTAV2", load).image;
  UsePackage(s, PackageKind::kDiff);
  ASSERT_LT(s.package.size(), 6000u);
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
