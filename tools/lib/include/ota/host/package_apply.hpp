// Runs a package through the device's own code path on a simulated board: the image goes into
// the running slot, the package into the download region, and the loader (with the package
// installer) boots once. Used by `ota apply`, `ota pack`'s self-check and the tests.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ota/boot_state.hpp"
#include "ota/profile.hpp"
#include "ota/signature.hpp"

namespace ota::host {

struct ApplyOptions {
  std::vector<TrustedKey> keys;   // empty: the signature is not checked
  uint32_t security_counter = 0;  // the counter the board has recorded
  const BoardProfile* profile = &kStm32f429Fire;
};

struct ApplyResult {
  bool installed = false;
  std::vector<uint8_t> image;  // the running slot's image after the boot, when installed
  FailReason reason = FailReason::kNone;
  std::string error;  // one line when not installed
  std::vector<uint8_t> running_slot_before;
  std::vector<uint8_t> running_slot_after;
  uint32_t security_counter_after = 0;
  double board_seconds = 0;  // what the real board's flash would have taken
};

// `old_image` may be empty (a blank board): then only full packages can install.
ApplyResult ApplyPackage(std::span<const uint8_t> package, std::span<const uint8_t> old_image,
                         const ApplyOptions& options);

}  // namespace ota::host

namespace ota::host {

struct VerifyResult {
  bool valid = false;
  FailReason reason = FailReason::kNone;
  std::string error;  // one line when not valid
};

// The loader's checks that need no running image: structure, signature by one of `keys`,
// slot size and the downgrade rule against `options.security_counter`.
VerifyResult VerifyPackage(std::span<const uint8_t> package, const ApplyOptions& options);

struct TargetCheck {
  bool checked = false;  // false for a diff: its target needs the source image (ApplyPackage)
  bool bootable = false;
  std::string error;  // one line when checked and not bootable
};

// For a package that passes VerifyPackage with the same `options`: if it is a full package,
// decodes its target with the loader's code (no source image needed) and checks that the
// loader would boot it: SHA-256 against the manifest, then CheckAppImage (header, load
// address, trailer, vector table). A target that fails is one the loader would install and
// then refuse to boot (restoring its backup: target-mismatch); `ota verify` says so before
// the package leaves the build machine.
TargetCheck CheckPackageTarget(std::span<const uint8_t> package, const ApplyOptions& options);

}  // namespace ota::host
