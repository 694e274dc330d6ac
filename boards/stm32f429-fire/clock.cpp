// Clock tree set-up from RM0090 section 6 (RCC) and 5.1.4 (over-drive), and the SysTick tick.
#include "clock.hpp"

#include "stm32f4_regs.hpp"

namespace fire {
namespace {

using namespace reg;  // NOLINT: register names read better unqualified here

constexpr uint32_t kHsiHz = 16000000;
constexpr uint32_t kSysclkHz = 180000000;
// PLL: VCO in = 25 MHz / M(25) = 1 MHz, VCO = x N(360) = 360 MHz, SYSCLK = / P(2) = 180 MHz;
// Q = 8 (45 MHz: no USB, SDIO or RNG use it here).
constexpr uint32_t kPllM = 25;
constexpr uint32_t kPllN = 360;
constexpr uint32_t kPllPBits = 0;  // P = 2
constexpr uint32_t kPllQ = 8;
// AHB /1, APB1 /4 (45 MHz, max 45), APB2 /2 (90 MHz, max 90): RM0090 6.3.3.
constexpr uint32_t kCfgrPpre1Div4 = 5u << 10;
constexpr uint32_t kCfgrPpre2Div2 = 4u << 13;
constexpr uint32_t kCfgrBusMask = (0xFu << 4) | (7u << 10) | (7u << 13);
// 5 wait states for 150-180 MHz at 2.7-3.6 V: RM0090 table 11.
constexpr uint32_t kFlashLatency5 = 5;
// HSE start-up and PLL/over-drive lock: microseconds in practice; generous bounds.
constexpr uint32_t kStartupPolls = 1000000;

uint32_t g_sysclk_hz = kHsiHz;
uint32_t g_apb1_hz = kHsiHz;
uint32_t g_apb2_hz = kHsiHz;
volatile uint32_t g_millis = 0;

// Before SysTick runs: bounded by a poll count instead of time.
template <typename Ready>
bool WaitFor(Ready ready) {
  for (uint32_t i = 0; i < kStartupPolls; ++i) {
    if (ready()) return true;
  }
  return false;
}

void StartSysTick() {
  SysTickRegs& tick = SYSTICK();
  tick.CTRL = 0;
  tick.LOAD = g_sysclk_hz / 1000 - 1;
  tick.VAL = 0;
  tick.CTRL = kSysTickEnable | kSysTickTickInt | kSysTickCpuClock;
}

bool StartPll() {
  Rcc& rcc = RCC();
  rcc.CR |= kRccCrHseOn;
  if (!WaitFor([&] { return (rcc.CR & kRccCrHseRdy) != 0; })) {
    rcc.CR &= ~kRccCrHseOn;
    return false;
  }
  // Voltage scale 1 can only be chosen with the PLL off (RM0090 5.4.1, VOS).
  rcc.APB1ENR |= kRccApb1Pwr;
  (void)rcc.APB1ENR;  // read back: the clock is on before PWR is written (RM0090 6.3.13)
  Pwr& pwr = PWR();
  pwr.CR |= kPwrCrVosScale1;

  rcc.PLLCFGR = kPllM | (kPllN << 6) | (kPllPBits << 16) | kRccPllcfgrSrcHse | (kPllQ << 24);
  rcc.CR |= kRccCrPllOn;
  if (!WaitFor([&] { return (rcc.CR & kRccCrPllRdy) != 0; })) return false;

  // 180 MHz needs over-drive: enable, then switch, each after the previous is ready (5.1.4).
  pwr.CR |= kPwrCrOdEn;
  if (!WaitFor([&] { return (pwr.CSR & kPwrCsrOdRdy) != 0; })) return false;
  pwr.CR |= kPwrCrOdSwEn;
  if (!WaitFor([&] { return (pwr.CSR & kPwrCsrOdSwRdy) != 0; })) return false;

  // Wait states before the clock goes up, and checked: the core must not outrun the flash.
  FlashIf& flash = FLASH();
  flash.ACR = kFlashAcrPrften | kFlashAcrIcen | kFlashAcrDcen | kFlashLatency5;
  if ((flash.ACR & kFlashAcrLatencyMask) != kFlashLatency5) return false;

  rcc.CFGR = (rcc.CFGR & ~kCfgrBusMask) | kCfgrPpre1Div4 | kCfgrPpre2Div2;
  rcc.CFGR = (rcc.CFGR & ~kRccCfgrSwMask) | kRccCfgrSwPll;
  return WaitFor([&] { return (rcc.CFGR & kRccCfgrSwsMask) == kRccCfgrSwsPll; });
}

}  // namespace

bool ClockInit() {
  bool ok = true;
  if ((RCC().CFGR & kRccCfgrSwsMask) != kRccCfgrSwsPll) ok = StartPll();
  if (ok) {
    g_sysclk_hz = kSysclkHz;
    g_apb1_hz = kSysclkHz / 4;
    g_apb2_hz = kSysclkHz / 2;
  }
  StartSysTick();
  return ok;
}

uint32_t SysclkHz() {
  return g_sysclk_hz;
}
uint32_t Apb1Hz() {
  return g_apb1_hz;
}
uint32_t Apb2Hz() {
  return g_apb2_hz;
}
uint32_t Millis() {
  return g_millis;
}

void DelayMs(uint32_t ms) {
  const uint32_t start = Millis();
  while (Millis() - start < ms)
    __asm volatile("wfi");
}

}  // namespace fire

// Overrides the weak alias in startup.cpp.
extern "C" void SysTick_Handler() {
  fire::g_millis = fire::g_millis + 1;
}
