// Installers that misbehave on purpose, to drive the loader down its recovery paths.
#pragma once

#include "ota/installer.hpp"

namespace ota::testing {

// Accepts the package like the plain installer, then writes the image with one byte changed,
// so the loader's verify step must catch it and recover the old image.
class CorruptingInstaller final : public Installer {
 public:
  Result<PackageInfo> Check(const InstallerContext& ctx, FailReason* reason) override {
    return plain_.Check(ctx, reason);
  }
  Result<PackageInfo> Inspect(const InstallerContext& ctx, FailReason* reason) override {
    return plain_.Inspect(ctx, reason);
  }
  Status Apply(const InstallerContext& ctx, const FlashArea& old, SlotWriter& out) override;

 private:
  PlainImageInstaller plain_;
};

}  // namespace ota::testing
