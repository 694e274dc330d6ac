// The loader for the stm32f429-fire board: finishes or undoes any upgrade the boot state
// records (ota::Loader), then starts the verified app in the running slot. The independent
// watchdog runs from the first milliseconds; every way of not booting ends in a reset
// (docs/firmware.md, "Watchdog").
#include <cstdint>

#include "clock.hpp"
#include "console.hpp"
#include "loader_keys.hpp"
#include "mbedtls_pool.hpp"
#include "ota/loader.hpp"
#include "ota/package_installer.hpp"
#include "ota/profile.hpp"
#include "stm32f4_flash.hpp"
#include "stm32f4_option_bytes.hpp"
#include "stm32f4_otp.hpp"
#include "stm32f4_regs.hpp"
#include "w25q128.hpp"
#include "watchdog.hpp"

namespace {

// Flash faults are retried this many times in place before the loader gives up on the
// external flash and boots the running image alone, if the trust record vouches for it.
constexpr int kBootAttempts = 3;
// A halt says why kHaltReports times, kHaltReportMs apart, then resets: about 5 s, well under
// the watchdog's shortest timeout (fire::kWatchdogMinMs), which it does not refresh.
constexpr int kHaltReports = 5;
constexpr uint32_t kHaltReportMs = 1000;

fire::Stm32f4Flash g_internal;
fire::W25q128 g_external;
fire::Stm32f4Otp g_otp;
fire::Stm32f4OptionBytes g_option_bytes;
fire::IwdgWatchdog g_watchdog;
// Signed packages only, checked against the keys built into this loader.
ota::PackageInstaller g_installer(ota::PackagePolicy{
    ota::Span<const ota::TrustedKey>(fire::kLoaderKeys), false});
// The loader's only scratch buffer (flash copies and hashing).
uint8_t g_work[1024];

void Print(const char* a, const char* b = "", const char* c = "") {
  fire::ConsoleWrite(a);
  fire::ConsoleWrite(b);
  fire::ConsoleWrite(c);
}

// One line on the console: "loader: " and the parts.
void Say(const char* a, const char* b = "", const char* c = "", const char* d = "") {
  Print("loader: ", a, b);
  Print(c, d, "\n");
}

// One line with a number: "loader: <what> <n>". The loader prints status codes, results and
// the boot state as numbers (docs/firmware.md, "Loader console"): their names would not fit
// its 32 KB.
void SayNumber(const char* what, uint32_t n) {
  Print("loader: ", what, " ");
  fire::ConsoleWriteDec(n);
  Print("\n");
}

uint32_t Code(ota::Status s) {
  return static_cast<uint32_t>(s.code());
}

// A system reset (PM0214, AIRCR.SYSRESETREQ): the loader runs again from the start.
[[noreturn]] void Reset() {
  fire::ConsoleFlush();
  fire::reg::Dsb();
  fire::reg::SCB_AIRCR() = fire::reg::kAircrSysResetReq;
  fire::reg::Dsb();
  for (;;) {
  }
}

// Nothing verified to boot: say why a few times, so a console attached a moment later sees
// it, then reset and try again. The watchdog is not refreshed meanwhile: should the delay
// never end (no SysTick), the watchdog resets instead.
[[noreturn]] void Halt(const char* what, const char* why) {
  for (int i = 0; i < kHaltReports; ++i) {
    Say("nothing to boot: ", what, ": ", why);
    fire::DelayMs(kHaltReportMs);
  }
  Say("resetting");
  Reset();
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

// mbedTLS's pool was handed a block it never gave out: nothing in RAM can be trusted.
extern "C" void ota_mbedtls_fatal(int /*status*/) {
  fire::ConsoleWrite("loader: mbedTLS pool corrupted, resetting\n");
  Reset();
}

int main() {
  const bool hse = fire::ClockInit();
  fire::ConsoleInit();
  // From here on nothing runs unwatched: the loader refreshes the watchdog before every flash
  // command (ota::KickingFlash), its halts reset, and the app inherits it. The longest stretch
  // without a refresh (22.3 s at the fastest LSI) is the option-byte program before the first
  // flash command (two bounded waits of 5 s), one flash command (2 s at most; the drivers give
  // up after 5 s), or the one ECDSA P-256 verification of a boot (some 157 million
  // instructions on the emulated M4: about 1 s at 180 MHz, 10-15 s on the 16 MHz HSI). Hashing
  // reads the flash, and so refreshes, every 1 KB (about 64000 instructions).
  const bool watchdog = fire::WatchdogStart();
  Print("\n");
  Say("stm32f429-fire");
  if (!watchdog) Say("watchdog registers did not update");
  // mbedTLS's bignums during ECDSA verification allocate from its pool and nowhere else.
  fire::MbedtlsPoolInit();
  if (!hse) Say("HSE did not start, running on HSI 16 MHz");

  const ota::Status init = g_external.Init();
  if (!init.ok()) {
    SayNumber("w25q128 status", Code(init));
    Print("loader: w25q128 JEDEC id ");
    fire::ConsoleWriteHex(g_external.jedec_id());
    Print("\n");
  }

  const ota::LoaderDevices devices{&g_internal, &g_external, &g_otp, &g_option_bytes, &g_watchdog};
  ota::Loader loader(ota::kStm32f429Fire, devices, g_installer, ota::ByteSpan(g_work));
  ota::Result<ota::BootDecision> decision = ota::StatusCode::kIoError;
  for (int attempt = 0; init.ok() && attempt < kBootAttempts; ++attempt) {
    decision = loader.Boot();
    if (decision.ok()) break;
    SayNumber("boot step failed: status", Code(decision.status()));
  }
  // The external flash is dead or keeps failing: no upgrade can be finished or undone, but
  // the running image still boots if the trust record in internal flash vouches for it.
  const bool running_only = !decision.ok();
  if (running_only) {
    Say("external flash unusable: running image only");
    decision = loader.BootRunningOnly();
    if (!decision.ok()) {
      SayNumber("running image unreadable: status", Code(decision.status()));
      Halt("flash fault", "see the status above");
    }
  }

  if (decision->write_protect != ota::WriteProtectResult::kAlreadyProtected) {
    SayNumber("write protection", static_cast<uint32_t>(decision->write_protect));
  }
  if (!decision->write_protect_error.ok()) {
    SayNumber("write protection failed: status", Code(decision->write_protect_error));
  }
  const ota::BootRecord& record = decision->record;
  if (!running_only) {
    // As the numbers of docs/spec/boot-state.md: the names would not fit the loader's 32 KB
    // (the app reports the reason by name to the platform).
    Print("loader: status ");
    fire::ConsoleWriteDec(static_cast<uint32_t>(record.status));
    Print(" step ");
    fire::ConsoleWriteDec(static_cast<uint32_t>(record.step));
    Print(" reason ");
    fire::ConsoleWriteDec(static_cast<uint32_t>(record.reason));
    Print("\n");
  }
  if (!decision->boot_app) Halt("running slot", "no verified image");

  Print("loader: booting ", decision->image.header.version, " at ");
  fire::ConsoleWriteHex(loader.running_address());
  fire::ConsoleWrite(", ");
  fire::ConsoleWriteDec(decision->image.total_size);
  Print(" bytes\n");
  // The app starts with a whole watchdog period; from here on it kicks, or a hang resets it
  // (and a trial image is counted down to its backup).
  g_watchdog.Kick();
  fire::ConsoleFlush();
  JumpToApp(loader.running_address());
}
