// The boot state: what the app and the loader tell each other across resets
// (docs/spec/boot-state.md gives the exact bytes, docs/DESIGN.md the why).
//
// Power safety: a RecordLog (ota/record_log.hpp) in two external-flash sectors. Nothing in
// it is trusted for what it says about images: the loader checks images against its own
// trust record in internal flash (ota/trust_store.hpp).
#pragma once

#include <cstdint>

#include "ota/flash_area.hpp"
#include "ota/record_log.hpp"
#include "ota/sha256.hpp"
#include "ota/status.hpp"

namespace ota {

enum class UpgradeStatus : uint8_t {
  kIdle = 0,
  kDownloading = 1,     // the app is filling the download region
  kDownloaded = 2,      // a package is staged: the loader installs it on the next boot
  kUpgradedOk = 3,      // installed and verified; on trial until the app confirms it
  kUpgradedFailed = 4,  // refused or rolled back; `reason` says why; old image runs
};

enum class UpgradeStep : uint8_t {
  kStart = 0,    // nothing done yet: check the package
  kBackup = 1,   // copying the running image to the backup region
  kApply = 2,    // writing the new image into the running slot
  kVerify = 3,   // checking the written image against the package's target hash
  kRecover = 4,  // copying the backup back into the running slot
  kDone = 5,
};

// Why an upgrade failed; IotdaResultCode() maps it onto the platform's result codes.
enum class FailReason : uint8_t {
  kNone = 0,
  kPackageInvalid = 1,   // header, size or hash of the staged package is wrong
  kUnsupported = 2,      // a package kind or codec this loader does not know
  kTooLarge = 3,         // the new image does not fit the running slot
  kWrongSource = 4,      // a diff for an image other than the running one
  kInstallFailed = 5,    // applying the package failed
  kTargetMismatch = 6,   // the written image does not hash to the package's target
  kNotConfirmed = 7,     // the new image was not confirmed within its trial boots
  kBackupFailed = 8,     // the running image could not be backed up: nothing was touched
  kNoBootableImage = 9,  // neither the new image nor a backup can be booted
  kBadSignature = 10,    // unsigned, signed by an unknown key, or the signature is wrong
  kDowngrade = 11,       // security counter below the installed one, and not authorised
  kRecoverFailed = 12,   // the backup could not be restored in kMaxRecoverAttempts boots
  kTrialPending = 13,    // a package was staged while the running image was still on trial
};
inline constexpr FailReason kLastFailReason = FailReason::kTrialPending;

// Boots that try to restore the backup (a read or verify fault retries on the next boot)
// before the loader gives up with kRecoverFailed, which it does only if the slot still holds
// an authentic image to boot instead; with none, every boot keeps trying.
inline constexpr uint8_t kMaxRecoverAttempts = 3;

uint8_t IotdaResultCode(FailReason reason);
const char* FailReasonName(FailReason reason);
const char* UpgradeStatusName(UpgradeStatus status);
const char* UpgradeStepName(UpgradeStep step);

inline constexpr uint8_t kBootFlagConfirmed = 0x01;

struct BootRecord {
  UpgradeStatus status = UpgradeStatus::kIdle;
  UpgradeStep step = UpgradeStep::kStart;
  FailReason reason = FailReason::kNone;
  uint32_t sequence = 0;          // set by BootStore::Save
  uint32_t package_size = 0;      // bytes of the staged package
  uint32_t download_offset = 0;   // bytes of the package durably in the download region
  uint32_t security_counter = 0;  // highest counter installed (anti-rollback)
  uint8_t trial_boots_left = 0;
  uint8_t flags = 0;
  uint8_t recover_attempts = 0;      // boots that tried to restore the backup and failed
  uint32_t backup_size = 0;          // bytes of the image held in the backup region; 0 = none
  char package_version[32] = {};     // version the staged package installs
  Sha256Digest package_sha256 = {};  // SHA-256 of the whole package file (the platform's sign)

  bool confirmed() const { return (flags & kBootFlagConfirmed) != 0; }
};

inline constexpr uint32_t kBootRecordMagic = 0x5342544F;  // bytes "OTBS"
inline constexpr uint8_t kBootRecordFormat = 1;
inline constexpr uint32_t kBootRecordSize = kRecordSize;

void EncodeBootRecord(const BootRecord& record, uint8_t (&out)[kBootRecordSize]);
// kNotFound if the bytes are erased, kCorrupt if they are not a valid record.
Result<BootRecord> DecodeBootRecord(const uint8_t (&in)[kBootRecordSize]);

class BootStore {
 public:
  // Two areas of exactly one erase sector each (the profile's kBootStateA/B).
  BootStore(const FlashArea& a, const FlashArea& b);

  // The newest valid record. A board with no record yet gets an idle one (sequence 0).
  Result<BootRecord> Load();
  // Appends `record` with the next sequence number, then reads it back.
  Status Save(BootRecord& record);

  uint32_t slots_per_copy() const { return log_.slots_per_copy(); }

 private:
  RecordLog log_;
};

}  // namespace ota
