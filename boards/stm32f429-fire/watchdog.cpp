#include "watchdog.hpp"

#include "clock.hpp"
#include "stm32f4_regs.hpp"

namespace fire {

namespace {
constexpr uint32_t kPrescaler256 = 6;  // PR value for /256 (RM0090 21.4.2)
constexpr uint32_t kReloadMax = 0xFFF;
// PVU/RVU stay set for a few LSI cycles (RM0090 21.4.4): well under a millisecond.
constexpr uint32_t kUpdateTimeoutMs = 100;
}  // namespace

bool WatchdogStart() {
  reg::Iwdg& iwdg = reg::IWDG();
  iwdg.KR = reg::kIwdgKeyStart;  // also starts the LSI
  iwdg.KR = reg::kIwdgKeyAccess;
  iwdg.PR = kPrescaler256;
  iwdg.RLR = kReloadMax;
  const bool updated = WaitWhile(
      [&] { return (iwdg.SR & (reg::kIwdgSrPvu | reg::kIwdgSrRvu)) != 0; }, kUpdateTimeoutMs);
  iwdg.KR = reg::kIwdgKeyReload;  // the counter starts from the new reload value
  return updated;
}

void WatchdogKick() {
  reg::IWDG().KR = reg::kIwdgKeyReload;
}

}  // namespace fire
