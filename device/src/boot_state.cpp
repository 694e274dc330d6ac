#include "ota/boot_state.hpp"

#include <cstring>

#include "ota/bytes.hpp"
#include "ota/crc32.hpp"

namespace ota {

// Record layout (docs/spec/boot-state.md). Offsets:
namespace {
constexpr uint32_t kOffMagic = 0, kOffFormat = 4, kOffStatus = 5, kOffStep = 6, kOffReason = 7,
                   kOffSequence = 8, kOffPackageSize = 12, kOffDownloadOffset = 16,
                   kOffSecurityCounter = 20, kOffTrialBoots = 24, kOffFlags = 25,
                   kOffRecoverAttempts = 26, kOffBackupSize = 28, kOffVersion = 32,
                   kOffPackageSha = 64, kOffReserved = 96, kOffCrc = 124;
static_assert(kOffCrc + 4 == kBootRecordSize, "CRC is the record's last field");
static_assert(kOffVersion + sizeof(BootRecord::package_version) == kOffPackageSha, "layout");
static_assert(kOffPackageSha + kSha256Size == kOffReserved, "layout");
}  // namespace

uint8_t IotdaResultCode(FailReason reason) {
  switch (reason) {
    case FailReason::kNone:
      return 0;
    case FailReason::kPackageInvalid:
      return 7;  // package verification failed
    case FailReason::kWrongSource:
    case FailReason::kBadSignature:
    case FailReason::kDowngrade:
      return 7;
    case FailReason::kUnsupported:
      return 8;  // package type not supported
    case FailReason::kTooLarge:
      return 5;  // not enough storage
    case FailReason::kInstallFailed:
      return 10;  // install failed
    case FailReason::kTargetMismatch:
      return 10;
    case FailReason::kNotConfirmed:
      return 10;
    case FailReason::kBackupFailed:
      return 10;
    case FailReason::kNoBootableImage:
    case FailReason::kRecoverFailed:
      return 10;
    case FailReason::kTrialPending:
      return 1;  // device busy: it is still proving the image it runs
  }
  return 255;  // internal error
}

const char* FailReasonName(FailReason reason) {
  switch (reason) {
    case FailReason::kNone:
      return "none";
    case FailReason::kPackageInvalid:
      return "package-invalid";
    case FailReason::kUnsupported:
      return "unsupported";
    case FailReason::kTooLarge:
      return "too-large";
    case FailReason::kWrongSource:
      return "wrong-source";
    case FailReason::kInstallFailed:
      return "install-failed";
    case FailReason::kTargetMismatch:
      return "target-mismatch";
    case FailReason::kNotConfirmed:
      return "not-confirmed";
    case FailReason::kBackupFailed:
      return "backup-failed";
    case FailReason::kNoBootableImage:
      return "no-bootable-image";
    case FailReason::kBadSignature:
      return "bad-signature";
    case FailReason::kDowngrade:
      return "downgrade";
    case FailReason::kRecoverFailed:
      return "recover-failed";
    case FailReason::kTrialPending:
      return "trial-pending";
  }
  return "unknown";
}

const char* UpgradeStatusName(UpgradeStatus status) {
  switch (status) {
    case UpgradeStatus::kIdle:
      return "idle";
    case UpgradeStatus::kDownloading:
      return "downloading";
    case UpgradeStatus::kDownloaded:
      return "downloaded";
    case UpgradeStatus::kUpgradedOk:
      return "upgraded-ok";
    case UpgradeStatus::kUpgradedFailed:
      return "upgraded-failed";
  }
  return "unknown";
}

const char* UpgradeStepName(UpgradeStep step) {
  switch (step) {
    case UpgradeStep::kStart:
      return "start";
    case UpgradeStep::kBackup:
      return "backup";
    case UpgradeStep::kApply:
      return "apply";
    case UpgradeStep::kVerify:
      return "verify";
    case UpgradeStep::kRecover:
      return "recover";
    case UpgradeStep::kDone:
      return "done";
  }
  return "unknown";
}

void EncodeBootRecord(const BootRecord& r, uint8_t (&out)[kBootRecordSize]) {
  std::memset(out, 0, sizeof(out));
  StoreLe32(out + kOffMagic, kBootRecordMagic);
  out[kOffFormat] = kBootRecordFormat;
  out[kOffStatus] = static_cast<uint8_t>(r.status);
  out[kOffStep] = static_cast<uint8_t>(r.step);
  out[kOffReason] = static_cast<uint8_t>(r.reason);
  StoreLe32(out + kOffSequence, r.sequence);
  StoreLe32(out + kOffPackageSize, r.package_size);
  StoreLe32(out + kOffDownloadOffset, r.download_offset);
  StoreLe32(out + kOffSecurityCounter, r.security_counter);
  out[kOffTrialBoots] = r.trial_boots_left;
  out[kOffFlags] = r.flags;
  out[kOffRecoverAttempts] = r.recover_attempts;
  StoreLe32(out + kOffBackupSize, r.backup_size);
  std::memcpy(out + kOffVersion, r.package_version, sizeof(r.package_version));
  std::memcpy(out + kOffPackageSha, r.package_sha256, kSha256Size);
  SealRecord(out);
}

namespace {
// The fields' own rules, once magic and CRC are right (RecordLog's accept function).
bool FieldsValid(const RecordBytes& in);
}  // namespace

Result<BootRecord> DecodeBootRecord(const uint8_t (&in)[kBootRecordSize]) {
  OTA_TRY(CheckRecord(in, kBootRecordMagic, &FieldsValid));
  BootRecord r;
  r.status = static_cast<UpgradeStatus>(in[kOffStatus]);
  r.step = static_cast<UpgradeStep>(in[kOffStep]);
  r.reason = static_cast<FailReason>(in[kOffReason]);
  r.sequence = LoadLe32(in + kOffSequence);
  r.package_size = LoadLe32(in + kOffPackageSize);
  r.download_offset = LoadLe32(in + kOffDownloadOffset);
  r.security_counter = LoadLe32(in + kOffSecurityCounter);
  r.trial_boots_left = in[kOffTrialBoots];
  r.flags = in[kOffFlags];
  r.recover_attempts = in[kOffRecoverAttempts];
  r.backup_size = LoadLe32(in + kOffBackupSize);
  std::memcpy(r.package_version, in + kOffVersion, sizeof(r.package_version));
  std::memcpy(r.package_sha256, in + kOffPackageSha, kSha256Size);
  return r;
}

namespace {
bool FieldsValid(const RecordBytes& in) {
  if (in[kOffFormat] != kBootRecordFormat ||
      in[kOffStatus] > static_cast<uint8_t>(UpgradeStatus::kUpgradedFailed) ||
      in[kOffStep] > static_cast<uint8_t>(UpgradeStep::kDone) ||
      in[kOffReason] > static_cast<uint8_t>(kLastFailReason)) {
    return false;
  }
  if (in[kOffPackageSha - 1] != '\0') return false;  // the version string's last byte
  // Reserved bytes and unknown flags must be zero: a record from a newer format that this
  // loader cannot understand is not silently half-read.
  if ((in[kOffFlags] & ~kBootFlagConfirmed) != 0 || in[27] != 0) return false;
  for (uint32_t i = kOffReserved; i < kOffCrc; ++i) {
    if (in[i] != 0) return false;
  }
  return true;
}
}  // namespace

BootStore::BootStore(const FlashArea& a, const FlashArea& b)
    : log_(a, b, kBootRecordMagic, &FieldsValid) {}

Result<BootRecord> BootStore::Load() {
  RecordBytes raw;
  OTA_TRY_ASSIGN(const bool found, log_.Load(raw));
  if (!found) return BootRecord{};
  return DecodeBootRecord(raw);
}

Status BootStore::Save(BootRecord& record) {
  RecordBytes raw;
  EncodeBootRecord(record, raw);
  OTA_TRY_ASSIGN(record.sequence, log_.Append(raw));
  return Status::Ok();
}

}  // namespace ota
