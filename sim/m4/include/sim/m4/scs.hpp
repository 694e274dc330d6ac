// The Cortex-M4 system control space at 0xE000E000 (PM0214 section 4): SysTick (systick.hpp),
// the NVIC registers (ISER, ICER, ISPR, ICPR, IABR, IPR) over the exception state (nvic.hpp),
// and the system control block: CPUID, ICSR, VTOR, AIRCR (VECTKEY + SYSRESETREQ resets the
// board), SCR, CCR, SHPR1-3, SHCSR, the fault status registers, CPACR, DEMCR (TRCENA, for the
// DWT cycle counter) and FPCCR. The DWT's CTRL and CYCCNT are the Dwt peripheral.
#pragma once

#include <cstdint>

#include "sim/m4/nvic.hpp"
#include "sim/m4/peripheral.hpp"
#include "sim/m4/systick.hpp"

namespace ota::sim::m4 {

class Scs final : public Peripheral {
 public:
  static constexpr uint32_t kCpuid = 0x410FC241;  // Cortex-M4 r0p1 (PM0214 4.3.1)

  explicit Scs(Machine& machine);

  void Reset() override;
  uint32_t Read(uint32_t offset) override;
  void Write(uint32_t offset, uint32_t value) override;
  // IPR and SHPR take byte accesses (PM0214 4.2.7, 4.3.7).
  uint32_t ReadNarrow(uint32_t offset, unsigned size) override;
  void WriteNarrow(uint32_t offset, unsigned size, uint32_t value) override;
  uint64_t NextEventNs() override { return systick_.NextEventNs(); }
  void OnTime() override { systick_.OnTime(); }

  uint32_t vtor() const { return vtor_; }
  bool trace_enabled() const { return (demcr_ & (1u << 24)) != 0; }
  bool cp10_cp11_enabled() const { return ((cpacr_ >> 20) & 0xFu) == 0xFu; }
  Nvic& nvic() { return nvic_; }
  SysTick& systick() { return systick_; }

 private:
  uint32_t ReadByte(uint32_t offset);
  void WriteByte(uint32_t offset, uint8_t value);

  Nvic nvic_;
  SysTick systick_;
  uint32_t vtor_ = 0;
  uint32_t aircr_prigroup_ = 0;
  uint32_t scr_ = 0;
  uint32_t ccr_ = 0;
  uint32_t shcsr_ = 0;
  uint32_t cpacr_ = 0;
  uint32_t demcr_ = 0;
  uint32_t fpccr_ = 0;
};

// The DWT's CTRL and CYCCNT (ARMv7-M ARM C1.8): CYCCNT counts core cycles while
// DEMCR.TRCENA and CTRL.CYCCNTENA are set.
class Dwt final : public Peripheral {
 public:
  Dwt(Machine& machine, const Scs& scs);
  void Reset() override;
  uint32_t Read(uint32_t offset) override;
  void Write(uint32_t offset, uint32_t value) override;

 private:
  bool Counting() const;

  const Scs& scs_;
  uint32_t ctrl_ = 0;
  uint32_t base_ = 0;  // CYCCNT when counting (re)started
  uint64_t start_cycle_ = 0;
};

}  // namespace ota::sim::m4
