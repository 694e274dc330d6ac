// SysTick (PM0214 section 4.5): a 24-bit down-counter on the processor clock (CLKSOURCE = 1)
// or HCLK / 8, reloaded from LOAD, COUNTFLAG on each zero, and exception 15 pending on each
// zero when TICKINT is set. Counted in core cycles, so it is exact against the instructions.
#pragma once

#include <cstdint>

#include "sim/m4/peripheral.hpp"

namespace ota::sim::m4 {

class SysTick {
 public:
  explicit SysTick(Machine& machine) : machine_(machine) {}

  void Reset();
  uint32_t ReadCtrl();
  uint32_t ReadVal() const;
  uint32_t load() const { return load_; }
  uint32_t ctrl() const { return ctrl_; }
  void WriteCtrl(uint32_t value);
  void WriteLoad(uint32_t value);
  void WriteVal(uint32_t value);

  uint64_t NextEventNs() const;
  void OnTime();

 private:
  uint64_t Ticks() const;      // ticks since start_cycle_
  uint64_t FirstZero() const;  // tick of the first zero since start_cycle_
  uint64_t ZerosUpTo(uint64_t ticks) const;
  void Restart(uint32_t val);

  Machine& machine_;
  uint32_t ctrl_ = 0;
  uint32_t load_ = 0;
  uint32_t start_val_ = 0;
  uint64_t start_cycle_ = 0;
  uint64_t zeros_seen_ = 0;  // zeros since start_cycle_ already turned into flags/interrupts
  bool countflag_ = false;
};

}  // namespace ota::sim::m4
