// Demo app for the stm32f429-fire board: prints its version (FOTA_VERSION, set per build:
// appv1 = FOTAV1, appv2 = FOTAV2) on the console, then idles.
#include "clock.hpp"
#include "console.hpp"

#ifndef FOTA_VERSION
#error "FOTA_VERSION must be defined (e.g. -DFOTA_VERSION=\"FOTAV1\")"
#endif

int main() {
  fire::ClockInit();  // the loader already runs the PLL: this only restarts SysTick
  fire::ConsoleInit();
  fire::ConsoleWrite("app: version " FOTA_VERSION "\n");
  while (true)
    __asm volatile("wfi");
}
