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

// Errors that say nothing about the bytes of the running slot (the supply, the bus, a
// programming error): the loader takes no decision on them; the boot fails and is retried.
// Only verdicts on content (no image, bad hash, wrong address, bad vector table) are acted on.
bool IsFault(Status s) {
  switch (s.code()) {
    case StatusCode::kPowerLost:
    case StatusCode::kIoError:
    case StatusCode::kTimedOut:
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kMisaligned:
      return true;
    default:
      return false;
  }
}

FlashArea Open(const BoardProfile& profile, Flash& internal, Flash& external, PartitionId id) {
  Flash* const flashes[kFlashCount] = {&internal, &external};
  return OpenPartition(profile, flashes, id);
}
}  // namespace

Loader::Loader(const BoardProfile& profile, const LoaderDevices& devices, Installer& installer,
               ByteSpan work)
    : profile_(profile),
      internal_(*devices.internal, devices.watchdog != nullptr ? *devices.watchdog : no_watchdog_),
      external_(*devices.external, devices.watchdog != nullptr ? *devices.watchdog : no_watchdog_),
      running_(Open(profile, internal_, external_, PartitionId::kRunning)),
      download_(Open(profile, internal_, external_, PartitionId::kDownload)),
      backup_(Open(profile, internal_, external_, PartitionId::kBackup)),
      store_(Open(profile, internal_, external_, PartitionId::kBootStateA),
             Open(profile, internal_, external_, PartitionId::kBootStateB)),
      trust_store_(Open(profile, internal_, external_, PartitionId::kTrustA),
                   Open(profile, internal_, external_, PartitionId::kTrustB)),
      counter_(*devices.otp, profile),
      option_bytes_(*devices.option_bytes),
      installer_(installer),
      work_(work) {}

InstallerContext Loader::Context(const BootRecord& r) const {
  return InstallerContext{download_, r.package_size, running_, running_address(), r, work_};
}

Result<ImageInfo> Loader::RunningImage() {
  if (!running_known_) {
    running_image_ = ValidateImage(running_, running_address(), work_);
    running_known_ = !IsFault(running_image_.status());
  }
  return running_image_;
}

Status Loader::SaveTrust() {
  return trust_store_.Save(trust_);
}

Status Loader::ProtectLoader() {
  running_known_ = false;  // a new power-on: nothing is known of the slot yet
  const Result<uint32_t> mask = LoaderSectorMask(profile_);
  if (!mask.ok()) return mask.status();
  const Result<WriteProtectResult> result = EnsureWriteProtected(option_bytes_, mask.value());
  if (IsPowerLost(result.status())) return result.status();
  // Anything short of protected is reported, not fatal: the board still boots what it can.
  write_protect_error_ = result.status();
  if (result.ok()) write_protect_ = result.value();
  return Status::Ok();
}

Status Loader::LoadTrust() {
  OTA_TRY_ASSIGN(otp_value_, counter_.Read());
  bool found = false;
  OTA_TRY_ASSIGN(trust_, trust_store_.Load(&found));
  if (found) return Status::Ok();
  // First boot after the factory wrote the loader and the app over SWD: the running image is
  // the factory's (nothing outside the MCU can have written internal flash), so it is the
  // confirmed one. Saved even when the slot is blank, so this happens once per board.
  trust_ = TrustRecord{};
  const Result<ImageInfo> image = RunningImage();
  if (IsFault(image.status())) return image.status();
  if (image.ok()) {
    trust_.confirmed.size = image->total_size;
    std::memcpy(trust_.confirmed.sha256, image->sha256, kSha256Size);
    trust_.confirmed.security_counter = otp_value_;
  }
  return SaveTrust();
}

