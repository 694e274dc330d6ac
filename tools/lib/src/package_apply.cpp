#include "ota/host/package_apply.hpp"

#include <algorithm>
#include <memory>

#include "ota/host/package_builder.hpp"
#include "ota/loader.hpp"
#include "ota/otp_counter.hpp"
#include "ota/package_installer.hpp"
#include "ota/sha256.hpp"
#include "sim/board_flash.hpp"

namespace ota::host {

namespace {

std::vector<uint8_t> Slice(const std::vector<uint8_t>& raw, const Partition& p) {
  return std::vector<uint8_t>(raw.begin() + p.offset, raw.begin() + p.offset + p.size);
}

}  // namespace

ApplyResult ApplyPackage(std::span<const uint8_t> package, std::span<const uint8_t> old_image,
                         const ApplyOptions& options) {
  ApplyResult result;
  const BoardProfile& profile = *options.profile;
  const Partition& running = profile.partition(PartitionId::kRunning);
  const Partition& download = profile.partition(PartitionId::kDownload);
  if (package.size() > download.size) {
    result.error = "the package is " + std::to_string(package.size()) +
                   " bytes, larger than the download region (" + std::to_string(download.size) +
                   ")";
    return result;
  }
  if (old_image.size() > running.size) {
    result.error = "the old image is larger than the running slot";
    return result;
  }
  // 17 MB of simulated flash: on the heap, not the stack.
  auto board = std::make_unique<sim::BoardFlash>(profile);
  auto& internal = board->internal.raw();
  std::copy(old_image.begin(), old_image.end(), internal.begin() + running.offset);
  auto& external = board->external.raw();
  std::copy(package.begin(), package.end(), external.begin() + download.offset);
  result.running_slot_before = Slice(internal, running);

  Flash* const flashes[kFlashCount] = {&board->internal, &board->external};
  BootStore store(OpenPartition(profile, flashes, PartitionId::kBootStateA),
                  OpenPartition(profile, flashes, PartitionId::kBootStateB));
  Result<BootRecord> loaded = store.Load();
  if (!loaded.ok()) {
    result.error = std::string("simulated boot state: ") + loaded.status().name();
    return result;
  }
  BootRecord record = loaded.value();
  record.status = UpgradeStatus::kDownloaded;
  record.step = UpgradeStep::kStart;
  record.package_size = static_cast<uint32_t>(package.size());
  record.download_offset = record.package_size;
  record.security_counter = options.security_counter;
  if (const Status saved = store.Save(record); !saved.ok()) {
    result.error = std::string("simulated boot state: ") + saved.name();
    return result;
  }
  board->ResetCounters();

  PackagePolicy policy;
  policy.keys = Span<const TrustedKey>(options.keys.data(), options.keys.size());
  policy.accept_unsigned = options.keys.empty();
  auto installer = std::make_unique<PackageInstaller>(policy);
  // The board's anti-rollback counter lives in OTP: burn it to the value asked for.
  OtpCounter otp(board->otp, profile);
  if (const Status raised = otp.Raise(options.security_counter); !raised.ok()) {
    result.error = "security counter " + std::to_string(options.security_counter) +
                   " does not fit the OTP counter (at most " + std::to_string(otp.max()) + ")";
    return result;
  }
  uint8_t work[1024];  // the loader's scratch buffer, as on the board
  Loader loader(profile, board->loader_devices(), *installer, ByteSpan(work));
  const Result<BootDecision> decision = loader.Boot();
  result.board_seconds = static_cast<double>(board->counters().time_typ_us) / 1e6;
  result.running_slot_after = Slice(internal, running);
  if (!decision.ok()) {
    result.error = std::string("simulated loader: ") + decision.status().name();
    return result;
  }
  const BootRecord& after = decision->record;
  result.reason = after.reason;
  // The counter the OTP will hold once the new image is confirmed (the loader burns it then).
  result.security_counter_after = decision->trust.trial.present()
                                      ? decision->trust.trial.security_counter
                                      : decision->security_counter;
  if (after.status == UpgradeStatus::kUpgradedOk && decision->boot_app) {
    result.installed = true;
    result.image.assign(internal.begin() + running.offset,
                        internal.begin() + running.offset + decision->image.total_size);
    return result;
  }
  result.error = std::string("refused: ") + FailReasonName(after.reason) + " (IoTDA result " +
                 std::to_string(IotdaResultCode(after.reason)) + ")";
  if (installer->package_error() != PackageError::kNone) {
    result.error += std::string(": ") + PackageErrorName(installer->package_error());
  }
  return result;
}

}  // namespace ota::host

