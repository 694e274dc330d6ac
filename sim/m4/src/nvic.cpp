#include "sim/m4/nvic.hpp"

#include <algorithm>

namespace ota::sim::m4 {

void Nvic::Reset() {
  pending_.reset();
  enabled_.reset();
  std::fill(std::begin(priority_), std::end(priority_), 0);
  active_.clear();
}

bool Nvic::active(uint32_t number) const {
  return std::find(active_.begin(), active_.end(), number) != active_.end();
}

int Nvic::Priority(uint32_t number) const {
  switch (number) {
    case 1:
      return -3;  // reset
    case 2:
      return -2;  // NMI
    case 3:
      return -1;  // HardFault
    default:
      return priority_[number];
  }
}

int Nvic::ExecutionPriority() const {
  int priority = 256;
  for (const uint32_t number : active_)
    priority = std::min(priority, Priority(number));
  return priority;
}

uint32_t Nvic::NextToTake(bool primask) const {
  if (pending_.none()) return 0;
  const int running = ExecutionPriority();
  uint32_t best = 0;
  int best_priority = 256;
  for (uint32_t number = 2; number < kExceptions; ++number) {
    if (!pending_.test(number)) continue;
    if (number >= 16 && !enabled_.test(number - 16)) continue;
    const int priority = Priority(number);
    if (primask && priority >= 0) continue;
    if (priority < best_priority) {
      best = number;
      best_priority = priority;
    }
  }
  return best != 0 && best_priority < running ? best : 0;
}

void Nvic::Enter(uint32_t number) {
  pending_.reset(number);
  active_.push_back(number);
}

bool Nvic::Return(uint32_t* number) {
  if (active_.empty()) return false;
  *number = active_.back();
  active_.pop_back();
  return true;
}

}  // namespace ota::sim::m4