Status Loader::Reconcile(BootRecord& r) {
  OTA_TRY(Reflect(r));
  if (!trust_.trial.present()) return Status::Ok();
  OTA_TRY_ASSIGN(const ImageInfo* const trial_image, RunningTrial());
  const bool running_trial = trial_image != nullptr;
  // Once an install is past its start the flag is the loader's to clear (Start does), so a
  // flag seen there is not the app's word about the trial image.
  const bool installing = r.status == UpgradeStatus::kDownloaded && r.step != UpgradeStep::kStart;
  if (r.confirmed() && running_trial && !installing) {
    // The app confirmed the trial image: it becomes the image to fall back to, and its
    // counter is burnt into OTP. OTP first: a reset in between raises it again (idempotent).
    // A counter whose OTP blocks are locked (only code on the MCU can lock them) does not
    // hold the image back; any other failure does, and is retried at the next boot.
    const Status raised = counter_.Raise(trust_.trial.security_counter);
    if (!raised.ok() && raised.code() != StatusCode::kFailedPrecondition) return raised;
    trust_.confirmed = trust_.trial;
    trust_.trial = TrustedImage{};
    OTA_TRY(SaveTrust());
    OTA_TRY_ASSIGN(otp_value_, counter_.Read());
    if (r.step == UpgradeStep::kRecover) {
      // The loader was reverting (its backup unreadable, it booted the trial image) when the
      // app confirmed: the app's word stands, the revert is over.
      r.status = UpgradeStatus::kUpgradedOk;
      r.step = UpgradeStep::kDone;
      r.reason = FailReason::kNone;
      r.recover_attempts = 0;
      r.security_counter = otp_value_;
      return store_.Save(r);
    }
    return Reflect(r);
  }
  // A trial is under way only while the boot state says so (upgraded-ok, not yet confirmed),
  // or while the loader itself is between recording the trial and saying so (verify). Any
  // other boot state (erased, rewritten, a package staged over the trial) ends the trial the
  // safe way: back to the confirmed image.
  const bool in_trial = r.status == UpgradeStatus::kUpgradedOk && !r.confirmed();
  const bool recording = r.status == UpgradeStatus::kDownloaded && r.step == UpgradeStep::kVerify;
  if (in_trial || recording) return Status::Ok();
  if (!running_trial) return EndTrial(false);  // the trial image has left the slot already
  const bool staged_over =
      r.status == UpgradeStatus::kDownloaded || r.status == UpgradeStatus::kDownloading;
  r.status = UpgradeStatus::kUpgradedOk;
  r.flags = static_cast<uint8_t>(r.flags & ~kBootFlagConfirmed);
  const Result<bool> reverted =
      GoTo(r, UpgradeStep::kRecover,
           staged_over ? FailReason::kTrialPending : FailReason::kNotConfirmed);
  return reverted.status();
}

// The boot state carries a copy of the OTP counter for the app (the agent refuses what the
// loader would); the loader itself never reads it back.
Status Loader::Reflect(BootRecord& r) {
  if (r.security_counter == otp_value_) return Status::Ok();
  r.security_counter = otp_value_;
  return store_.Save(r);
}

Result<BootDecision> Loader::Decide(const BootRecord& r) {
  BootDecision decision;
  decision.record = r;
  decision.trust = trust_;
  decision.security_counter = otp_value_;
  decision.write_protect = write_protect_;
  decision.write_protect_error = write_protect_error_;
  const Result<ImageInfo> image = RunningImage();
  if (IsFault(image.status())) return image.status();
  // Whatever the boot state says, only an image the trust record names is started.
  decision.boot_app = image.ok() && (trust_.confirmed.Matches(image->total_size, image->sha256) ||
                                     trust_.trial.Matches(image->total_size, image->sha256));
  if (image.ok()) decision.image = image.value();
  return decision;
}

Result<BootDecision> Loader::Boot() {
  OTA_TRY(ProtectLoader());
  OTA_TRY(LoadTrust());
  OTA_TRY_ASSIGN(BootRecord record, store_.Load());
  OTA_TRY(Reconcile(record));
  int steps = 0;
  for (;;) {
    if (++steps > kMaxStepsPerBoot) return StatusCode::kFailedPrecondition;
    OTA_TRY_ASSIGN(const bool more, Step(record));
    if (!more) break;
  }
  return Decide(record);
}

Result<BootDecision> Loader::BootRunningOnly() {
  OTA_TRY(ProtectLoader());
  OTA_TRY(LoadTrust());
  return Decide(BootRecord{});
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
  r.recover_attempts = 0;
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
  // A counter OTP cannot hold could never be made to stick.
  if (info->security_counter > counter_.max()) return Fail(r, FailReason::kUnsupported);
  // The flag spoke of the image running now; from here on it is the new image's to earn.
  r.flags = static_cast<uint8_t>(r.flags & ~kBootFlagConfirmed);
  return GoTo(r, UpgradeStep::kBackup);
}

