// Reset and clock control (RM0090 section 6) and the power controller's over-drive (section
// 5): the registers the board port touches, the clock tree they select (HSI 16 MHz, the FIRE
// board's 25 MHz HSE, the main PLL), the bus clocks, and the peripherals' clock enables.
//
// Oscillators and the PLL are ready as soon as they are switched on. Switching SYSCLK checks
// what the part requires: a PLL configured within RM0090 6.3.2's ranges, the over-drive on
// above 168 MHz (5.1.4), and enough flash wait states for the new clock (3.5.1, table 11 at
// 2.7-3.6 V): a violation stops the run, since the real part would fetch garbage or hang.
#pragma once

#include <cstdint>
#include <functional>

#include "sim/m4/peripheral.hpp"

namespace ota::sim::m4 {

// A peripheral's clock enable: bit `bit` of the RCC register at `offset`.
struct ClockGate {
  uint32_t offset;  // RCC_AHB1ENR 0x30, APB1ENR 0x40, APB2ENR 0x44
  uint32_t bit;
  const char* register_name;
};
inline constexpr uint32_t kRccAhb1Enr = 0x30;
inline constexpr uint32_t kRccApb1Enr = 0x40;
inline constexpr uint32_t kRccApb2Enr = 0x44;

class Rcc final : public Peripheral {
 public:
  // `flash_latency()` gives FLASH_ACR.LATENCY, checked when SYSCLK goes up.
  Rcc(Machine& machine, std::function<uint32_t()> flash_latency);

  void Reset() override;
  uint32_t Read(uint32_t offset) override;
  void Write(uint32_t offset, uint32_t value) override;
  // RCC_CSR's reset flags after a reset of `cause` (they survive all but power-on).
  void NoteReset(ResetCause cause);

  uint32_t sysclk_hz() const { return sysclk_hz_; }
  uint32_t hclk_hz() const;
  uint32_t apb1_hz() const;
  uint32_t apb2_hz() const;
  bool Enabled(const ClockGate& gate) const;
  // PWR_CSR's over-drive bits, kept here: the PWR block is a view of this state.
  uint32_t pwr_cr = 0;
  bool over_drive_switched() const { return (pwr_cr & (1u << 17)) != 0; }

 private:
  void UpdateSysclk();
  uint32_t PllHz();

  std::function<uint32_t()> flash_latency_;
  uint32_t cr_ = 0;
  uint32_t pllcfgr_ = 0;
  uint32_t cfgr_ = 0;
  uint32_t cir_ = 0;
  uint32_t rstr_[2] = {};       // AHB1RSTR, APB2RSTR (others are not modelled)
  uint32_t enr_[3] = {};        // AHB1ENR, APB1ENR, APB2ENR
  uint32_t other_enr_[2] = {};  // AHB2ENR, AHB3ENR
  uint32_t csr_ = 0x0E000000;
  uint32_t sysclk_hz_ = 0;
};

// PWR (RM0090 5.4): CR (VOS, ODEN, ODSWEN) and CSR (ODRDY, ODSWRDY follow at once).
class Pwr final : public Peripheral {
 public:
  Pwr(Machine& machine, Rcc& rcc);
  void Reset() override;
  uint32_t Read(uint32_t offset) override;
  void Write(uint32_t offset, uint32_t value) override;

 private:
  Rcc& rcc_;
};

}  // namespace ota::sim::m4
