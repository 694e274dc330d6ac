// Fuzz target: a package in the download region, through the loader's whole path on a small
// simulated board: manifest and signature-block parsing, the signature check with a trusted
// key (which fuzzed bytes cannot satisfy), and, with an installer that skips signatures, the
// codec into the running slot. Whatever the bytes, the loader ends in a consistent state.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ota/loader.hpp"
#include "ota/package_installer.hpp"
#include "sim/board_flash.hpp"

namespace {

// P-256's generator point: a valid public key (of the private key 1) for the trusted list.
constexpr uint8_t kGenerator[ota::kPublicKeySize] = {
    0x04, 0x6B, 0x17, 0xD1, 0xF2, 0xE1, 0x2C, 0x42, 0x47, 0xF8, 0xBC, 0xE6, 0xE5,
    0x63, 0xA4, 0x40, 0xF2, 0x77, 0x03, 0x7D, 0x81, 0x2D, 0xEB, 0x33, 0xA0, 0xF4,
    0xA1, 0x39, 0x45, 0xD8, 0x98, 0xC2, 0x96, 0x4F, 0xE3, 0x42, 0xE2, 0xFE, 0x1A,
    0x7F, 0x9B, 0x8E, 0xE7, 0xEB, 0x4A, 0x7C, 0x0F, 0x9E, 0x16, 0x2B, 0xCE, 0x33,
    0x57, 0x6B, 0x31, 0x5E, 0xCE, 0xCB, 0xB6, 0x40, 0x68, 0x37, 0xBF, 0x51, 0xF5};

ota::TrustedKey MakeKey() {
  ota::TrustedKey k{};
  std::memcpy(k.point, kGenerator, sizeof(kGenerator));
  k.permissions = ota::kKeyMayDowngrade;
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ota::BoardProfile& profile = ota::kSimSmall;
  static ota::sim::BoardFlash board(profile);
  static const ota::TrustedKey keys[1] = {MakeKey()};
  static ota::PackageInstaller strict(
      ota::PackagePolicy{ota::Span<const ota::TrustedKey>(keys), false});
  static ota::PackageInstaller lax(ota::PackagePolicy{{}, true});

  const ota::Partition& download = profile.partition(ota::PartitionId::kDownload);
  const ota::Partition& running = profile.partition(ota::PartitionId::kRunning);
  if (size == 0 || size > download.size) return 0;
  auto& ext = board.external.raw();
  std::fill(ext.begin(), ext.end(), 0xFF);
  std::memcpy(&ext[download.offset], data, size);
  auto& in = board.internal.raw();
  std::fill(in.begin() + running.offset, in.begin() + running.offset + running.size, 0xFF);

  ota::Flash* const flashes[ota::kFlashCount] = {&board.internal, &board.external};
  ota::BootStore store(ota::OpenPartition(profile, flashes, ota::PartitionId::kBootStateA),
                       ota::OpenPartition(profile, flashes, ota::PartitionId::kBootStateB));
  ota::BootRecord record;
  record.status = ota::UpgradeStatus::kDownloaded;
  record.package_size = static_cast<uint32_t>(size);
  record.download_offset = record.package_size;
  if (!store.Save(record).ok()) __builtin_trap();

  uint8_t work[1024];
  ota::PackageInstaller& installer = (data[0] & 1) != 0 ? lax : strict;
  ota::Loader loader(profile, board.loader_devices(), installer, ota::ByteSpan(work));
  const ota::Result<ota::BootDecision> d = loader.Boot();
  if (!d.ok()) __builtin_trap();  // no power fault here: the loader must settle
  const ota::UpgradeStatus s = d->record.status;
  if (s != ota::UpgradeStatus::kUpgradedOk && s != ota::UpgradeStatus::kUpgradedFailed) {
    __builtin_trap();
  }
  if (&installer == &strict && s == ota::UpgradeStatus::kUpgradedOk) __builtin_trap();
  return 0;
}
