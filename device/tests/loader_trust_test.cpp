// Attacks on the loader's root of trust (docs/DESIGN.md, "Root of trust"). The attacker owns
// the external flash (boot state, download region, backup) and nothing inside the MCU; the
// loader must then boot, back up and restore only the images its trust record names, and
// judge packages by the OTP counter. Each test here passed unnoticed on the loader before the
// trust record (bf6ef1b): that one believed the boot state and booted any intact image.
#include "ota/loader.hpp"
#include "ota/record_log.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "ota/bytes.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/otp_counter.hpp"
#include "ota/package_installer.hpp"
#include "ota/sha256.hpp"
#include "sim_board.hpp"
#include "test_images.hpp"
#include "test_installers.hpp"
#include "test_packages.hpp"

namespace ota {
namespace {

using testing::CorruptingInstaller;
using testing::MakePackage;
using testing::MakeTestImage;
using testing::SimBoard;
using testing::TestKey;
using testing::WithVectors;

// ---- Helpers ----

// True if `d` boots exactly `image` (its size and its trailer, i.e. its SHA-256).
bool Boots(const BootDecision& d, const std::vector<uint8_t>& image) {
  return d.boot_app && d.image.total_size == image.size() &&
         std::equal(image.end() - kImageTrailerSize, image.end(), d.image.sha256);
}

bool Names(const TrustedImage& t, const std::vector<uint8_t>& image) {
  return t.Matches(static_cast<uint32_t>(image.size()), &image[image.size() - kImageTrailerSize]);
}

const Partition& PartitionOf(SimBoard& board, PartitionId id) {
  return board.profile().partition(id);
}

// The raw cells of the device that holds partition `id`.
std::vector<uint8_t>& CellsOf(SimBoard& board, PartitionId id) {
  return board.flash().emulated(PartitionOf(board, id).flash).raw();
}

// Writes `bytes` over partition `id` (the rest erased), as someone with a programmer would:
// no flash operation is counted.
void WriteRaw(SimBoard& board, PartitionId id, const std::vector<uint8_t>& bytes) {
  const Partition& p = PartitionOf(board, id);
  ASSERT_LE(bytes.size(), p.size);
  std::vector<uint8_t>& cells = CellsOf(board, id);
  std::fill(cells.begin() + p.offset, cells.begin() + p.offset + p.size, 0xFF);
  std::copy(bytes.begin(), bytes.end(), cells.begin() + p.offset);
}

void EraseRaw(SimBoard& board, PartitionId id) {
  WriteRaw(board, id, {});
}

BootStore StoreOf(SimBoard& board) {
  Flash* const flashes[kFlashCount] = {&board.flash().internal, &board.flash().external};
  return BootStore(OpenPartition(board.profile(), flashes, PartitionId::kBootStateA),
                   OpenPartition(board.profile(), flashes, PartitionId::kBootStateB));
}

// Appends `r` to the boot state with a valid sequence number and CRC: what anyone who can write
// the SPI flash can do.
void Forge(SimBoard& board, BootRecord r) {
  ASSERT_TRUE(StoreOf(board).Save(r).ok());
}

// An ota::Flash in front of another that flips one byte of the Nth read (1-based) touching
// `watched`, counted while armed.
class FlippingFlash final : public Flash {
 public:
  FlippingFlash(Flash& inner, const Partition& watched, uint32_t flip_read, bool armed = true)
      : Flash(inner.geometry()),
        inner_(inner),
        begin_(watched.offset),
        end_(watched.offset + watched.size),
        flip_read_(flip_read),
        armed_(armed) {}

  void Arm() { armed_ = true; }
  bool flipped() const { return flipped_; }
  uint32_t reads() const { return reads_; }

 private:
  Status DoRead(uint32_t addr, ByteSpan out) override {
    OTA_TRY(inner_.Read(addr, out));
    const uint32_t last = addr + static_cast<uint32_t>(out.size());
    if (!armed_ || out.empty() || last <= begin_ || addr >= end_) return Status::Ok();
    if (++reads_ == flip_read_) {
      const uint32_t from = std::max(addr, begin_);
      const uint32_t to = std::min(last, end_);
      out[from - addr + (to - from) / 2] ^= 0x10;
      flipped_ = true;
    }
    return Status::Ok();
  }
  Status DoProgram(uint32_t addr, ConstByteSpan data) override {
    return inner_.Program(addr, data);
  }
  Status DoErase(uint32_t addr, uint32_t len) override { return inner_.Erase(addr, len); }

  Flash& inner_;
  uint32_t begin_;
  uint32_t end_;
  uint32_t flip_read_;
  bool armed_;
  bool flipped_ = false;
  uint32_t reads_ = 0;
};

// A CorruptingInstaller that arms `flip` as it starts writing the new image: from there on the
// only reads of the backup in that boot are the restore's.
class ArmingInstaller final : public Installer {
 public:
  explicit ArmingInstaller(FlippingFlash& flip) : flip_(flip) {}
  Result<PackageInfo> Check(const InstallerContext& ctx, FailReason* reason) override {
    return corrupting_.Check(ctx, reason);
  }
  Result<PackageInfo> Inspect(const InstallerContext& ctx, FailReason* reason) override {
    return corrupting_.Inspect(ctx, reason);
  }
  Status Apply(const InstallerContext& ctx, const FlashArea& old, SlotWriter& out) override {
    flip_.Arm();
    return corrupting_.Apply(ctx, old, out);
  }

 private:
  FlippingFlash& flip_;
  CorruptingInstaller corrupting_;
};

// An SPI flash that no longer answers.
class DeadFlash final : public Flash {
 public:
  explicit DeadFlash(const FlashGeometry& geometry) : Flash(geometry) {}