Result<bool> Loader::Backup(BootRecord& r) {
  const Result<ImageInfo> old = RunningImage();
  if (IsFault(old.status())) return old.status();
  r.backup_size = 0;
  // Only the confirmed image is kept: it is what a failed upgrade goes back to. A slot that
  // holds anything else (blank, or an image the loader never vouched for) has nothing to keep.
  if (old.ok() && trust_.confirmed.Matches(old->total_size, old->sha256)) {
    if (old->total_size > backup_.size()) return Fail(r, FailReason::kBackupFailed);
    // Copy exactly the image (not the whole slot) and prove the copy before relying on it.
    SlotWriter out(backup_, old->total_size);
    const Status copied = CopyToWriter(running_, old->total_size, out, work_);
    if (IsPowerLost(copied)) return copied;
    OTA_TRY_ASSIGN(const bool proven, BackupHolds(trust_.confirmed));
    if (!copied.ok() || !proven) return Fail(r, FailReason::kBackupFailed);
    r.backup_size = old->total_size;
  }
  return GoTo(r, UpgradeStep::kApply);
}

Result<bool> Loader::Apply(BootRecord& r) {
  FailReason why = FailReason::kInstallFailed;
  const Result<PackageInfo> info = installer_.Inspect(Context(r), &why);
  if (IsPowerLost(info.status())) return info.status();
  if (!info.ok() || r.backup_size > backup_.size()) {
    return GoTo(r, UpgradeStep::kRecover, FailReason::kInstallFailed);
  }
  // The first erase destroys the confirmed image: only with a proven copy of it in the
  // backup. (The boot state's word that Backup ran is not proof: a forged step skips it.) Once
  // the slot no longer holds the confirmed image, a resumed Apply needs no check.
  OTA_TRY_ASSIGN(const bool kept, ConfirmedImageKept(r));
  if (!kept) return GoTo(r, UpgradeStep::kBackup);
  running_known_ = false;  // the slot is about to change
  SlotWriter out(running_, info->target_size);
  const FlashArea old(backup_.flash(), backup_.offset(), r.backup_size);
  Status applied = installer_.Apply(Context(r), old, out);
  if (applied.ok() && out.written() != info->target_size) applied = StatusCode::kCorrupt;
  if (IsPowerLost(applied)) return applied;
  if (!applied.ok()) return GoTo(r, UpgradeStep::kRecover, FailReason::kInstallFailed);
  return GoTo(r, UpgradeStep::kVerify);
}

Result<bool> Loader::ConfirmedImageKept(const BootRecord& r) {
  const TrustedImage& confirmed = trust_.confirmed;
  const Result<ImageInfo> now = RunningImage();
  if (IsFault(now.status())) return now.status();
  if (!now.ok() || !confirmed.Matches(now->total_size, now->sha256)) return true;
  if (r.backup_size != confirmed.size) return false;
  return BackupHolds(confirmed);
}

Result<bool> Loader::BackupHolds(const TrustedImage& image) {
  if (!image.present() || image.size > backup_.size()) return false;
  const FlashArea copy(backup_.flash(), backup_.offset(), image.size);
  const Result<ImageInfo> saved = ValidateImage(copy, running_address(), work_);
  if (IsPowerLost(saved.status())) return saved.status();
  return saved.ok() && image.Matches(saved->total_size, saved->sha256);
}

