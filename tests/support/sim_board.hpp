// A simulated board for loader tests: both flash devices, the loader, and the few things the
// app would do (stage a package, confirm an image), done directly.
#pragma once

#include <cstdint>
#include <vector>

#include "ota/boot_state.hpp"
#include "ota/installer.hpp"
#include "ota/loader.hpp"
#include "sim/board_flash.hpp"

namespace ota::testing {

class SimBoard {
 public:
  explicit SimBoard(const BoardProfile& profile) : profile_(profile), flash_(profile) {}

  const BoardProfile& profile() const { return profile_; }
  sim::BoardFlash& flash() { return flash_; }
  sim::PowerSupply& power() { return flash_.power; }
  uint32_t running_address() const;

  // Writes an image into the running slot as a programmer would (no flash ops counted).
  void FlashRunning(const std::vector<uint8_t>& image);
  // Puts a package in the download region and marks it downloaded, as the app does.
  Status Stage(const std::vector<uint8_t>& package, const char* version);
  // One power-on of the loader.
  Result<BootDecision> Boot(Installer& installer);
  Result<BootDecision> Boot() { return Boot(plain_); }
  // A power-on whose external flash is dead (the port's fallback).
  Result<BootDecision> BootRunningOnly();
  // The devices the loader runs on; the watchdog is refreshed through `watchdog` if set.
  LoaderDevices Devices();
  void set_watchdog(Watchdog* watchdog) { watchdog_ = watchdog; }
  // What the app does once it is healthy after an upgrade.
  Status Confirm();
  Result<BootRecord> Record();
  // The loader's trust record (an idle one if the loader never ran) and the OTP counter.
  Result<TrustRecord> Trust();
  Result<uint32_t> OtpCounterValue();

  bool RunningHolds(const std::vector<uint8_t>& image) const;
  std::vector<uint8_t> RunningSlot() const;

 private:
  BootStore Store();
  FlashArea Area(PartitionId id);

  const BoardProfile& profile_;
  sim::BoardFlash flash_;
  PlainImageInstaller plain_;
  Watchdog* watchdog_ = nullptr;
  uint8_t work_[1024];  // the loader's scratch buffer, as on the board
};

}  // namespace ota::testing