 private:
  Status DoRead(uint32_t, ByteSpan) override { return StatusCode::kIoError; }
  Status DoProgram(uint32_t, ConstByteSpan) override { return StatusCode::kIoError; }
  Status DoErase(uint32_t, uint32_t) override { return StatusCode::kIoError; }
};

// An internal flash whose `n`th read (counted from construction) fails with an I/O error.
class FailingReadFlash final : public Flash {
 public:
  FailingReadFlash(Flash& inner, uint32_t n) : Flash(inner.geometry()), inner_(inner), n_(n) {}
  bool failed() const { return failed_; }

 private:
  Status DoRead(uint32_t addr, ByteSpan out) override {
    if (++reads_ == n_) {
      failed_ = true;
      return StatusCode::kIoError;
    }
    return inner_.Read(addr, out);
  }
  Status DoProgram(uint32_t addr, ConstByteSpan data) override {
    return inner_.Program(addr, data);
  }
  Status DoErase(uint32_t addr, uint32_t len) override { return inner_.Erase(addr, len); }

  Flash& inner_;
  uint32_t n_;
  uint32_t reads_ = 0;
  bool failed_ = false;
};

// An OTP whose programs fail with an I/O error (a flash controller that never finishes).
class StuckOtp final : public Flash {
 public:
  explicit StuckOtp(Flash& inner) : Flash(inner.geometry()), inner_(inner) {}

 private:
  Status DoRead(uint32_t addr, ByteSpan out) override { return inner_.Read(addr, out); }
  Status DoProgram(uint32_t, ConstByteSpan) override { return StatusCode::kIoError; }
  Status DoErase(uint32_t, uint32_t) override { return StatusCode::kUnsupported; }

  Flash& inner_;
};

// `image` with its header cleared and stamped again as `version` (a new trailer).
std::vector<uint8_t> Restamp(std::vector<uint8_t> image, const char* version, uint32_t at) {
  image.resize(image.size() - kImageTrailerSize);
  std::fill(image.begin() + kImageHeaderOffset,
            image.begin() + kImageHeaderOffset + kImageHeaderSize, 0);
  host::StampResult stamped = host::StampImage(std::move(image), version, at);
  EXPECT_TRUE(stamped.error.empty()) << stamped.error;
  return stamped.image;
}

// ---- The board: kSimSmall, factory image FOTAV1 recorded by its first boot ----

class LoaderTrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const uint32_t at = board_.running_address();
    old_ = MakeTestImage("FOTAV1", 9000, at, 1);
    new_ = MakeTestImage("FOTAV2", 11000, at, 2);
    third_ = MakeTestImage("FOTAV3", 10000, at, 3);
    // Valid header, SHA-256 trailer and vector table, but never installed from a package.
    forged_ = MakeTestImage("EVIL", 10000, at, 666);
    board_.FlashRunning(old_);
    const Result<BootDecision> first = board_.Boot();
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE(Boots(*first, old_));
  }

  std::vector<uint8_t> Signed(const std::vector<uint8_t>& image, const char* version,
                              uint32_t counter) const {
    host::PackageSpec spec;
    spec.kind = PackageKind::kFull;
    spec.version = version;
    spec.image = image;
    spec.security_counter = counter;
    spec.profile = &kSimSmall;
    return MakePackage(spec, &key_);
  }

  BootDecision BootOk(Installer& installer) {
    const Result<BootDecision> d = board_.Boot(installer);
    EXPECT_TRUE(d.ok()) << d.status().name();
    return d.ok() ? d.value() : BootDecision{};
  }
  BootDecision BootOk() { return BootOk(installer_); }

  // new_ installed from a signed package with `counter`, confirmed by the app, and the boot
  // after the confirm (which burns the counter into OTP).
  void InstallAndConfirm(uint32_t counter) {
    ASSERT_TRUE(board_.Stage(Signed(new_, "FOTAV2", counter), "FOTAV2").ok());
    ASSERT_TRUE(Boots(BootOk(), new_));
    ASSERT_TRUE(board_.Confirm().ok());
    ASSERT_TRUE(Boots(BootOk(), new_));
    ASSERT_EQ(board_.OtpCounterValue().value(), counter);
  }

  // A boot through a loader whose external flash flips a byte of the Nth backup read.
  BootDecision BootWithFlip(uint32_t flip_read, bool* flipped) {
    FlippingFlash external(board_.flash().external, PartitionOf(board_, PartitionId::kBackup),
                           flip_read);
    LoaderDevices devices = board_.Devices();
    devices.external = &external;
    PlainImageInstaller plain;
    Loader loader(board_.profile(), devices, plain, ByteSpan(work_));
    const Result<BootDecision> d = loader.Boot();
    EXPECT_TRUE(d.ok()) << d.status().name();
    *flipped = external.flipped();
    return d.ok() ? d.value() : BootDecision{};
  }

  // Reads of the backup while Recover proves an image of `size` bytes there (ValidateImage:
  // header, trailer, the hashed bytes in work-sized chunks, the vector table).
  uint32_t ProvingReads(size_t size) const {
    constexpr uint32_t kChunk = sizeof(work_);
    const uint32_t hashed = static_cast<uint32_t>(size) - kImageTrailerSize;
    return 3 + (hashed + kChunk - 1) / kChunk;
  }