Result<bool> Loader::Verify(BootRecord& r) {
  FailReason why = FailReason::kInstallFailed;
  const Result<PackageInfo> info = installer_.Inspect(Context(r), &why);
  if (IsPowerLost(info.status())) return info.status();
  if (!info.ok()) return GoTo(r, UpgradeStep::kRecover, FailReason::kInstallFailed);
  Sha256Digest written;
  const Status hashed = HashArea(running_, 0, info->target_size, work_, written);
  if (IsFault(hashed)) return hashed;
  const Result<ImageInfo> image = RunningImage();
  if (IsFault(image.status())) return image.status();
  if (!hashed.ok() || !image.ok() || !DigestEqual(written, info->target_sha256) ||
      image->total_size != info->target_size) {
    return GoTo(r, UpgradeStep::kRecover, FailReason::kTargetMismatch);
  }
  // A counter OTP could not hold (Start refuses it; a forged step may have skipped Start).
  if (info->security_counter > counter_.max()) {
    return GoTo(r, UpgradeStep::kRecover, FailReason::kUnsupported);
  }
  // The trust record learns of the new image before the boot state calls it installed; a
  // reset in between comes back here (Reconcile lets a trial at step verify stand). Its
  // digest is the image's own (the trailer's), proven by the signed hash of all its bytes.
  if (!trust_.trial.Matches(image->total_size, image->sha256)) {
    trust_.trial.size = image->total_size;
    std::memcpy(trust_.trial.sha256, image->sha256, kSha256Size);
    trust_.trial.security_counter = info->security_counter;
    OTA_TRY(SaveTrust());
  }
  r.status = UpgradeStatus::kUpgradedOk;
  r.step = UpgradeStep::kDone;
  r.reason = FailReason::kNone;
  r.trial_boots_left = static_cast<uint8_t>(profile_.trial_boots);
  r.flags = static_cast<uint8_t>(r.flags & ~kBootFlagConfirmed);
  OTA_TRY(store_.Save(r));
  return true;  // the trial-boot accounting runs next
}

Result<bool> Loader::Recover(BootRecord& r) {
  const FailReason reason = r.reason == FailReason::kNone ? FailReason::kInstallFailed : r.reason;
  // The image to go back to is the one the trust record calls confirmed, whatever size the
  // boot state claims for the backup; the backup is restored only if it hashes to it.
  const TrustedImage& target = trust_.confirmed;
  const Result<ImageInfo> now = RunningImage();
  if (IsFault(now.status())) return now.status();
  const bool done = now.ok() && target.Matches(now->total_size, now->sha256);
  if (!done && target.present()) {
    OTA_TRY_ASSIGN(const bool proven, BackupHolds(target));
    if (!proven) return RecoverLater(r);
    const FlashArea copy(backup_.flash(), backup_.offset(), target.size);
    running_known_ = false;  // the slot is about to change
    SlotWriter out(running_, target.size);
    const Status copied = CopyToWriter(copy, target.size, out, work_);
    if (IsPowerLost(copied)) return copied;
    if (!copied.ok()) return RecoverLater(r);
    const Result<ImageInfo> restored = RunningImage();
    if (IsFault(restored.status())) return restored.status();
    if (!restored.ok() || !target.Matches(restored->total_size, restored->sha256)) {
      return RecoverLater(r);
    }
  }
  OTA_TRY(EndTrial(false));
  return Fail(r, reason);
}

Result<const ImageInfo*> Loader::RunningTrial() {
  if (!trust_.trial.present()) return static_cast<const ImageInfo*>(nullptr);
  const Result<ImageInfo> now = RunningImage();
  if (IsFault(now.status())) return now.status();
  if (!now.ok() || !trust_.trial.Matches(now->total_size, now->sha256)) {
    return static_cast<const ImageInfo*>(nullptr);
  }
  return &running_image_.value();
}

Status Loader::EndTrial(bool keep_running_trial) {
  if (!trust_.trial.present()) return Status::Ok();
  OTA_TRY_ASSIGN(const ImageInfo* const running_trial, RunningTrial());
  // The trial image stays only if the slot still holds it and it is all there is: nothing
  // confirmed to go back to (the slot was blank before the install), or a restore that gave
  // up. Its counter is not burnt into OTP: the app never confirmed it.
  if (running_trial != nullptr && (keep_running_trial || !trust_.confirmed.present())) {
    trust_.confirmed = trust_.trial;
  }
  trust_.trial = TrustedImage{};
  return SaveTrust();
}

Result<bool> Loader::RecoverLater(BootRecord& r) {
  const bool counted = r.recover_attempts < kMaxRecoverAttempts;
  if (counted) ++r.recover_attempts;
  OTA_TRY_ASSIGN(const ImageInfo* const trial, RunningTrial());
  if (r.recover_attempts < kMaxRecoverAttempts || trial == nullptr) {
    // Try again next boot. With nothing authentic left in the slot, giving up would only make
    // sure the board never boots again, so it never does: every boot tries once more (and
    // writes the boot state only while the count still changes).
    if (counted) {
      OTA_TRY(store_.Save(r));
    }
    return false;
  }
  // Given up, with the trial image still intact in the slot: it is all there is to run.
  OTA_TRY(EndTrial(true));
  return Fail(r, FailReason::kRecoverFailed);
}

}  // namespace ota
