#include <cstring>

#include "ota/installer.hpp"

namespace ota {

Result<PackageInfo> PlainImageInstaller::Inspect(const InstallerContext& ctx, FailReason* reason) {
  *reason = FailReason::kPackageInvalid;
  if (ctx.staged_size == 0 || ctx.staged_size > ctx.staged.size()) {
    return StatusCode::kCorrupt;
  }
  // Only the staged bytes count: the image must end exactly where the package ends.
  const FlashArea staged(ctx.staged.flash(), ctx.staged.offset(), ctx.staged_size);
  const Result<ImageInfo> image = ValidateImage(staged, ctx.running_address, ctx.work);
  if (!image.ok()) {
    if (image.status().code() == StatusCode::kPowerLost) return image.status();
    if (image.status().code() == StatusCode::kUnsupported) *reason = FailReason::kUnsupported;
    return image.status();
  }
  if (image->total_size != ctx.staged_size) return StatusCode::kCorrupt;
  if (image->total_size > ctx.running.size()) {
    *reason = FailReason::kTooLarge;
    return StatusCode::kTooLarge;
  }
  PackageInfo info;
  info.target_size = image->total_size;
  OTA_TRY(HashArea(staged, 0, info.target_size, ctx.work, info.target_sha256));
  std::memcpy(info.version, image->header.version, kVersionMax);
  *reason = FailReason::kNone;
  return info;
}

Result<PackageInfo> PlainImageInstaller::Check(const InstallerContext& ctx, FailReason* reason) {
  // A full image does not depend on the running one: the checks are those of Inspect.
  return Inspect(ctx, reason);
}

Status PlainImageInstaller::Apply(const InstallerContext& ctx, const FlashArea& /*old*/,
                                  SlotWriter& out) {
  return CopyToWriter(ctx.staged, ctx.staged_size, out, ctx.work);
}

}  // namespace ota
