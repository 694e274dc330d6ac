#include "sim_board.hpp"

#include <algorithm>
#include <cstring>

namespace ota::testing {

uint32_t SimBoard::running_address() const {
  return profile_.internal_base + profile_.partition(PartitionId::kRunning).offset;
}

FlashArea SimBoard::Area(PartitionId id) {
  Flash* const flashes[kFlashCount] = {&flash_.internal, &flash_.external};
  return OpenPartition(profile_, flashes, id);
}

BootStore SimBoard::Store() {
  return BootStore(Area(PartitionId::kBootStateA), Area(PartitionId::kBootStateB));
}

void SimBoard::FlashRunning(const std::vector<uint8_t>& image) {
  const Partition& p = profile_.partition(PartitionId::kRunning);
  auto& raw = flash_.internal.raw();
  std::fill(raw.begin() + p.offset, raw.begin() + p.offset + p.size, 0xFF);
  std::copy(image.begin(), image.end(), raw.begin() + p.offset);
  // As a factory programmer does: the loader's trust record starts blank, so the next boot
  // records this image as the confirmed one.
  for (PartitionId id : {PartitionId::kTrustA, PartitionId::kTrustB}) {
    const Partition& t = profile_.partition(id);
    std::fill(raw.begin() + t.offset, raw.begin() + t.offset + t.size, 0xFF);
  }
}

Status SimBoard::Stage(const std::vector<uint8_t>& package, const char* version) {
  const Partition& p = profile_.partition(PartitionId::kDownload);
  if (package.size() > p.size) return StatusCode::kTooLarge;
  auto& raw = flash_.external.raw();
  std::fill(raw.begin() + p.offset, raw.begin() + p.offset + p.size, 0xFF);
  std::copy(package.begin(), package.end(), raw.begin() + p.offset);
  BootStore store = Store();
  OTA_TRY_ASSIGN(BootRecord r, store.Load());
  r.status = UpgradeStatus::kDownloaded;
  r.step = UpgradeStep::kStart;
  r.reason = FailReason::kNone;
  r.package_size = static_cast<uint32_t>(package.size());
  r.download_offset = r.package_size;
  std::memset(r.package_version, 0, sizeof(r.package_version));
  std::strncpy(r.package_version, version, sizeof(r.package_version) - 1);
  return store.Save(r);
}

Result<BootDecision> SimBoard::Boot(Installer& installer) {
  Loader loader(profile_, Devices(), installer, ByteSpan(work_));
  return loader.Boot();
}

Result<BootDecision> SimBoard::BootRunningOnly() {
  Loader loader(profile_, Devices(), plain_, ByteSpan(work_));
  return loader.BootRunningOnly();
}

LoaderDevices SimBoard::Devices() {
  return flash_.loader_devices(watchdog_);
}

Result<TrustRecord> SimBoard::Trust() {
  TrustStore store(Area(PartitionId::kTrustA), Area(PartitionId::kTrustB));
  bool found = false;
  return store.Load(&found);
}

Result<uint32_t> SimBoard::OtpCounterValue() {
  OtpCounter counter(flash_.otp, profile_);
  return counter.Read();
}

Status SimBoard::Confirm() {
  BootStore store = Store();
  OTA_TRY_ASSIGN(BootRecord r, store.Load());
  r.flags = static_cast<uint8_t>(r.flags | kBootFlagConfirmed);
  return store.Save(r);
}

Result<BootRecord> SimBoard::Record() {
  return Store().Load();
}

bool SimBoard::RunningHolds(const std::vector<uint8_t>& image) const {
  const Partition& p = profile_.partition(PartitionId::kRunning);
  const auto& raw = flash_.internal.raw();
  return image.size() <= p.size && std::equal(image.begin(), image.end(), raw.begin() + p.offset);
}

std::vector<uint8_t> SimBoard::RunningSlot() const {
  const Partition& p = profile_.partition(PartitionId::kRunning);
  const auto& raw = flash_.internal.raw();
  return std::vector<uint8_t>(raw.begin() + p.offset, raw.begin() + p.offset + p.size);
}

}  // namespace ota::testing
