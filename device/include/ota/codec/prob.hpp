// Adaptive binary probabilities shared by the range encoder (host) and decoder (device).
// Both sides must update a probability identically, so the rule lives here, once.
#pragma once

#include <cstdint>

namespace ota::codec {

inline constexpr int kProbBits = 12;  // probabilities in units of 1/4096
inline constexpr uint32_t kProbOne = 1u << kProbBits;
inline constexpr int kAdaptShift = 5;            // moves 1/32 of the way per bit seen
inline constexpr uint32_t kRangeTop = 1u << 24;  // renormalise below this range

// P(bit == 0) in units of 1/4096, starting at one half.
struct Prob {
  uint16_t p = kProbOne / 2;

  void Update(uint32_t bit) {
    if (bit == 0) {
      p = static_cast<uint16_t>(p + ((kProbOne - p) >> kAdaptShift));
    } else {
      p = static_cast<uint16_t>(p - (p >> kAdaptShift));
    }
  }
};
static_assert(sizeof(Prob) == 2, "probability tables are budgeted at 2 bytes per entry");

}  // namespace ota::codec
