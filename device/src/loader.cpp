#include "ota/loader.hpp"

#include <cstring>

namespace ota {

namespace {
// Each step moves the state forward, so one boot needs at most a handful; the guard only
// turns a logic error into a visible failure instead of a hang.
constexpr int kMaxStepsPerBoot = 16;

bool IsPowerLost(Status s) {
  return s.code() == StatusCode::kPowerLost;
}
}  // namespace

Loader::Loader(const BoardProfile& profile, Flash* const (&flashes)[kFlashCount],
               Installer& installer, ByteSpan work)
    : profile_(profile),
      running_(OpenPartition(profile, flashes, PartitionId::kRunning)),
      download_(OpenPartition(profile, flashes, PartitionId::kDownload)),
      backup_(OpenPartition(profile, flashes, PartitionId::kBackup)),
      store_(OpenPartition(profile, flashes, PartitionId::kBootStateA),
             OpenPartition(profile, flashes, PartitionId::kBootStateB)),
      installer_(installer),
      work_(work) {}

InstallerContext Loader::Context(const BootRecord& r) const {
  return InstallerContext{download_, r.package_size, running_, running_address(), r, work_};
}

Result<BootDecision> Loader::Boot() {
  OTA_TRY_ASSIGN(BootRecord record, store_.Load());
  int steps = 0;
  for (;;) {
    if (++steps > kMaxStepsPerBoot) return StatusCode::kFailedPrecondition;
    OTA_TRY_ASSIGN(const bool more, Step(record));
    if (!more) break;
  }
  BootDecision decision;
  decision.record = record;
  const Result<ImageInfo> image = ValidateImage(running_, running_address(), work_);
  if (IsPowerLost(image.status())) return image.status();
  decision.boot_app = image.ok();
  if (image.ok()) decision.image = image.value();
  return decision;
}

Result<bool> Loader::Step(BootRecord& r) {
  if (r.status == UpgradeStatus::kDownloaded) {
    switch (r.step) {
      case UpgradeStep::kStart:
        return Start(r);
      case UpgradeStep::kBackup:
        return Backup(r);
      case UpgradeStep::kApply:
        return Apply(r);
      case UpgradeStep::kVerify:
        return Verify(r);
      case UpgradeStep::kRecover:
        return Recover(r);
      case UpgradeStep::kDone:
        return Fail(r, FailReason::kInstallFailed);  // inconsistent
    }
  }
  if (r.status == UpgradeStatus::kUpgradedOk) {
    if (r.step == UpgradeStep::kRecover) return Recover(r);
    if (r.confirmed()) return false;
    if (r.trial_boots_left == 0) return GoTo(r, UpgradeStep::kRecover, FailReason::kNotConfirmed);
    // One more trial boot of the unconfirmed image, counted before it runs.
    r.trial_boots_left = static_cast<uint8_t>(r.trial_boots_left - 1);
    OTA_TRY(store_.Save(r));
    return false;
  }
  return false;  // idle, downloading, failed: nothing for the loader to do
}

Result<bool> Loader::GoTo(BootRecord& r, UpgradeStep step, FailReason reason) {
  r.step = step;
  r.reason = reason;
  OTA_TRY(store_.Save(r));
  return true;
}

Result<bool> Loader::Fail(BootRecord& r, FailReason reason) {
  r.status = UpgradeStatus::kUpgradedFailed;
  r.step = UpgradeStep::kDone;
  r.reason = reason;
  OTA_TRY(store_.Save(r));
  return false;
}

// Verify before anything is erased: a refused package leaves every byte of the slot as it was.
Result<bool> Loader::Start(BootRecord& r) {
  FailReason why = FailReason::kPackageInvalid;
  const Result<PackageInfo> info = installer_.Check(Context(r), &why);
  if (IsPowerLost(info.status())) return info.status();
  if (!info.ok()) return Fail(r, why);
  return GoTo(r, UpgradeStep::kBackup);
}

Result<bool> Loader::Backup(BootRecord& r) {
  const Result<ImageInfo> old = ValidateImage(running_, running_address(), work_);
  if (IsPowerLost(old.status())) return old.status();
  r.backup_size = 0;
  if (old.ok()) {
    // Copy exactly the image (not the whole slot) and prove the copy before relying on it.
    SlotWriter out(backup_, old->total_size);
    const Status copied = CopyToWriter(running_, old->total_size, out, work_);
    if (IsPowerLost(copied)) return copied;
    const FlashArea copy(backup_.flash(), backup_.offset(), old->total_size);
    const Result<ImageInfo> check = ValidateImage(copy, running_address(), work_);
    if (IsPowerLost(check.status())) return check.status();
    if (!copied.ok() || !check.ok() || !DigestEqual(check->sha256, old->sha256)) {
      return Fail(r, FailReason::kBackupFailed);
    }
    r.backup_size = old->total_size;
  }
  // No valid running image (a blank slot): nothing to keep, the install goes ahead.
  return GoTo(r, UpgradeStep::kApply);
}

Result<bool> Loader::Apply(BootRecord& r) {
  FailReason why = FailReason::kInstallFailed;
  const Result<PackageInfo> info = installer_.Inspect(Context(r), &why);
  if (IsPowerLost(info.status())) return info.status();
  if (!info.ok()) return GoTo(r, UpgradeStep::kRecover, FailReason::kInstallFailed);
  SlotWriter out(running_, info->target_size);
  const FlashArea old(backup_.flash(), backup_.offset(), r.backup_size);
  Status applied = installer_.Apply(Context(r), old, out);
  if (applied.ok() && out.written() != info->target_size) applied = StatusCode::kCorrupt;
  if (IsPowerLost(applied)) return applied;
  if (!applied.ok()) return GoTo(r, UpgradeStep::kRecover, FailReason::kInstallFailed);
  return GoTo(r, UpgradeStep::kVerify);
}

Result<bool> Loader::Verify(BootRecord& r) {
  FailReason why = FailReason::kInstallFailed;
  const Result<PackageInfo> info = installer_.Inspect(Context(r), &why);
  if (IsPowerLost(info.status())) return info.status();
  if (!info.ok()) return GoTo(r, UpgradeStep::kRecover, FailReason::kInstallFailed);
  Sha256Digest written;
  const Status hashed = HashArea(running_, 0, info->target_size, work_, written);
  if (IsPowerLost(hashed)) return hashed;
  const Result<ImageInfo> image = ValidateImage(running_, running_address(), work_);
  if (IsPowerLost(image.status())) return image.status();
  if (!hashed.ok() || !image.ok() || !DigestEqual(written, info->target_sha256)) {
    return GoTo(r, UpgradeStep::kRecover, FailReason::kTargetMismatch);
  }
  r.status = UpgradeStatus::kUpgradedOk;
  r.step = UpgradeStep::kDone;
  r.reason = FailReason::kNone;
  r.trial_boots_left = static_cast<uint8_t>(profile_.trial_boots);
  r.flags = static_cast<uint8_t>(r.flags & ~kBootFlagConfirmed);
  if (info->security_counter > r.security_counter || info->downgrade) {
    r.security_counter = info->security_counter;
  }
  OTA_TRY(store_.Save(r));
  return true;  // the trial-boot accounting runs next
}

Result<bool> Loader::Recover(BootRecord& r) {
  const FailReason reason = r.reason == FailReason::kNone ? FailReason::kInstallFailed : r.reason;
  if (r.backup_size == 0) return Fail(r, reason);  // nothing was there to keep
  const FlashArea copy(backup_.flash(), backup_.offset(), r.backup_size);
  const Result<ImageInfo> saved = ValidateImage(copy, running_address(), work_);
  if (IsPowerLost(saved.status())) return saved.status();
  if (!saved.ok()) return Fail(r, FailReason::kNoBootableImage);
  SlotWriter out(running_, saved->total_size);
  OTA_TRY(CopyToWriter(copy, saved->total_size, out, work_));
  const Result<ImageInfo> restored = ValidateImage(running_, running_address(), work_);
  if (!restored.ok()) return restored.status();  // a flash fault: the next boot tries again
  if (!DigestEqual(restored->sha256, saved->sha256)) return StatusCode::kIoError;
  return Fail(r, reason);
}

}  // namespace ota
