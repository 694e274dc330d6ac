#include "sim/m4/systick.hpp"

namespace ota::sim::m4 {
namespace {

constexpr uint32_t kEnable = 1u << 0;
constexpr uint32_t kTickInt = 1u << 1;
constexpr uint32_t kClkSource = 1u << 2;
constexpr uint32_t kCountFlag = 1u << 16;
constexpr uint32_t kSysTickException = 15;

}  // namespace

void SysTick::Reset() {
  ctrl_ = 0;
  load_ = 0;
  start_val_ = 0;
  start_cycle_ = machine_.cycles();
  zeros_seen_ = 0;
  countflag_ = false;
}

uint64_t SysTick::Ticks() const {
  if ((ctrl_ & kEnable) == 0) return 0;
  const uint64_t cycles = machine_.cycles() - start_cycle_;
  return (ctrl_ & kClkSource) != 0 ? cycles : cycles / 8;
}

uint64_t SysTick::FirstZero() const {
  return start_val_ > 0 ? start_val_ : uint64_t{load_} + 1;
}

uint64_t SysTick::ZerosUpTo(uint64_t ticks) const {
  const uint64_t first = FirstZero();
  if (load_ == 0) return ticks >= first && start_val_ > 0 ? 1 : 0;  // LOAD 0: stops
  if (ticks < first) return 0;
  return 1 + (ticks - first) / (uint64_t{load_} + 1);
}

uint32_t SysTick::ReadVal() const {
  if ((ctrl_ & kEnable) == 0) return start_val_;
  const uint64_t k = Ticks();
  const uint64_t first = FirstZero();
  if (k < first) return start_val_ > 0 ? static_cast<uint32_t>(start_val_ - k) : 0;
  if (load_ == 0) return 0;
  const uint64_t j = (k - first) % (uint64_t{load_} + 1);
  return j == 0 ? 0 : static_cast<uint32_t>(load_ + 1 - j);
}

void SysTick::Restart(uint32_t val) {
  start_val_ = val;
  start_cycle_ = machine_.cycles();
  zeros_seen_ = 0;
}

uint32_t SysTick::ReadCtrl() {
  OnTime();
  const uint32_t value = ctrl_ | (countflag_ ? kCountFlag : 0);
  countflag_ = false;  // cleared by the read
  return value;
}

void SysTick::WriteCtrl(uint32_t value) {
  OnTime();
  const uint32_t val = ReadVal();
  ctrl_ = value & (kEnable | kTickInt | kClkSource);
  Restart(val);
  machine_.TimersChanged();
}

void SysTick::WriteLoad(uint32_t value) {
  OnTime();
  const uint32_t val = ReadVal();
  load_ = value & 0x00FFFFFFu;
  Restart(val);
  machine_.TimersChanged();
}

void SysTick::WriteVal(uint32_t /*value*/) {
  // Any write clears VAL and COUNTFLAG; the next tick reloads LOAD (PM0214 4.5.3).
  countflag_ = false;
  Restart(0);
  machine_.TimersChanged();
}

uint64_t SysTick::NextEventNs() const {
  if ((ctrl_ & kEnable) == 0 || (ctrl_ & kTickInt) == 0 || load_ == 0) return Peripheral::kNever;
  const uint64_t zeros = ZerosUpTo(Ticks());
  if (zeros > zeros_seen_) return machine_.now_ns();  // a zero not yet turned into a pend
  const uint64_t next_tick = FirstZero() + zeros * (uint64_t{load_} + 1);
  const uint64_t per_tick = (ctrl_ & kClkSource) != 0 ? 1 : 8;
  const uint64_t cycle = start_cycle_ + next_tick * per_tick;
  const uint64_t now = machine_.cycles();
  const uint64_t hz = machine_.sysclk_hz();
  if (cycle <= now) return machine_.now_ns();
  return machine_.now_ns() + ((cycle - now) * 1'000'000'000ull + hz - 1) / hz;
}

void SysTick::OnTime() {
  if ((ctrl_ & kEnable) == 0) return;
  const uint64_t zeros = ZerosUpTo(Ticks());
  if (zeros > zeros_seen_) {
    zeros_seen_ = zeros;
    countflag_ = true;
    if ((ctrl_ & kTickInt) != 0) machine_.SetPending(kSysTickException);
  }
}

}  // namespace ota::sim::m4
