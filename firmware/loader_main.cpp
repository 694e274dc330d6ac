// The loader for the stm32f429-fire board: finishes or undoes any upgrade the boot state
// records (ota::Loader), then starts the verified app in the running slot.
#include <mbedtls/memory_buffer_alloc.h>

#include <cstdint>

#include "clock.hpp"
#include "console.hpp"
#include "loader_keys.hpp"
#include "ota/loader.hpp"
#include "ota/package_installer.hpp"
#include "ota/profile.hpp"
#include "stm32f4_flash.hpp"
#include "stm32f4_regs.hpp"
#include "w25q128.hpp"
#include "watchdog.hpp"

namespace {

// Flash faults are retried this many times in place before the loader gives up.
constexpr int kBootAttempts = 3;
constexpr uint32_t kHaltReportMs = 5000;

fire::Stm32f4Flash g_internal;
fire::W25q128 g_external;
// Signed packages only, checked against the keys built into this loader.
ota::PackageInstaller g_installer(ota::PackagePolicy{
    ota::Span<const ota::TrustedKey>(fire::kLoaderKeys), false});
// The loader's only scratch buffer (flash copies and hashing).
uint8_t g_work[1024];
// mbedTLS's bignums during ECDSA verification allocate from here and nowhere else.
constexpr uint32_t kMbedtlsArenaSize = 6 * 1024;
alignas(8) unsigned char g_mbedtls_arena[kMbedtlsArenaSize];

void Print(const char* a, const char* b = "", const char* c = "") {
  fire::ConsoleWrite(a);
  fire::ConsoleWrite(b);
  fire::ConsoleWrite(c);
}

// Nothing verified to boot: stay here and keep saying why, so a console attached later sees it.
[[noreturn]] void Halt(const char* what, const char* why) {
  while (true) {
    Print("loader: nothing to boot: ", what, ": ");
    Print(why, "\n");
    fire::DelayMs(kHaltReportMs);
  }
}

// Starts the app as if from reset (fixes the seed's defect 8): nothing of the loader may fire
// once the app's vector table is in place, and the app starts on its own stack.
[[noreturn]] void JumpToApp(uint32_t app_address) {
  using namespace fire::reg;  // NOLINT: register names read better unqualified here
  const uint32_t* const vectors = reinterpret_cast<const uint32_t*>(app_address);
  const uint32_t initial_sp = vectors[0];
  const uint32_t reset_handler = vectors[1];

  __asm volatile("cpsid i" ::: "memory");
  SYSTICK().CTRL = 0;
  SCB_ICSR() = kIcsrPendStClr | kIcsrPendSvClr;
  for (int i = 0; i < kNvicWords; ++i) {
    NVIC_ICER()[i] = 0xFFFFFFFFu;
    NVIC_ICPR()[i] = 0xFFFFFFFFu;
  }
  SCB_VTOR() = app_address;
  Dsb();
  Isb();
  // CONTROL = 0: privileged, main stack, no FP context; then MSP from word 0 and branch to
  // word 1. Nothing may touch the old stack after the MSP write.
  __asm volatile(
      "msr control, %[zero]\n"
      "isb\n"
      "msr msp, %[sp]\n"
      "bx %[pc]\n"
      :
      : [zero] "r"(0u), [sp] "r"(initial_sp), [pc] "r"(reset_handler)
      : "memory");
  __builtin_unreachable();
}

}  // namespace

// mbedTLS found its arena corrupted (memory_buffer_alloc): nothing in RAM can be trusted.
extern "C" void ota_mbedtls_fatal(int /*status*/) {
  fire::ConsoleWrite("loader: mbedTLS arena corrupted, resetting\n");
  fire::ConsoleFlush();
  fire::reg::Dsb();
  fire::reg::SCB_AIRCR() = fire::reg::kAircrSysResetReq;
  fire::reg::Dsb();
  for (;;) {
  }
}

int main() {
  const bool hse = fire::ClockInit();
  fire::ConsoleInit();
  Print("\nloader: stm32f429-fire\n");
  mbedtls_memory_buffer_alloc_init(g_mbedtls_arena, sizeof(g_mbedtls_arena));
  if (!hse) Print("loader: HSE did not start, running on HSI 16 MHz\n");

  const ota::Status init = g_external.Init();
  if (!init.ok()) {
    fire::ConsoleWrite("loader: w25q128 JEDEC id ");
    fire::ConsoleWriteHex(g_external.jedec_id());
    Print("\n");
    Halt("w25q128", init.name());
  }

  ota::Flash* const flashes[ota::kFlashCount] = {&g_internal, &g_external};
  ota::Loader loader(ota::kStm32f429Fire, flashes, g_installer, ota::ByteSpan(g_work));
  ota::Result<ota::BootDecision> decision = ota::StatusCode::kIoError;
  for (int attempt = 0; attempt < kBootAttempts; ++attempt) {
    decision = loader.Boot();
    if (decision.ok()) break;
    Print("loader: boot step failed: ", decision.status().name(), "\n");
  }
  if (!decision.ok()) Halt("flash fault", decision.status().name());

  const ota::BootRecord& record = decision->record;
  Print("loader: status ", ota::UpgradeStatusName(record.status));
  Print(" step ", ota::UpgradeStepName(record.step));
  Print(" reason ", ota::FailReasonName(record.reason), "\n");
  if (!decision->boot_app) Halt("running slot", "no verified image");

  Print("loader: booting ", decision->image.header.version, " at ");
  fire::ConsoleWriteHex(loader.running_address());
  fire::ConsoleWrite(", ");
  fire::ConsoleWriteDec(decision->image.total_size);
  Print(" bytes\n");
  // From here an app that hangs is reset (and a trial image counted down to its backup).
  if (!fire::WatchdogStart()) Print("loader: watchdog registers did not update\n");
  fire::ConsoleFlush();
  JumpToApp(loader.running_address());
}