  // Stages new_ (plain) and boots it until its trial boots are used up: the next boot reverts.
  void RunTrialOut() {
    ASSERT_TRUE(board_.Stage(new_, "FOTAV2").ok());
    for (uint32_t boot = 1; boot <= kSimSmall.trial_boots; ++boot) {
      const Result<BootDecision> d = board_.Boot();
      ASSERT_TRUE(d.ok());
      ASSERT_TRUE(Boots(*d, new_)) << "trial boot " << boot;
    }
    ASSERT_EQ(board_.Record()->trial_boots_left, 0u);
  }

  SimBoard board_{kSimSmall};
  TestKey key_;
  TrustedKey keys_[1] = {key_.trusted()};
  PackageInstaller installer_{PackagePolicy{Span<const TrustedKey>(keys_), false}};
  uint8_t work_[1024] = {};
  std::vector<uint8_t> old_, new_, third_, forged_;
};

// 1. A self-stamped image in the backup and "recover it": the old loader copied whatever the
// backup held (it only had to be intact) over the running image and booted it.
TEST_F(LoaderTrustTest, ForgedBackup_RecoverRecord_NeverRestoredNorBooted) {
  WriteRaw(board_, PartitionId::kBackup, forged_);
  const std::vector<uint8_t> before = board_.RunningSlot();
  for (int boot = 0; boot < 4; ++boot) {  // the attacker forges the record again every boot
    BootRecord r;
    r.status = UpgradeStatus::kUpgradedOk;
    r.step = UpgradeStep::kRecover;
    r.reason = FailReason::kNotConfirmed;
    r.backup_size = static_cast<uint32_t>(forged_.size());
    Forge(board_, r);
    const BootDecision d = BootOk();
    EXPECT_TRUE(Boots(d, old_)) << "boot " << boot;
    EXPECT_FALSE(Boots(d, forged_));
    EXPECT_EQ(board_.RunningSlot(), before) << "boot " << boot;
  }
  const Result<TrustRecord> trust = board_.Trust();
  ASSERT_TRUE(trust.ok());
  EXPECT_TRUE(Names(trust->confirmed, old_));
  EXPECT_FALSE(trust->trial.present());
}

// The same during a real trial (new_ running, old_ in the backup): the attacker replaces the
// backup with the forged image. The loader never restores it; it cannot restore old_ either,
// so after kMaxRecoverAttempts it keeps the authentic trial image.
TEST_F(LoaderTrustTest, ForgedBackup_DuringTrial_TrialImageKeptNotTheForgery) {
  ASSERT_TRUE(board_.Stage(Signed(new_, "FOTAV2", 0), "FOTAV2").ok());
  ASSERT_TRUE(Boots(BootOk(), new_));
  WriteRaw(board_, PartitionId::kBackup, forged_);
  BootRecord r = board_.Record().value();
  r.step = UpgradeStep::kRecover;
  r.backup_size = static_cast<uint32_t>(forged_.size());
  Forge(board_, r);
  for (uint8_t boot = 1; boot <= kMaxRecoverAttempts; ++boot) {
    const BootDecision d = BootOk();
    EXPECT_TRUE(Boots(d, new_)) << "boot " << int{boot};
    EXPECT_TRUE(board_.RunningHolds(new_));
  }
  const BootDecision d = BootOk();
  EXPECT_TRUE(Boots(d, new_));
  EXPECT_EQ(d.record.reason, FailReason::kRecoverFailed);
  EXPECT_TRUE(Names(d.trust.confirmed, new_));
}

// 2. "Upgraded-ok, unconfirmed, no trial boots left" with the forged image in the backup: the
// old loader reverted to "the backup", i.e. installed the forgery.
TEST_F(LoaderTrustTest, ForgedBackup_UnconfirmedTrialRecord_NeverRestoredNorBooted) {
  WriteRaw(board_, PartitionId::kBackup, forged_);
  const std::vector<uint8_t> before = board_.RunningSlot();
  BootRecord r;
  r.status = UpgradeStatus::kUpgradedOk;
  r.step = UpgradeStep::kDone;
  r.trial_boots_left = 0;
  r.backup_size = static_cast<uint32_t>(forged_.size());
  Forge(board_, r);
  const BootDecision d = BootOk();
  EXPECT_TRUE(Boots(d, old_));
  EXPECT_EQ(d.record.status, UpgradeStatus::kUpgradedFailed);
  EXPECT_EQ(d.record.reason, FailReason::kNotConfirmed);
  EXPECT_EQ(board_.RunningSlot(), before);
  EXPECT_TRUE(Boots(BootOk(), old_));
  EXPECT_EQ(board_.RunningSlot(), before);
}

// 3. Both boot-state sectors erased: the old loader read the anti-rollback counter from the
// boot state, so erasing it reset the counter to 0 and any old signed package installed.
TEST_F(LoaderTrustTest, BootStateErased_LowerCounterRefused) {
  InstallAndConfirm(5);
  EraseRaw(board_, PartitionId::kBootStateA);
  EraseRaw(board_, PartitionId::kBootStateB);
  EXPECT_TRUE(Boots(BootOk(), new_));
  ASSERT_TRUE(board_.Stage(Signed(third_, "FOTAV3", 3), "FOTAV3").ok());
  const std::vector<uint8_t> before = board_.RunningSlot();
  const BootDecision d = BootOk();
  EXPECT_EQ(d.record.status, UpgradeStatus::kUpgradedFailed);
  EXPECT_EQ(d.record.reason, FailReason::kDowngrade);
  EXPECT_EQ(board_.RunningSlot(), before);
  EXPECT_TRUE(Boots(d, new_));
  EXPECT_EQ(board_.OtpCounterValue().value(), 5u);
}

