// Demo app for the stm32f429-fire board: prints its version (FOTA_VERSION, set per build:
// appv1 = FOTAV1, appv2 = FOTAV2) on the console, then echoes what the console receives
// through the interrupt-driven fire::Uart (the modem's Uart is only set up, to link it too).
#include "clock.hpp"
#include "console.hpp"
#include "uart.hpp"

#ifndef FOTA_VERSION
#error "FOTA_VERSION must be defined (e.g. -DFOTA_VERSION=\"FOTAV1\")"
#endif

namespace {

uint8_t g_console_rx[fire::kConsoleRxBytes];
uint8_t g_modem_rx[fire::kModemRxBytes];
fire::Uart g_console(fire::kConsoleUart, g_console_rx);
fire::Uart g_modem(fire::kModemUart, g_modem_rx);

bool Check(const char* what, ota::Status status) {
  if (status.ok()) return true;
  fire::ConsoleWrite("app: ");
  fire::ConsoleWrite(what);
  fire::ConsoleWrite(": ");
  fire::ConsoleWrite(status.name());
  fire::ConsoleWrite("\n");
  return false;
}

}  // namespace

int main() {
  fire::ClockInit();  // the loader already runs the PLL: this only restarts SysTick
  fire::ConsoleInit();
  fire::ConsoleWrite("app: version " FOTA_VERSION "\n");
  // Not read here (the echo is the console's): a failed Init is reported, not fatal.
  (void)Check("modem uart", g_modem.Init());
  if (Check("console uart", g_console.Init())) {
    uint8_t buf[64];
    while (true) {
      const ota::Result<size_t> got = g_console.Read(buf, 1000);
      if (!got.ok()) {
        (void)Check("console read", got.status());  // input lost: echo what comes next
        continue;
      }
      // A console that cannot send has nowhere to report it: the next bytes try again.
      g_console.Write(ota::ConstByteSpan(buf, *got)).IgnoreError();
    }
  }
  while (true)
    __asm volatile("wfi");
}
