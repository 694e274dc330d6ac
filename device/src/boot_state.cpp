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
                   kOffBackupSize = 28, kOffVersion = 32, kOffPackageSha = 64, kOffReserved = 96,
                   kOffCrc = 124;
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
      return 10;
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
  StoreLe32(out + kOffBackupSize, r.backup_size);
  std::memcpy(out + kOffVersion, r.package_version, sizeof(r.package_version));
  std::memcpy(out + kOffPackageSha, r.package_sha256, kSha256Size);
  StoreLe32(out + kOffCrc, Crc32(0, ConstByteSpan(out, kOffCrc)));
}

Result<BootRecord> DecodeBootRecord(const uint8_t (&in)[kBootRecordSize]) {
  bool erased = true;
  for (uint8_t b : in)
    erased = erased && b == 0xFF;
  if (erased) return StatusCode::kNotFound;
  if (LoadLe32(in + kOffMagic) != kBootRecordMagic || in[kOffFormat] != kBootRecordFormat ||
      LoadLe32(in + kOffCrc) != Crc32(0, ConstByteSpan(in, kOffCrc))) {
    return StatusCode::kCorrupt;
  }
  BootRecord r;
  if (in[kOffStatus] > static_cast<uint8_t>(UpgradeStatus::kUpgradedFailed) ||
      in[kOffStep] > static_cast<uint8_t>(UpgradeStep::kDone) ||
      in[kOffReason] > static_cast<uint8_t>(kLastFailReason)) {
    return StatusCode::kCorrupt;
  }
  r.status = static_cast<UpgradeStatus>(in[kOffStatus]);
  r.step = static_cast<UpgradeStep>(in[kOffStep]);
  r.reason = static_cast<FailReason>(in[kOffReason]);
  r.sequence = LoadLe32(in + kOffSequence);
  r.package_size = LoadLe32(in + kOffPackageSize);
  r.download_offset = LoadLe32(in + kOffDownloadOffset);
  r.security_counter = LoadLe32(in + kOffSecurityCounter);
  r.trial_boots_left = in[kOffTrialBoots];
  r.flags = in[kOffFlags];
  r.backup_size = LoadLe32(in + kOffBackupSize);
  std::memcpy(r.package_version, in + kOffVersion, sizeof(r.package_version));
  std::memcpy(r.package_sha256, in + kOffPackageSha, kSha256Size);
  if (r.package_version[sizeof(r.package_version) - 1] != '\0') return StatusCode::kCorrupt;
  // Reserved bytes and unknown flags must be zero: a record from a newer format that this
  // loader cannot understand is not silently half-read.
  if ((r.flags & ~kBootFlagConfirmed) != 0 || in[26] != 0 || in[27] != 0) {
    return StatusCode::kCorrupt;
  }
  for (uint32_t i = kOffReserved; i < kOffCrc; ++i) {
    if (in[i] != 0) return StatusCode::kCorrupt;
  }
  return r;
}

Result<BootStore::Scan> BootStore::ScanCopies() {
  Scan scan;
  for (int c = 0; c < 2; ++c) {
    const uint32_t slots = copies_[c].size() / kBootRecordSize;
    for (uint32_t s = 0; s < slots; ++s) {
      uint8_t raw[kBootRecordSize];
      OTA_TRY(copies_[c].Read(s * kBootRecordSize, ByteSpan(raw)));
      const Result<BootRecord> rec = DecodeBootRecord(raw);
      if (rec.status().code() == StatusCode::kNotFound) continue;  // erased slot
      scan.next_slot[c] = s + 1;  // written (valid or torn): appends go after it
      if (rec.ok() && (!scan.found || rec->sequence > scan.sequence)) {
        scan.found = true;
        scan.copy = c;
        scan.sequence = rec->sequence;
        scan.record = rec.value();
      }
    }
  }
  return scan;
}

Result<BootRecord> BootStore::Load() {
  OTA_TRY_ASSIGN(const Scan scan, ScanCopies());
  if (!scan.found) return BootRecord{};
  return scan.record;
}

Status BootStore::Save(BootRecord& record) {
  if (copies_[0].size() < kBootRecordSize || copies_[1].size() < kBootRecordSize) {
    return StatusCode::kTooLarge;
  }
  OTA_TRY_ASSIGN(const Scan scan, ScanCopies());
  int copy = scan.found ? scan.copy : 1;  // a blank store starts in copy A (after the switch)
  uint32_t slot = scan.found ? scan.next_slot[copy] : slots_per_copy();
  if (slot >= slots_per_copy()) {
    // The current copy is full: start over in the other one. Erasing it is safe because the
    // newest valid record is in `copy`, which stays untouched until a later switch.
    copy = 1 - copy;
    slot = 0;
    OTA_TRY(copies_[copy].Erase(0, copies_[copy].size()));
  }
  record.sequence = scan.found ? scan.sequence + 1 : 1;
  uint8_t raw[kBootRecordSize];
  EncodeBootRecord(record, raw);
  OTA_TRY(copies_[copy].Program(slot * kBootRecordSize, ConstByteSpan(raw)));
  uint8_t check[kBootRecordSize];
  OTA_TRY(copies_[copy].Read(slot * kBootRecordSize, ByteSpan(check)));
  if (std::memcmp(raw, check, kBootRecordSize) != 0) return StatusCode::kIoError;
  return Status::Ok();
}

}  // namespace ota