TEST_F(LoaderTrustTest, BootStateErased_OtpRaisedDirectly_LowerCounterRefused) {
  OtpCounter otp(board_.flash().otp, board_.profile());
  ASSERT_TRUE(otp.Raise(5).ok());
  EraseRaw(board_, PartitionId::kBootStateA);
  EraseRaw(board_, PartitionId::kBootStateB);
  ASSERT_TRUE(board_.Stage(Signed(new_, "FOTAV2", 4), "FOTAV2").ok());
  const BootDecision d = BootOk();
  EXPECT_EQ(d.record.reason, FailReason::kDowngrade);
  EXPECT_TRUE(Boots(d, old_));
  EXPECT_TRUE(board_.RunningHolds(old_));
}

// 4. The whole W25Q128 erased: the same two assertions.
TEST_F(LoaderTrustTest, ExternalFlashErased_AuthenticImageBoots_LowerCounterRefused) {
  InstallAndConfirm(5);
  std::fill(board_.flash().external.raw().begin(), board_.flash().external.raw().end(), 0xFF);
  EXPECT_TRUE(Boots(BootOk(), new_));
  ASSERT_TRUE(board_.Stage(Signed(third_, "FOTAV3", 3), "FOTAV3").ok());
  const BootDecision d = BootOk();
  EXPECT_EQ(d.record.reason, FailReason::kDowngrade);
  EXPECT_TRUE(Boots(d, new_));
  EXPECT_TRUE(board_.RunningHolds(new_));
}

// During a trial the whole external flash is erased (and, in the second case, the forged image
// put in the backup): the boot state is gone, so the trial is over and the loader tries to go
// back to the confirmed image; its backup is gone too, so after kMaxRecoverAttempts boots it
// gives up and keeps the trial image. Every boot runs an authentic image, never the forgery,
// and OTP does not learn the trial's counter (the app never confirmed it).
TEST_F(LoaderTrustTest, ExternalFlashErasedDuringTrial_OnlyAuthenticImagesBoot) {
  for (const bool forged_backup : {false, true}) {
    SCOPED_TRACE(forged_backup ? "forged backup" : "blank backup");
    SimBoard board(kSimSmall);
    board.FlashRunning(old_);
    ASSERT_TRUE(board.Boot().ok());
    ASSERT_TRUE(board.Stage(Signed(new_, "FOTAV2", 5), "FOTAV2").ok());
    Result<BootDecision> d = board.Boot(installer_);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(Boots(*d, new_));
    std::fill(board.flash().external.raw().begin(), board.flash().external.raw().end(), 0xFF);
    if (forged_backup) WriteRaw(board, PartitionId::kBackup, forged_);
    for (uint8_t boot = 1; boot <= kMaxRecoverAttempts; ++boot) {
      d = board.Boot(installer_);
      ASSERT_TRUE(d.ok()) << d.status().name();
      EXPECT_TRUE(Boots(*d, new_)) << "boot " << int{boot};
      EXPECT_FALSE(Boots(*d, forged_));
      if (boot < kMaxRecoverAttempts) {
        EXPECT_EQ(d->record.step, UpgradeStep::kRecover);
        EXPECT_EQ(d->record.recover_attempts, boot);
      }
    }
    EXPECT_EQ(d->record.status, UpgradeStatus::kUpgradedFailed);
    EXPECT_EQ(d->record.reason, FailReason::kRecoverFailed);
    EXPECT_TRUE(Names(d->trust.confirmed, new_));
    EXPECT_FALSE(d->trust.trial.present());
    EXPECT_EQ(board.OtpCounterValue().value(), 0u);
    d = board.Boot(installer_);
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE(Boots(*d, new_));
  }
}

// 5. The factory programmer put an intact image that cannot start in the slot (header and
// trailer valid): the old loader jumped through its vector table.
TEST_F(LoaderTrustTest, FactoryImageWithBadVectorTable_NotBooted) {
  const uint32_t at = board_.running_address();
  const uint32_t image_size = static_cast<uint32_t>(old_.size()) - kImageTrailerSize;
  struct Case {
    const char* what;
    uint32_t sp, reset;
  } cases[] = {
      {"initial SP 0", 0, at | 0x401},
      {"even reset vector", 0x20030000, at + 0x400},
      {"reset vector beyond the image", 0x20030000, at + image_size + 0x101},
      {"reset vector into the loader", 0x20030000, 0x08000401},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    SimBoard board(kSimSmall);
    board.FlashRunning(WithVectors(old_, c.sp, c.reset));
    const Result<BootDecision> d = board.Boot();
    ASSERT_TRUE(d.ok());
    EXPECT_FALSE(d->boot_app);
    EXPECT_FALSE(d->trust.confirmed.present()) << "the first boot recorded an unbootable image";
    const Result<BootDecision> again = board.BootRunningOnly();
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again->boot_app);
  }
}

// 6. One flipped byte on a read of the backup while restoring it. The old loader gave up at
// once (no-bootable-image) or, with the flip in the copy, returned an I/O error every boot.
TEST_F(LoaderTrustTest, FlippedByteWhileProvingBackup_RetriedNextBoot_TrialPath) {
  RunTrialOut();
  board_.flash().ResetCounters();
  bool flipped = false;
  BootDecision d = BootWithFlip(3, &flipped);  // the first chunk of the backup's hash
  ASSERT_TRUE(flipped);
  EXPECT_EQ(d.record.status, UpgradeStatus::kUpgradedOk);
  EXPECT_EQ(d.record.step, UpgradeStep::kRecover);
  EXPECT_EQ(d.record.recover_attempts, 1u);
  // Nothing was erased before the backup was proven: the trial image is still whole.
  EXPECT_EQ(board_.flash().internal.counters().erase_ops, 0u);
  EXPECT_TRUE(board_.RunningHolds(new_));
  EXPECT_TRUE(Boots(d, new_));
  // The next boot reads the backup right and restores it.
  d = BootOk();
  EXPECT_TRUE(Boots(d, old_));
  EXPECT_TRUE(board_.RunningHolds(old_));
  EXPECT_EQ(d.record.status, UpgradeStatus::kUpgradedFailed);
  EXPECT_EQ(d.record.reason, FailReason::kNotConfirmed);
  EXPECT_FALSE(d.trust.trial.present());
}

