// Binary range encoder, the host half of ota/codec/range_decoder.hpp. Same probabilities,
// same update rule (ota/codec/prob.hpp), so the decoder reproduces every bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "ota/codec/prob.hpp"

namespace ota::host {

class RangeEncoder {
 public:
  void EncodeBit(codec::Prob& prob, uint32_t bit, int max_shift = codec::kAdaptShift);
  // The low `count` bits of `value`, most significant first, each with probability one half.
  void EncodeDirect(uint32_t value, int count);
  // A `bits`-bit symbol through a binary tree of probabilities (probs[1..2^bits-1]).
  void EncodeTree(codec::Prob* probs, int bits, uint32_t symbol,
                  int max_shift = codec::kAdaptShift);
  // Flushes the coder; the returned bytes are the whole stream. The encoder is done after.
  std::vector<uint8_t> Finish();

  // Ideal code length of everything encoded so far, in bits (-log2 of each probability):
  // lets the encoder report where the bytes go.
  double cost_bits() const { return cost_bits_; }

 private:
  void ShiftLow();

  uint64_t low_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
  uint8_t cache_ = 0;
  uint64_t cache_size_ = 1;
  std::vector<uint8_t> out_;
  double cost_bits_ = 0;
};

}  // namespace ota::host
