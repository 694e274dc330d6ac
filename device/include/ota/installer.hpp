// "Apply" as an interface: the loader's state machine is the same for every package format;
// an Installer knows one format (plain image now; signed full/diff packages plug in later).
#pragma once

#include <cstdint>

#include "ota/boot_state.hpp"
#include "ota/flash_area.hpp"
#include "ota/image.hpp"
#include "ota/sha256.hpp"
#include "ota/status.hpp"

namespace ota {

// What a staged package promises to produce.
struct PackageInfo {
  uint32_t target_size = 0;         // bytes of the new image, trailer included
  Sha256Digest target_sha256 = {};  // SHA-256 of all target_size bytes
  char version[kVersionMax] = {};
  uint32_t security_counter = 0;
  // An authorised downgrade: the loader records this package's (lower) counter once installed.
  bool downgrade = false;
};

// An installer's refusal: which FailReason to record (and so which IoTDA result code).
struct InstallerContext {
  const FlashArea& staged;   // the download region
  uint32_t staged_size;      // bytes of the package in it
  const FlashArea& running;  // the running slot
  uint32_t running_address;  // CPU address of the running slot
  const BootRecord& record;  // the boot state as the loader read it
  ByteSpan work;             // scratch buffer owned by the loader
};

class Installer {
 public:
  // Before anything is touched: authenticates the package and checks it against the running
  // image (source hash for a diff, anti-rollback, slot size). On refusal sets `*reason`.
  virtual Result<PackageInfo> Check(const InstallerContext& ctx, FailReason* reason) = 0;
  // Re-reads what the package promises, without the running image (which may by now be
  // half-written): the loader calls it when resuming at Apply or Verify after a reset.
  virtual Result<PackageInfo> Inspect(const InstallerContext& ctx, FailReason* reason) = 0;
  // Writes the new image through `out`, in order. The old image can be read from `old`
  // (the backup region), never from the running slot, which is being overwritten.
  virtual Status Apply(const InstallerContext& ctx, const FlashArea& old, SlotWriter& out) = 0;

 protected:
  ~Installer() = default;  // not virtual: see Flash; never deleted through this interface
};

// The plain full-image installer: the staged package is an app image (header + SHA-256
// trailer, docs/spec/image.md) that is copied into the running slot.
class PlainImageInstaller final : public Installer {
 public:
  Result<PackageInfo> Check(const InstallerContext& ctx, FailReason* reason) override;
  Result<PackageInfo> Inspect(const InstallerContext& ctx, FailReason* reason) override;
  Status Apply(const InstallerContext& ctx, const FlashArea& old, SlotWriter& out) override;
};

}  // namespace ota
