// The exception state of the Cortex-M4 (PM0214 sections 2.3 and 4.2): which exceptions are
// pending, enabled and active, their priorities, and which one the core takes next. The
// registers are in the SCS (scs.hpp); entry and return are done by the board (exceptions.cpp).
#pragma once

#include <bitset>
#include <cstdint>
#include <vector>

namespace ota::sim::m4 {

class Nvic {
 public:
  static constexpr uint32_t kIrqs = 91;  // STM32F429: IRQ 0-90
  static constexpr uint32_t kExceptions = 16 + kIrqs;
  static constexpr uint32_t kSysTick = 15;
  static constexpr uint32_t kPendSv = 14;

  void Reset();
  void SetPending(uint32_t number) { pending_.set(number); }
  void ClearPending(uint32_t number) { pending_.reset(number); }
  bool pending(uint32_t number) const { return pending_.test(number); }
  bool enabled(uint32_t irq) const { return enabled_.test(irq); }
  void SetEnabled(uint32_t irq, bool on) { enabled_.set(irq, on); }
  bool active(uint32_t number) const;
  // Priority bytes: IRQs' IPR, and SHPR1-3 for exceptions 4-15 (the STM32F4 implements the
  // top 4 bits of each).
  uint8_t priority_byte(uint32_t number) const { return priority_[number]; }
  void set_priority_byte(uint32_t number, uint8_t value) {
    priority_[number] = static_cast<uint8_t>(value & 0xF0u);
  }

  // The exception to take now, or 0: the most urgent pending one (lowest priority value,
  // then lowest number) that is enabled and can preempt what runs, unless PRIMASK masks it.
  uint32_t NextToTake(bool primask) const;
  void Enter(uint32_t number);
  // The exception being returned from; false if none is active.
  bool Return(uint32_t* number);
  uint32_t current() const { return active_.empty() ? 0 : active_.back(); }
  size_t depth() const { return active_.size(); }

 private:
  int Priority(uint32_t number) const;
  int ExecutionPriority() const;

  std::bitset<kExceptions> pending_;
  std::bitset<kIrqs> enabled_;
  uint8_t priority_[kExceptions] = {};
  std::vector<uint32_t> active_;  // nested, innermost last
};

}  // namespace ota::sim::m4