TEST_F(LoaderTrustTest, FlippedByteWhileProvingBackup_RetriedNextBoot_VerifyFailedPath) {
  ASSERT_TRUE(board_.Stage(new_, "FOTAV2").ok());
  FlippingFlash external(board_.flash().external, PartitionOf(board_, PartitionId::kBackup), 3,
                         false);
  ArmingInstaller installer(external);
  LoaderDevices devices = board_.Devices();
  devices.external = &external;
  Loader loader(board_.profile(), devices, installer, ByteSpan(work_));
  const Result<BootDecision> d = loader.Boot();
  ASSERT_TRUE(d.ok()) << d.status().name();
  ASSERT_TRUE(external.flipped());
  EXPECT_EQ(d->record.step, UpgradeStep::kRecover);
  EXPECT_EQ(d->record.reason, FailReason::kTargetMismatch);
  EXPECT_EQ(d->record.recover_attempts, 1u);
  // The slot holds what the install wrote (new_ with CorruptingInstaller's flip), untouched
  // by the restore that could not prove the backup; it is not booted.
  std::vector<uint8_t> written = new_;
  written[1024 + 17] ^= 0x01;
  EXPECT_TRUE(board_.RunningHolds(written));
  EXPECT_FALSE(d->boot_app);
  const BootDecision next = BootOk();
  EXPECT_TRUE(Boots(next, old_));
  EXPECT_EQ(next.record.status, UpgradeStatus::kUpgradedFailed);
  EXPECT_EQ(next.record.reason, FailReason::kTargetMismatch);
}

// A flip in the copy itself (after the backup was proven): the restored slot fails its check,
// nothing unverified is booted, and the next boot copies again.
TEST_F(LoaderTrustTest, FlippedByteWhileCopyingBackup_RestoredSlotRecheckedAndRetried) {
  RunTrialOut();
  bool flipped = false;
  BootDecision d = BootWithFlip(ProvingReads(old_.size()) + 1, &flipped);
  ASSERT_TRUE(flipped);
  EXPECT_EQ(d.record.step, UpgradeStep::kRecover);
  EXPECT_EQ(d.record.recover_attempts, 1u);
  EXPECT_FALSE(board_.RunningHolds(old_));
  EXPECT_FALSE(d.boot_app);
  d = BootOk();
  EXPECT_TRUE(Boots(d, old_));
  EXPECT_EQ(d.record.reason, FailReason::kNotConfirmed);
}

TEST_F(LoaderTrustTest, FlippedByteThreeBootsInARow_RecoverFailed) {
  RunTrialOut();
  BootDecision d;
  for (uint8_t boot = 1; boot <= kMaxRecoverAttempts; ++boot) {
    bool flipped = false;
    d = BootWithFlip(3, &flipped);
    ASSERT_TRUE(flipped);
    EXPECT_TRUE(board_.RunningHolds(new_)) << "boot " << int{boot};
    EXPECT_TRUE(Boots(d, new_)) << "boot " << int{boot};
    if (boot < kMaxRecoverAttempts) {
      EXPECT_EQ(d.record.recover_attempts, boot);
    }
  }
  EXPECT_EQ(d.record.status, UpgradeStatus::kUpgradedFailed);
  EXPECT_EQ(d.record.reason, FailReason::kRecoverFailed);
  // Nothing else to run: the authentic trial image stays, as the confirmed one.
  EXPECT_TRUE(Names(d.trust.confirmed, new_));
  EXPECT_TRUE(Boots(BootOk(), new_));
}

// 7. The SPI flash is dead: the old loader halted (it had no way to boot without the boot
// state). Now the running image boots if, and only if, the trust record names it.
TEST_F(LoaderTrustTest, DeadSpiFlash_RunningOnly_BootsOnlyTheRecordedImage) {
  DeadFlash dead(board_.profile().external);
  LoaderDevices devices = board_.Devices();
  devices.external = &dead;
  PlainImageInstaller plain;
  Loader loader(board_.profile(), devices, plain, ByteSpan(work_));
  const Result<BootDecision> full = loader.Boot();
  EXPECT_EQ(full.status().code(), StatusCode::kIoError);
  Result<BootDecision> d = loader.BootRunningOnly();
  ASSERT_TRUE(d.ok()) << d.status().name();
  EXPECT_TRUE(Boots(*d, old_));
  // Another intact image written straight into the slot after the factory's first boot (the
  // trust record is not blanked, as FlashRunning would): never named, never booted.
  const std::vector<uint8_t> trust_before = CellsOf(board_, PartitionId::kTrustA);
  WriteRaw(board_, PartitionId::kRunning, forged_);
  d = loader.BootRunningOnly();
  ASSERT_TRUE(d.ok()) << d.status().name();
  EXPECT_FALSE(d->boot_app);
  EXPECT_TRUE(Names(d->trust.confirmed, old_));
  EXPECT_TRUE(board_.RunningHolds(forged_)) << "the loader has nothing to restore it from";
}

