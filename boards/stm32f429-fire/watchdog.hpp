// The independent watchdog (IWDG): the loader starts it right after the clock and the
// console, so that nothing on the board runs unwatched from then on: the loader's flash steps
// (it refreshes the watchdog before every flash command, ota::KickingFlash), its halts (which
// reset), a fault handler that spins, and the app it jumps to. A hung app (a new image in its
// trial boots above all) is reset, and the loader counts the trial boot and in the end
// restores the backup (docs/DESIGN.md, "Trial boot"). Apps started by this loader must call
// WatchdogKick at least every kWatchdogMinMs (docs/firmware.md, "Watchdog").
#pragma once

#include <cstdint>

#include "ota/watchdog.hpp"

namespace fire {

// Prescaler /256 and the largest reload, 4095: 32.8 s at the LSI's typical 32 kHz, 22.3 s at
// its fastest (47 kHz), 61.7 s at its slowest (17 kHz). Kick within the shortest time; a hang
// is reset within the longest.
inline constexpr uint32_t kWatchdogTypicalMs = 4096 * 256 / 32;
inline constexpr uint32_t kWatchdogMinMs = 4096 * 256 / 47;
inline constexpr uint32_t kWatchdogMaxMs = 4096 * 256 / 17;

// Starts the watchdog with the timeout above (a reset is the only way to stop it), or sets
// that timeout if the option bytes' hardware watchdog already runs it. Bounded waits for the
// register updates; returns false if they did not complete.
bool WatchdogStart();
void WatchdogKick();

// The IWDG as the device library's ota::Watchdog (for ota::KickingFlash via
// ota::LoaderDevices): Kick() reloads the counter. Start it with WatchdogStart first.
class IwdgWatchdog final : public ota::Watchdog {
 public:
  void Kick() override { WatchdogKick(); }
};

}  // namespace fire
