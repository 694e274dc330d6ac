// The independent watchdog (IWDG): the loader starts it just before it jumps to an app, so an
// app that hangs (a new image in its trial boots above all) is reset, and the loader counts
// the trial boot and in the end restores the backup (docs/DESIGN.md, "Trial boot"). Apps
// started by this loader must call WatchdogKick at least every kWatchdogMinMs.
#pragma once

#include <cstdint>

namespace fire {

// Prescaler /256 and the largest reload, 4095: 32.8 s at the LSI's typical 32 kHz, but only
// 22.3 s at its fastest (47 kHz). Apps must kick within the shorter time.
inline constexpr uint32_t kWatchdogTypicalMs = 4096 * 256 / 32;
inline constexpr uint32_t kWatchdogMinMs = 4096 * 256 / 47;

// Starts the watchdog with the timeout above (a reset is the only way to stop it). Bounded
// waits for the register updates; returns false if they did not complete.
bool WatchdogStart();
void WatchdogKick();

}  // namespace fire
