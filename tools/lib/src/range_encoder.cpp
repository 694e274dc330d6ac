#include "ota/host/range_encoder.hpp"

namespace ota::host {

using codec::kProbBits;
using codec::kRangeTop;

// `low_` is a 33-bit window over the output: bit 32 is a carry into bytes already counted
// in `cache_` (one byte) and `cache_size_ - 1` pending 0xFF bytes behind it.
void RangeEncoder::ShiftLow() {
  if (static_cast<uint32_t>(low_) < 0xFF000000u || (low_ >> 32) != 0) {
    const auto carry = static_cast<uint8_t>(low_ >> 32);
    uint8_t pending = cache_;
    do {
      out_.push_back(static_cast<uint8_t>(pending + carry));
      pending = 0xFF;
    } while (--cache_size_ != 0);
    cache_ = static_cast<uint8_t>(low_ >> 24);
  }
  ++cache_size_;
  low_ = (low_ & 0x00FFFFFFu) << 8;
}

void RangeEncoder::EncodeBit(codec::Prob& prob, uint32_t bit, int max_shift) {
  const uint32_t bound = (range_ >> kProbBits) * prob.p();
  const double p0 = static_cast<double>(prob.p()) / codec::kProbOne;
  cost_bits_ -= std::log2(bit == 0 ? p0 : 1.0 - p0);
  if (bit == 0) {
    range_ = bound;
  } else {
    low_ += bound;
    range_ -= bound;
  }
  prob.Update(bit, max_shift);
  while (range_ < kRangeTop) {
    range_ <<= 8;
    ShiftLow();
  }
}

void RangeEncoder::EncodeDirect(uint32_t value, int count) {
  cost_bits_ += count;
  for (int i = count - 1; i >= 0; --i) {
    range_ >>= 1;
    if ((value >> i) & 1u) low_ += range_;
    while (range_ < kRangeTop) {
      range_ <<= 8;
      ShiftLow();
    }
  }
}

void RangeEncoder::EncodeTree(codec::Prob* probs, int bits, uint32_t symbol, int max_shift) {
  uint32_t node = 1;
  for (int i = bits - 1; i >= 0; --i) {
    const uint32_t bit = (symbol >> i) & 1u;
    EncodeBit(probs[node], bit, max_shift);
    node = (node << 1) | bit;
  }
}

std::vector<uint8_t> RangeEncoder::Finish() {
  for (int i = 0; i < 5; ++i)
    ShiftLow();
  return std::move(out_);
}

}  // namespace ota::host
