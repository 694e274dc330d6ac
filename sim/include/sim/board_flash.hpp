// The flash devices of one simulated board and the supply they share.
#pragma once

#include "ota/loader.hpp"
#include "ota/profile.hpp"
#include "sim/emulated_flash.hpp"
#include "sim/emulated_otp.hpp"
#include "sim/option_bytes.hpp"
#include "sim/power.hpp"

namespace ota::sim {

// Internal flash (and OTP) timed as the STM32F4's, external as the W25Q128's; the internal
// flash obeys the write protection of `option_bytes`. Not copyable or movable: the devices
// hold pointers to `power` and to each other.
struct BoardFlash {
  explicit BoardFlash(const BoardProfile& profile);
  BoardFlash(const BoardFlash&) = delete;
  BoardFlash& operator=(const BoardFlash&) = delete;

  Flash& flash(FlashId id) { return emulated(id); }
  EmulatedFlash& emulated(FlashId id) { return id == FlashId::kInternal ? internal : external; }
  // What ota::Loader runs on: these devices, and `watchdog` if the caller models one.
  LoaderDevices loader_devices(Watchdog* watchdog = nullptr) {
    return LoaderDevices{&internal, &external, &otp, &option_bytes, watchdog};
  }
  // Makes this board's cells (flash, OTP, option bytes) those of `other`: a snapshot, for
  // sweeps that replay from one prepared state. Counters are not copied.
  void CopyCellsFrom(const BoardFlash& other);
  // Every device's counters added up.
  FlashCounters counters() const;
  void ResetCounters();

  PowerSupply power;                 // declared first: the devices point at it
  EmulatedOptionBytes option_bytes;  // the STM32F4's, for the internal flash
  EmulatedFlash internal;
  EmulatedFlash external;
  EmulatedOtp otp;  // the MCU's OTP area (the anti-rollback counter)
};

}  // namespace ota::sim
