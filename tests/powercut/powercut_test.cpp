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
    // Past the first OTP word (32 bits) so burning it takes several programs, each cut.
    spec.security_counter = 70;
    s.new_security_counter = 70;
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

// The factory's first power-on (write protection, then the trust record that names the
// factory image), cut at every operation and torn at every flash operation: the board always
// ends up protected, vouching for exactly the factory image, and booting it. Tearing the
// option-byte program itself is the F4's hazard, not the loader's: option_bytes_powercut_test.
TEST_F(PowerCut, FirstBoot_EveryOperation_RecordsTheFactoryImage) {
  const BoardProfile& profile = kSimSmall;
  const uint32_t load = profile.internal_base + profile.partition(PartitionId::kRunning).offset;
  const std::vector<uint8_t> image = MakeTestImage("FOTAV1", 9000, load, 11);
  uint64_t total = 0;
  {
    SimBoard clean(profile);
    clean.FlashRunning(image);
    clean.power().Arm({});
    ASSERT_TRUE(clean.Boot().ok());
    total = clean.power().ops_since_arm();
  }
  ASSERT_GT(total, 2u);
  SweepResult r;
  r.total_ops = total;
  for (uint64_t n = 1; n <= total; ++n) {
    for (int torn = 0; torn <= 1; ++torn) {
      SimBoard board(profile);
      board.FlashRunning(image);
      sim::FaultPlan plan;
      (torn ? plan.tear : plan.cut_before) = n;
      plan.seed = 4242 + n;
      board.power().Arm(plan);
      if (torn && n == 1) continue;  // op 1 is the option-byte program (see above)
      (void)board.Boot();
      board.power().PowerOn();
      board.power().Arm({});
      const Result<BootDecision> d = board.Boot();
      torn ? ++r.torn : ++r.cuts;
      const bool ok = d.ok() && d->boot_app && board.RunningHolds(image) &&
                      d->trust.confirmed.Matches(d->image.total_size, d->image.sha256) &&
                      !d->trust.trial.present() && IsWriteProtected(d->write_protect) &&
                      board.flash().option_bytes.value().WriteProtected(0x3);
      ok ? ++r.recovered : ++r.bricked;
      if (!ok && r.failures.size() < 5) {
        r.failures.push_back(std::string(torn ? "tear=" : "cut_before=") + std::to_string(n));
      }
    }
  }
  std::printf("%s\n", SummaryLine("first-boot", r).c_str());
  for (const std::string& f : r.failures)
    std::printf("  replay: first-boot %s\n", f.c_str());
  EXPECT_EQ(r.bricked, 0u);
  EXPECT_EQ(r.cuts, total);
  EXPECT_EQ(r.torn, total - 1);
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