// 8. A package staged while the running image is on trial (a buggy app rewrote the boot state
// to downloaded/start): the old loader installed it over the unconfirmed image, and its
// backup, the confirmed image, was lost.
TEST_F(LoaderTrustTest, PackageStagedDuringTrial_RevertsWithTrialPending) {
  ASSERT_TRUE(board_.Stage(Signed(new_, "FOTAV2", 1), "FOTAV2").ok());
  ASSERT_TRUE(Boots(BootOk(), new_));
  ASSERT_TRUE(board_.Stage(Signed(third_, "FOTAV3", 1), "FOTAV3").ok());
  BootDecision d = BootOk();
  EXPECT_EQ(d.record.status, UpgradeStatus::kUpgradedFailed);
  EXPECT_EQ(d.record.reason, FailReason::kTrialPending);
  EXPECT_EQ(IotdaResultCode(d.record.reason), 1);
  EXPECT_TRUE(Boots(d, old_));
  EXPECT_TRUE(board_.RunningHolds(old_));
  EXPECT_TRUE(Names(d.trust.confirmed, old_));
  EXPECT_FALSE(d.trust.trial.present());
  d = BootOk();  // the refused package stays refused
  EXPECT_TRUE(Boots(d, old_));
  EXPECT_FALSE(board_.RunningHolds(third_));
  EXPECT_EQ(board_.OtpCounterValue().value(), 0u);
}

// 9. The anti-rollback counter (OTP). The old loader wrote the package's counter into the boot
// state at install time, before the app had run, and kept it when the trial was reverted.
TEST_F(LoaderTrustTest, Otp_RaisedOnlyAtTheFirstBootAfterTheConfirm) {
  ASSERT_TRUE(board_.Stage(Signed(new_, "FOTAV2", 7), "FOTAV2").ok());
  BootDecision d = BootOk();
  ASSERT_TRUE(Boots(d, new_));
  EXPECT_EQ(board_.OtpCounterValue().value(), 0u) << "raised at install";
  EXPECT_EQ(d.trust.trial.security_counter, 7u);
  d = BootOk();  // a second trial boot, still unconfirmed
  ASSERT_TRUE(Boots(d, new_));
  EXPECT_EQ(board_.OtpCounterValue().value(), 0u) << "raised during the trial";
  ASSERT_TRUE(board_.Confirm().ok());
  EXPECT_EQ(board_.OtpCounterValue().value(), 0u) << "the app's confirm is only a request";
  d = BootOk();
  EXPECT_TRUE(Boots(d, new_));
  EXPECT_EQ(board_.OtpCounterValue().value(), 7u);
  EXPECT_EQ(d.security_counter, 7u);
  EXPECT_TRUE(Names(d.trust.confirmed, new_));
  EXPECT_EQ(d.trust.confirmed.security_counter, 7u);
  d = BootOk();
  EXPECT_EQ(board_.OtpCounterValue().value(), 7u);
}

TEST_F(LoaderTrustTest, Otp_RevertedTrialLeavesItUnchanged) {
  ASSERT_TRUE(board_.Stage(Signed(new_, "FOTAV2", 7), "FOTAV2").ok());
  BootDecision d;
  for (uint32_t boot = 0; boot <= kSimSmall.trial_boots; ++boot)
    d = BootOk();
  ASSERT_TRUE(Boots(d, old_));
  ASSERT_EQ(d.record.reason, FailReason::kNotConfirmed);
  EXPECT_EQ(board_.OtpCounterValue().value(), 0u);
  EXPECT_EQ(d.security_counter, 0u);
  EXPECT_EQ(d.record.security_counter, 0u) << "the boot state's copy";
  // So a package below the reverted one's counter still installs.
  ASSERT_TRUE(board_.Stage(Signed(third_, "FOTAV3", 3), "FOTAV3").ok());
  d = BootOk();
  EXPECT_EQ(d.record.status, UpgradeStatus::kUpgradedOk) << FailReasonName(d.record.reason);
  EXPECT_TRUE(Boots(d, third_));
}