namespace ota::host {

namespace {
// A simulated board with a package in its download region, and what the installer's checks
// need of it, and an installer with the keys of `options` (`accept_unsigned`: none needed).
struct StagedPackage {
  StagedPackage(std::span<const uint8_t> package, const ApplyOptions& options, bool accept_unsigned)
      : profile(*options.profile), board(std::make_unique<sim::BoardFlash>(profile)) {
    const Partition& download = profile.partition(PartitionId::kDownload);
    std::copy(package.begin(), package.end(), board->external.raw().begin() + download.offset);
    Flash* const flashes[kFlashCount] = {&board->internal, &board->external};
    staged = OpenPartition(profile, flashes, PartitionId::kDownload);
    running = OpenPartition(profile, flashes, PartitionId::kRunning);
    size = static_cast<uint32_t>(package.size());
    record.security_counter = options.security_counter;
    PackagePolicy policy;
    policy.keys = Span<const TrustedKey>(options.keys.data(), options.keys.size());
    policy.accept_unsigned = accept_unsigned;
    installer = std::make_unique<PackageInstaller>(policy);
  }
  InstallerContext context() {
    return InstallerContext{
        staged, size, running, profile.internal_base + running.offset(), record, ByteSpan(work)};
  }

  const BoardProfile& profile;
  std::unique_ptr<sim::BoardFlash> board;  // 17 MB of simulated flash: on the heap
  FlashArea staged, running;
  uint32_t size = 0;
  BootRecord record;
  std::unique_ptr<PackageInstaller> installer;
  uint8_t work[1024] = {};  // the loader's scratch buffer, as on the board
};
}  // namespace

VerifyResult VerifyPackage(std::span<const uint8_t> package, const ApplyOptions& options) {
  VerifyResult result;
  const BoardProfile& profile = *options.profile;
  const Partition& download = profile.partition(PartitionId::kDownload);
  if (package.empty() || package.size() > download.size) {
    result.reason = FailReason::kPackageInvalid;
    result.error =
        package.empty() ? "the package is empty" : "the package is larger than the download region";
    return result;
  }
  // A signature is always checked here: without keys, every package is refused.
  StagedPackage p(package, options, false);
  PackageInstaller* const installer = p.installer.get();
  const InstallerContext ctx = p.context();
  FailReason reason = FailReason::kNone;
  const Result<PackageInfo> info = installer->Inspect(ctx, &reason);
  result.valid = info.ok();
  result.reason = info.ok() ? FailReason::kNone : reason;
  if (!result.valid) {
    result.error = std::string(FailReasonName(result.reason)) + " (IoTDA result " +
                   std::to_string(IotdaResultCode(result.reason)) + ")";
    if (installer->package_error() != PackageError::kNone) {
      result.error += std::string(": ") + PackageErrorName(installer->package_error());
    }
  }
  return result;
}

TargetCheck CheckPackageTarget(std::span<const uint8_t> package, const ApplyOptions& options) {
  TargetCheck result;
  const BoardProfile& profile = *options.profile;
  const Partition& download = profile.partition(PartitionId::kDownload);
  if (package.empty() || package.size() > download.size) return result;
  StagedPackage p(package, options, options.keys.empty());
  PackageInstaller* const installer = p.installer.get();
  const FlashArea& running = p.running;
  const InstallerContext ctx = p.context();
  FailReason reason = FailReason::kNone;
  const Result<PackageInfo> info = installer->Inspect(ctx, &reason);
  if (!info.ok() || installer->manifest().kind != PackageKind::kFull) return result;

  result.checked = true;
  SlotWriter out(running, info->target_size);
  const FlashArea no_source(running.flash(), running.offset(), 0);
  const Status decoded = installer->Apply(ctx, no_source, out);
  if (!decoded.ok()) {
    result.error = std::string("the payload does not decode: ") + decoded.name();
    return result;
  }
  const auto& internal = p.board->internal.raw();
  const std::span<const uint8_t> target(internal.data() + running.offset(), info->target_size);
  Sha256 sha;
  Sha256Digest digest;
  if (!sha.Update(ConstByteSpan(target.data(), target.size())).ok() || !sha.Finish(digest).ok() ||
      !DigestEqual(digest, info->target_sha256)) {
    result.error = "the decoded image does not hash to the manifest's target_sha256";
    return result;
  }
  std::string version;
  result.error = CheckAppImage(target, profile, &version);
  result.bootable = result.error.empty();
  return result;
}

}  // namespace ota::host
