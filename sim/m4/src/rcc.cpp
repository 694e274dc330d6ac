#include "sim/m4/rcc.hpp"

#include "sim/m4/memory_map.hpp"

namespace ota::sim::m4 {
namespace {

constexpr uint32_t kCr = 0x00;
constexpr uint32_t kPllcfgr = 0x04;
constexpr uint32_t kCfgr = 0x08;
constexpr uint32_t kCir = 0x0C;
constexpr uint32_t kAhb1Rstr = 0x10;
constexpr uint32_t kApb2Rstr = 0x24;
constexpr uint32_t kAhb2Enr = 0x34;
constexpr uint32_t kAhb3Enr = 0x38;
constexpr uint32_t kCsr = 0x74;

constexpr uint32_t kCrHsiOn = 1u << 0;
constexpr uint32_t kCrHsiRdy = 1u << 1;
constexpr uint32_t kCrHseOn = 1u << 16;
constexpr uint32_t kCrHseRdy = 1u << 17;
constexpr uint32_t kCrPllOn = 1u << 24;
constexpr uint32_t kCrPllRdy = 1u << 25;
constexpr uint32_t kCrReadyBits = kCrHsiRdy | kCrHseRdy | kCrPllRdy | (1u << 27) | (1u << 29);
constexpr uint32_t kPllSrcHse = 1u << 22;

// Reset values (RM0090 6.3.1-6.3.3, 6.3.10-6.3.14, 6.3.21).
constexpr uint32_t kCrReset = 0x00000083;
constexpr uint32_t kPllcfgrReset = 0x24003010;
constexpr uint32_t kAhb1EnrReset = 0x00100000;  // CCMDATARAMEN
constexpr uint32_t kCsrReset = 0x0E000000;      // PORRSTF, PINRSTF, BORRSTF after power-on

// Minimum wait states for `hz` at 2.7-3.6 V (RM0090 table 11): 30 MHz per wait state.
uint32_t WaitStatesFor(uint32_t hz) {
  return (hz - 1) / 30'000'000;
}

}  // namespace

Rcc::Rcc(Machine& machine, std::function<uint32_t()> flash_latency)
    : Peripheral(machine, "RCC", kRccBase, kPeripheralBlock),
      flash_latency_(std::move(flash_latency)) {
  Reset();
}

void Rcc::NoteReset(ResetCause cause) {
  constexpr uint32_t kPinRstf = 1u << 26;
  switch (cause) {
    case ResetCause::kPowerOn:
      csr_ = kCsrReset;
      break;
    case ResetCause::kSoftware:
      csr_ |= kPinRstf | (1u << 28);  // SFTRSTF
      break;
    case ResetCause::kWatchdog:
      csr_ |= kPinRstf | (1u << 29);  // IWDGRSTF
      break;
  }
}

void Rcc::Reset() {
  cr_ = kCrReset;
  pllcfgr_ = kPllcfgrReset;
  cfgr_ = 0;
  cir_ = 0;
  rstr_[0] = rstr_[1] = 0;
  enr_[0] = kAhb1EnrReset;
  enr_[1] = enr_[2] = 0;
  other_enr_[0] = other_enr_[1] = 0;
  pwr_cr = 0x0000C000;  // VOS scale 1 (RM0090 5.4.1 reset value)
  sysclk_hz_ = kHsiHz;
}

bool Rcc::Enabled(const ClockGate& gate) const {
  const uint32_t index = gate.offset == kRccAhb1Enr ? 0 : gate.offset == kRccApb1Enr ? 1 : 2;
  return (enr_[index] >> gate.bit & 1u) != 0;
}

uint32_t Rcc::PllHz() {
  const uint32_t m = pllcfgr_ & 0x3F;
  const uint32_t n = (pllcfgr_ >> 6) & 0x1FF;
  const uint32_t p = 2 * (((pllcfgr_ >> 16) & 3) + 1);
  const uint32_t in = (pllcfgr_ & kPllSrcHse) != 0 ? kHseHz : kHsiHz;
  if (m < 2 || n < 50 || n > 432) {
    Fail("PLLCFGR " + Hex(pllcfgr_) + ": PLLM must be 2-63 and PLLN 50-432 (RM0090 6.3.2)");
    return kHsiHz;
  }
  const uint64_t vco_in = in / m;
  const uint64_t vco = vco_in * n;
  if (vco_in < 1'000'000 || vco_in > 2'000'000 || vco < 100'000'000 || vco > 432'000'000) {
    Fail("PLLCFGR " + Hex(pllcfgr_) + ": VCO input " + std::to_string(vco_in) + " Hz or output " +
         std::to_string(vco) + " Hz outside 1-2 MHz / 100-432 MHz (RM0090 6.3.2)");
  }
  return static_cast<uint32_t>(vco / p);
}

void Rcc::UpdateSysclk() {
  const uint32_t sw = cfgr_ & 3;
  uint32_t hz = kHsiHz;
  if (sw == 1) {
    if ((cr_ & kCrHseOn) == 0) Fail("SYSCLK switched to the HSE while it is off");
    hz = kHseHz;
  } else if (sw == 2) {
    if ((cr_ & kCrPllOn) == 0) Fail("SYSCLK switched to the PLL while it is off");
    hz = PllHz();
  } else if (sw == 3) {
    Fail("CFGR.SW = 3 is not allowed (RM0090 6.3.3)");
  }
  if (hz > 180'000'000) Fail("SYSCLK " + std::to_string(hz) + " Hz is above 180 MHz");
  if (hz > 168'000'000 && !over_drive_switched()) {
    Fail("SYSCLK " + std::to_string(hz) + " Hz needs the over-drive switched on (RM0090 5.1.4)");
  }
  if (flash_latency_() < WaitStatesFor(hz)) {
    Fail("SYSCLK " + std::to_string(hz) + " Hz with " + std::to_string(flash_latency_()) +
         " flash wait states: at least " + std::to_string(WaitStatesFor(hz)) +
         " are needed at 2.7-3.6 V (RM0090 table 11)");
  }
  const uint32_t hpre = (cfgr_ >> 4) & 0xF;
  if (hpre >= 8) Fail("AHB prescaler other than 1 is not modelled");
  sysclk_hz_ = hz;
  if (apb2_hz() > 90'000'000) Fail("APB2 above 90 MHz (RM0090 6.3.3)");
  if (apb1_hz() > 45'000'000) Fail("APB1 above 45 MHz (RM0090 6.3.3)");
  machine_.TimersChanged();
}

uint32_t Rcc::hclk_hz() const {
  return sysclk_hz_;
}

uint32_t Rcc::apb1_hz() const {
  const uint32_t ppre = (cfgr_ >> 10) & 7;
  return ppre < 4 ? sysclk_hz_ : sysclk_hz_ >> (ppre - 3);
}

uint32_t Rcc::apb2_hz() const {
  const uint32_t ppre = (cfgr_ >> 13) & 7;
  return ppre < 4 ? sysclk_hz_ : sysclk_hz_ >> (ppre - 3);
}

uint32_t Rcc::Read(uint32_t offset) {
  switch (offset) {
    case kCr:
      return cr_;
    case kPllcfgr:
      return pllcfgr_;
    case kCfgr:
      return cfgr_;
    case kCir:
      return cir_;
    case kAhb1Rstr:
      return rstr_[0];
    case kApb2Rstr:
      return rstr_[1];
    case kRccAhb1Enr:
      return enr_[0];
    case kAhb2Enr:
      return other_enr_[0];
    case kAhb3Enr:
      return other_enr_[1];
    case kRccApb1Enr:
      return enr_[1];
    case kRccApb2Enr:
      return enr_[2];
    case kCsr:
      return csr_;
    default:
      return Unmodelled(offset, 4, false);
  }
}

void Rcc::Write(uint32_t offset, uint32_t value) {
  switch (offset) {
    case kCr: {
      uint32_t cr = (value & ~kCrReadyBits) | kCrHsiOn;  // HSI stays on while it is SYSCLK
      if ((cr & kCrPllOn) != 0 && (cr_ & kCrPllOn) == 0 && (cfgr_ & 3) == 2) {
        Fail("PLL restarted while it is SYSCLK");
      }
      if ((cr_ & kCrPllOn) != 0 && (cr & kCrPllOn) == 0 && (cfgr_ & 3) == 2) {
        Fail("PLL switched off while it is SYSCLK");
      }
      // Ready flags follow the enables at once.
      if ((cr & kCrHsiOn) != 0) cr |= kCrHsiRdy;
      if ((cr & kCrHseOn) != 0) cr |= kCrHseRdy;
      if ((cr & kCrPllOn) != 0) cr |= kCrPllRdy;
      cr_ = cr;
      return;
    }
    case kPllcfgr:
      if ((cr_ & kCrPllOn) != 0) {
        Fail("PLLCFGR written while the PLL is on (RM0090 6.3.2: only when it is off)");
      }
      pllcfgr_ = value;
      return;
    case kCfgr: {
      // SWS (bits 3:2) follows SW at once.
      const uint32_t sw = value & 3;
      cfgr_ = (value & ~(3u << 2)) | (sw << 2);
      UpdateSysclk();
      return;
    }
    case kCir:
      cir_ = value & 0x00003F00u;
      return;
    case kAhb1Rstr:
      rstr_[0] = value;
      return;
    case kApb2Rstr:
      rstr_[1] = value;
      return;
    case kRccAhb1Enr:
      enr_[0] = value;
      return;
    case kAhb2Enr:
      other_enr_[0] = value;
      return;
    case kAhb3Enr:
      other_enr_[1] = value;
      return;
    case kRccApb1Enr:
      enr_[1] = value;
      return;
    case kRccApb2Enr:
      enr_[2] = value;
      return;
    case kCsr:
      if ((value & (1u << 24)) != 0) csr_ &= 0x00FFFFFFu;  // RMVF clears the reset flags
      csr_ = (csr_ & 0xFF000000u) | (value & 1u);
      return;
    default:
      Unmodelled(offset, 4, true, value);
  }
}

Pwr::Pwr(Machine& machine, Rcc& rcc)
    : Peripheral(machine, "PWR", kPwrBase, kPeripheralBlock), rcc_(rcc) {}

void Pwr::Reset() {}

uint32_t Pwr::Read(uint32_t offset) {
  constexpr uint32_t kOdEn = 1u << 16;
  constexpr uint32_t kOdSwEn = 1u << 17;
  switch (offset) {
    case 0x00:
      return rcc_.pwr_cr;
    case 0x04: {
      uint32_t csr = 1u << 14;                            // VOSRDY
      if ((rcc_.pwr_cr & kOdEn) != 0) csr |= 1u << 16;    // ODRDY
      if ((rcc_.pwr_cr & kOdSwEn) != 0) csr |= 1u << 17;  // ODSWRDY
      return csr;
    }
    default:
      return Unmodelled(offset, 4, false);
  }
}

void Pwr::Write(uint32_t offset, uint32_t value) {
  constexpr uint32_t kOdEn = 1u << 16;
  constexpr uint32_t kOdSwEn = 1u << 17;
  switch (offset) {
    case 0x00:
      if ((value & kOdSwEn) != 0 && (value & kOdEn) == 0) {
        Fail("PWR_CR.ODSWEN set without ODEN (RM0090 5.1.4)");
      }
      rcc_.pwr_cr = value;
      return;
    case 0x04:
      return;  // CSR: the over-drive flags are read-only
    default:
      Unmodelled(offset, 4, true, value);
  }
}

}  // namespace ota::sim::m4
