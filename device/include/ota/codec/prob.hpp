// Adaptive binary probabilities shared by the range encoder (host) and decoder (device).
// Both sides must update a probability identically, so the rule lives here, once.
#pragma once

#include <cstdint>

namespace ota::codec {

inline constexpr int kProbBits = 12;  // probabilities in units of 1/4096
inline constexpr uint32_t kProbOne = 1u << kProbBits;
inline constexpr int kAdaptShift = 5;            // finally moves 1/32 of the way per bit seen
inline constexpr uint32_t kRangeTop = 1u << 24;  // renormalise below this range

// P(bit == 0) in units of 1/4096 (low 12 bits, starting at one half) and how many bits the
// probability has seen, up to 15 (top 4 bits). A young probability adapts faster: the n-th
// bit it sees (from 0) moves it by 1/2^AdaptShift(n): 1/4, 1/8, 1/16, then 1/32.
struct Prob {
  uint16_t v = kProbOne / 2;

  uint32_t p() const { return v & (kProbOne - 1); }

  static constexpr int AdaptShift(uint32_t seen) {
    return seen < 2 ? 2 : (seen < 5 ? 3 : (seen < 15 ? 4 : kAdaptShift));
  }

  // `max_shift` caps the final rate (kAdaptShift, or 4 for tables that must follow faster).
  void Update(uint32_t bit, int max_shift = kAdaptShift) {
    uint32_t seen = v >> kProbBits;
    uint32_t p = v & (kProbOne - 1);
    const int adapt = AdaptShift(seen);
    const int shift = adapt < max_shift ? adapt : max_shift;
    if (bit == 0) {
      p += (kProbOne - p) >> shift;
    } else {
      p -= p >> shift;
    }
    if (seen < 15) ++seen;
    v = static_cast<uint16_t>((seen << kProbBits) | p);
  }
};
static_assert(sizeof(Prob) == 2, "probability tables are budgeted at 2 bytes per entry");

}  // namespace ota::codec
