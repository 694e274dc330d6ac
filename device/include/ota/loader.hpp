// The loader's boot core: finish, or undo, whatever upgrade the boot state says is under way,
// then decide what to boot. The state table is in docs/DESIGN.md ("Loader states"); every
// step is idempotent and saved before it starts, so a reset at any instant resumes it.
//
// Trust (docs/DESIGN.md, "Root of trust"): the boot state lives in the external flash and is
// only a request. What may run is decided by the trust record in internal flash: an image
// boots, is backed up or is restored only if its SHA-256 is the confirmed or the trial image
// recorded there, and packages are checked against the anti-rollback counter in OTP.
#pragma once

#include <cstdint>

#include "ota/boot_state.hpp"
#include "ota/flash_area.hpp"
#include "ota/image.hpp"
#include "ota/installer.hpp"
#include "ota/option_bytes.hpp"
#include "ota/otp_counter.hpp"
#include "ota/profile.hpp"
#include "ota/status.hpp"
#include "ota/trust_store.hpp"
#include "ota/watchdog.hpp"

namespace ota {

struct BootDecision {
  bool boot_app = false;          // false: nothing verified to boot, stay in the loader
  ImageInfo image;                // the verified running image, when boot_app
  BootRecord record;              // the boot state as the loader left it
  TrustRecord trust;              // the trust record as the loader left it
  uint32_t security_counter = 0;  // the OTP counter's value
  // What became of the loader's write protection this boot (the port reports it).
  WriteProtectResult write_protect = WriteProtectResult::kAlreadyProtected;
  Status write_protect_error;  // not Ok: the option bytes could not be read or programmed
};

// What the loader runs on. Every pointer must be set, except `watchdog` (none: host tools).
struct LoaderDevices {
  Flash* internal = nullptr;
  Flash* external = nullptr;
  Flash* otp = nullptr;  // the OTP area (kOtpSize bytes)
  OptionBytes* option_bytes = nullptr;
  Watchdog* watchdog = nullptr;
};

class Loader {
 public:
  // `work` is the loader's only scratch buffer (flash copies and hashing), sized by the port.
  Loader(const BoardProfile& profile, const LoaderDevices& devices, Installer& installer,
         ByteSpan work);

  // One power-on. Errors are flash faults (power lost, I/O): the port resets and retries.
  Result<BootDecision> Boot();
  // The external flash is dead or unreadable: no upgrade can be finished or undone, but the
  // running image boots if the trust record vouches for it.
  Result<BootDecision> BootRunningOnly();

  // CPU address of the running slot: images must be linked for it.
  uint32_t running_address() const { return profile_.internal_base + running_.offset(); }

 private:
  // Write-protects the loader's own sectors if they are not (docs/firmware.md).
  Status ProtectLoader();
  // Reads the trust record; on a board whose loader never ran, records the running image
  // (put there by the factory's programmer) as the confirmed one.
  Status LoadTrust();
  // What the boot state says about a trial image, checked against the trust record.
  Status Reconcile(BootRecord& r);
  // Writes the OTP counter's value into the boot state if the copy there differs.
  Status Reflect(BootRecord& r);
  // The running image, and whether the trust record vouches for it.
  Result<BootDecision> Decide(const BootRecord& r);
  // Advances the upgrade by one step; false when there is nothing more to do this boot.
  Result<bool> Step(BootRecord& r);
  Result<bool> Start(BootRecord& r);
  Result<bool> Backup(BootRecord& r);
  Result<bool> Apply(BootRecord& r);
  Result<bool> Verify(BootRecord& r);
  // True unless the slot holds the confirmed image and the backup is not a proven copy of it.
  Result<bool> ConfirmedImageKept(const BootRecord& r);
  // The backup partition starts with a proven copy of `image`.
  Result<bool> BackupHolds(const TrustedImage& image);
  Result<bool> Recover(BootRecord& r);
  // A read or verify fault while restoring: try again on the next boot, a few times.
  Result<bool> RecoverLater(BootRecord& r);
  // The trial is over: forgets it, or keeps the running trial image as the confirmed one
  // when nothing else can run (`keep_running_trial`, or no confirmed image at all).
  Status EndTrial(bool keep_running_trial);
  // The running image if it is the trust record's trial image, else nullptr.
  Result<const ImageInfo*> RunningTrial();
  Result<bool> Fail(BootRecord& r, FailReason reason);
  Result<bool> GoTo(BootRecord& r, UpgradeStep step, FailReason reason = FailReason::kNone);
  Status SaveTrust();
  // The running slot's image, validated once per boot until the loader writes the slot (a
  // full SHA-256 of up to 512 KB is the slow part of a boot).
  Result<ImageInfo> RunningImage();
  InstallerContext Context(const BootRecord& r) const;

  const BoardProfile& profile_;
  NoWatchdog no_watchdog_;
  KickingFlash internal_;
  KickingFlash external_;
  FlashArea running_;
  FlashArea download_;
  FlashArea backup_;
  BootStore store_;
  TrustStore trust_store_;
  OtpCounter counter_;
  OptionBytes& option_bytes_;
  WriteProtectResult write_protect_ = WriteProtectResult::kAlreadyProtected;
  Status write_protect_error_;
  Installer& installer_;
  ByteSpan work_;
  TrustRecord trust_;
  uint32_t otp_value_ = 0;
  bool running_known_ = false;
  Result<ImageInfo> running_image_ = StatusCode::kNotFound;
};

}  // namespace ota