TEST_F(LoaderTrustTest, Otp_LockedBlock_RaiseFailsButConfirmedImageIsPromoted) {
  const uint32_t block = board_.profile().otp_counter_first_block;
  board_.flash().otp.cells().raw()[kOtpLockOffset + block] = 0x00;
  OtpCounter otp(board_.flash().otp, board_.profile());
  ASSERT_EQ(otp.Raise(1).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(board_.Stage(Signed(new_, "FOTAV2", 7), "FOTAV2").ok());
  ASSERT_TRUE(Boots(BootOk(), new_));
  ASSERT_TRUE(board_.Confirm().ok());
  BootDecision d = BootOk();
  EXPECT_TRUE(Boots(d, new_));
  EXPECT_TRUE(Names(d.trust.confirmed, new_));
  EXPECT_FALSE(d.trust.trial.present());
  EXPECT_EQ(board_.OtpCounterValue().value(), 0u);
  for (int boot = 0; boot < 4; ++boot) {
    d = BootOk();
    EXPECT_TRUE(Boots(d, new_)) << "boot " << boot;
    EXPECT_EQ(d.record.status, UpgradeStatus::kUpgradedOk);
  }
}

// 10. The watchdog (docs/firmware.md, "Watchdog"): KickingFlash refreshes it before every flash
// command, so the longest stretch without a refresh is one command. The old loader never
// refreshed it: a full upgrade of the FIRE board takes tens of seconds of erases in a row.

// Remembers the board's worst-case flash time at each refresh: a gap is what the flash parts
// may take, at worst, between two refreshes.
class GapWatchdog final : public Watchdog {
 public:
  explicit GapWatchdog(sim::BoardFlash& flash) : flash_(flash) {}
  // The boot starts (the watchdog is started, or the part reset): the first gap starts here.
  void PowerOn() { last_ = flash_.counters().time_max_us; }
  // The loader hands over to the app: the last gap ends here.
  void Handover() { Note(); }
  void Kick() override {
    Note();
    ++kicks_;
  }
  uint64_t max_gap_us() const { return max_gap_us_; }
  uint64_t kicks() const { return kicks_; }

 private:
  void Note() {
    const uint64_t now = flash_.counters().time_max_us;
    max_gap_us_ = std::max(max_gap_us_, now - last_);
    last_ = now;
  }
  sim::BoardFlash& flash_;
  uint64_t last_ = 0;
  uint64_t max_gap_us_ = 0;
  uint64_t kicks_ = 0;
};

// The slowest single erase command of either part: an STM32F4 128 KB sector, a W25Q128 64 KB
// block (both 2 s at worst).
constexpr uint64_t kSlowestCommandUs = 2'000'000;

class WatchdogGaps : public ::testing::Test {
 protected:
  WatchdogGaps()
      : v1_(MakeTestImage("FOTAV1", 300 * 1024, board_.running_address(), 1)),
        v2_(MakeTestImage("FOTAV2", 320 * 1024, board_.running_address(), 2)) {
    board_.set_watchdog(&watchdog_);
  }

  BootDecision Boot(Installer& installer) {
    watchdog_.PowerOn();
    const Result<BootDecision> d = board_.Boot(installer);
    watchdog_.Handover();
    EXPECT_TRUE(d.ok()) << d.status().name();
    return d.ok() ? d.value() : BootDecision{};
  }

  void Report(const char* what) {
    std::printf("watchdog: %s max_gap_ms=%.1f kicks=%llu\n", what,
                static_cast<double>(watchdog_.max_gap_us()) / 1000.0,
                static_cast<unsigned long long>(watchdog_.kicks()));
  }

  SimBoard board_{kStm32f429Fire};
  GapWatchdog watchdog_{board_.flash()};
  TestKey key_;
  TrustedKey keys_[1] = {key_.trusted()};
  PackageInstaller installer_{PackagePolicy{Span<const TrustedKey>(keys_), false}};
  PlainImageInstaller plain_;
  std::vector<uint8_t> v1_, v2_;
};

TEST_F(WatchdogGaps, FireFullUpgrade_NoGapLongerThanOneEraseCommand) {
  board_.FlashRunning(v1_);
  ASSERT_TRUE(Boots(Boot(installer_), v1_));  // the factory's first boot
  host::PackageSpec spec;
  spec.kind = PackageKind::kFull;
  spec.version = "FOTAV2";
  spec.image = v2_;
  spec.security_counter = 2;
  spec.profile = &kStm32f429Fire;
  ASSERT_TRUE(board_.Stage(MakePackage(spec, &key_), "FOTAV2").ok());
  const uint64_t before = board_.flash().counters().time_max_us;
  ASSERT_TRUE(Boots(Boot(installer_), v2_));  // backup, apply, verify
  ASSERT_TRUE(board_.Confirm().ok());
  ASSERT_TRUE(Boots(Boot(installer_), v2_));  // the counter into OTP
  const uint64_t total = board_.flash().counters().time_max_us - before;
  Report("fire-upgrade");
  EXPECT_EQ(board_.OtpCounterValue().value(), 2u);
  EXPECT_GT(total, 10 * kSlowestCommandUs) << "not the full-size upgrade meant";
  EXPECT_LE(watchdog_.max_gap_us(), kSlowestCommandUs);
}

TEST_F(WatchdogGaps, FireRecover_NoGapLongerThanOneEraseCommand) {
  board_.FlashRunning(v1_);
  ASSERT_TRUE(Boots(Boot(plain_), v1_));
  ASSERT_TRUE(board_.Stage(v2_, "FOTAV2").ok());
  CorruptingInstaller corrupting;
  const BootDecision d = Boot(corrupting);
  Report("fire-recover");
  EXPECT_EQ(d.record.reason, FailReason::kTargetMismatch);
  EXPECT_TRUE(Boots(d, v1_));
  EXPECT_LE(watchdog_.max_gap_us(), kSlowestCommandUs);
}

// ---- Found by review ----

// A read error in internal flash says nothing about the image: the boot fails (the port
// retries) instead of deciding the slot holds no authentic image. Before, the first boot
// after a confirm with one failed read of the slot forgot the trial image it was to promote,
// and the board never booted again.
TEST_F(LoaderTrustTest, InternalReadErrorAfterConfirm_BootRetried_TrialPromoted) {
  ASSERT_TRUE(board_.Stage(Signed(new_, "FOTAV2", 4), "FOTAV2").ok());
  ASSERT_TRUE(Boots(BootOk(), new_));
  ASSERT_TRUE(board_.Confirm().ok());
  bool any_failed = false;
  for (uint32_t n = 1; n < 400; ++n) {
    SimBoard copy(kSimSmall);
    copy.flash().CopyCellsFrom(board_.flash());
    FailingReadFlash internal(copy.flash().internal, n);
    LoaderDevices devices = copy.Devices();
    devices.internal = &internal;
    Loader loader(copy.profile(), devices, installer_, ByteSpan(work_));
    const Result<BootDecision> failing = loader.Boot();
    if (!internal.failed()) break;  // past the boot's last read
    any_failed = true;
    if (failing.ok()) {
      // The failed read was one the loader may skip (a trust slot scan is not among them).
      EXPECT_TRUE(Boots(*failing, new_)) << "read " << n;
    } else {
      EXPECT_EQ(failing.status().code(), StatusCode::kIoError) << "read " << n;
    }
    const Result<BootDecision> next = copy.Boot(installer_);
    ASSERT_TRUE(next.ok()) << "read " << n;
    EXPECT_TRUE(Boots(*next, new_)) << "read " << n;
    EXPECT_TRUE(Names(next->trust.confirmed, new_)) << "read " << n;
    EXPECT_EQ(next->security_counter, 4u) << "read " << n;
  }
  EXPECT_TRUE(any_failed);
}

// A forged boot record with the highest sequence number would make every later record lose
// to it (the next number wraps): the log starts its numbering again instead.
TEST_F(LoaderTrustTest, ForgedTopSequence_LaterRecordsStillWin) {
  struct Round {
    uint32_t top;
    const std::vector<uint8_t>* image;
    const char* version;
  };
  for (const Round& round :
       {Round{0xFFFFFFFFu, &new_, "FOTAV2"}, Round{0x80000000u, &third_, "FOTAV3"}}) {
    const uint32_t top = round.top;
    const std::vector<uint8_t>& image = *round.image;
    BootRecord forged = board_.Record().value();
    forged.status = UpgradeStatus::kUpgradedFailed;
    forged.reason = FailReason::kInstallFailed;
    RecordBytes raw;
    EncodeBootRecord(forged, raw);
    StoreLe32(raw + kRecordSequenceOffset, top);
    SealRecord(raw);
    const Partition& a = PartitionOf(board_, PartitionId::kBootStateA);
    std::fill(CellsOf(board_, PartitionId::kBootStateA).begin() + a.offset,
              CellsOf(board_, PartitionId::kBootStateA).begin() + a.offset + a.size, 0xFF);
    std::copy(raw, raw + kRecordSize, CellsOf(board_, PartitionId::kBootStateA).begin() + a.offset);
    ASSERT_EQ(board_.Record()->sequence, top);
    // The app stages a package: its record must be the one the loader reads.
    ASSERT_TRUE(board_.Stage(Signed(image, round.version, 0), round.version).ok());
    EXPECT_LT(board_.Record()->sequence, 0x80000000u);
    EXPECT_EQ(board_.Record()->status, UpgradeStatus::kDownloaded);
    EXPECT_TRUE(Boots(BootOk(), image));
    ASSERT_TRUE(board_.Confirm().ok());
    EXPECT_TRUE(Boots(BootOk(), image));
    EXPECT_TRUE(Names(board_.Trust()->confirmed, image));
  }
}

// The OTP counter's program fails (not a locked block): the image is not promoted without it;
// the next boot, with the counter working, promotes it and burns the counter.
TEST_F(LoaderTrustTest, OtpProgramFails_PromotionWaitsForTheCounter) {
  ASSERT_TRUE(board_.Stage(Signed(new_, "FOTAV2", 9), "FOTAV2").ok());
  ASSERT_TRUE(Boots(BootOk(), new_));
  ASSERT_TRUE(board_.Confirm().ok());
  StuckOtp otp(board_.flash().otp);
  LoaderDevices devices = board_.Devices();
  devices.otp = &otp;
  Loader loader(board_.profile(), devices, installer_, ByteSpan(work_));
  const Result<BootDecision> stuck = loader.Boot();
  EXPECT_EQ(stuck.status().code(), StatusCode::kIoError);
  EXPECT_TRUE(board_.Trust()->trial.present()) << "not promoted without its counter";
  const BootDecision d = BootOk();
  EXPECT_TRUE(Boots(d, new_));
  EXPECT_TRUE(Names(d.trust.confirmed, new_));
  EXPECT_EQ(board_.OtpCounterValue().value(), 9u);
}

// ---- Found by these attacks ----

// A forged "downloaded, step apply" skips Start and Backup. Apply used to erase the confirmed
// image without a proven copy of it in the backup: with a genuine signed diff staged and the
// backup blanked, the diff decoded against the blank backup, Verify failed, and Recover found
// nothing that hashed to the confirmed image. Apply now proves the backup first whenever the
// slot still holds the confirmed image, and goes back to step backup if it cannot.
TEST_F(LoaderTrustTest, ForgedApplyStep_ConfirmedImageSurvives) {
  // A new version that shares most of its bytes with old_, so the diff copies from the source.
  std::vector<uint8_t> next = old_;
  next[5000] ^= 0x5A;
  next = Restamp(next, "FOTAV2", board_.running_address());
  host::PackageSpec spec;
  spec.kind = PackageKind::kDiff;
  spec.version = "FOTAV2";
  spec.image = next;
  spec.from_version = "FOTAV1";
  spec.source = old_;
  spec.profile = &kSimSmall;
  const std::vector<uint8_t> diff = MakePackage(spec, &key_);
  WriteRaw(board_, PartitionId::kDownload, diff);
  EraseRaw(board_, PartitionId::kBackup);
  BootRecord r = board_.Record().value();
  r.status = UpgradeStatus::kDownloaded;
  r.step = UpgradeStep::kApply;
  r.package_size = static_cast<uint32_t>(diff.size());
  r.download_offset = r.package_size;
  r.backup_size = static_cast<uint32_t>(old_.size());
  Forge(board_, r);
  BootDecision d;
  for (uint8_t boot = 0; boot <= kMaxRecoverAttempts; ++boot) {
    d = BootOk();
    EXPECT_TRUE(d.boot_app) << "boot " << int{boot} << ": nothing to boot, "
                            << FailReasonName(d.record.reason);
  }
  EXPECT_TRUE(Boots(d, old_) || Boots(d, next));
}

}  // namespace
}  // namespace ota
