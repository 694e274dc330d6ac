// The loader's boot core: finish, or undo, whatever upgrade the boot state says is under way,
// then decide what to boot. The state table is in docs/DESIGN.md ("Loader states"); every
// step is idempotent and saved before it starts, so a reset at any instant resumes it.
#pragma once

#include <cstdint>

#include "ota/boot_state.hpp"
#include "ota/flash_area.hpp"
#include "ota/image.hpp"
#include "ota/installer.hpp"
#include "ota/profile.hpp"
#include "ota/status.hpp"

namespace ota {

struct BootDecision {
  bool boot_app = false;  // false: nothing verified to boot, stay in the loader
  ImageInfo image;        // the verified running image, when boot_app
  BootRecord record;      // the boot state as the loader left it
};

class Loader {
 public:
  // `work` is the loader's only scratch buffer (flash copies and hashing), sized by the port.
  Loader(const BoardProfile& profile, Flash* const (&flashes)[kFlashCount], Installer& installer,
         ByteSpan work);

  // One power-on. Errors are flash faults (power lost, I/O): the port resets and retries.
  Result<BootDecision> Boot();

  // CPU address of the running slot: images must be linked for it.
  uint32_t running_address() const { return profile_.internal_base + running_.offset(); }

 private:
  // Advances the upgrade by one step; false when there is nothing more to do this boot.
  Result<bool> Step(BootRecord& r);
  Result<bool> Start(BootRecord& r);
  Result<bool> Backup(BootRecord& r);
  Result<bool> Apply(BootRecord& r);
  Result<bool> Verify(BootRecord& r);
  Result<bool> Recover(BootRecord& r);
  Result<bool> Fail(BootRecord& r, FailReason reason);
  Result<bool> GoTo(BootRecord& r, UpgradeStep step, FailReason reason = FailReason::kNone);
  InstallerContext Context(const BootRecord& r) const;

  const BoardProfile& profile_;
  FlashArea running_;
  FlashArea download_;
  FlashArea backup_;
  BootStore store_;
  Installer& installer_;
  ByteSpan work_;
};

}  // namespace ota
