// Binary range decoder (the arithmetic-coding family LZMA uses) reading a patch stream once,
// in order, from a ByteSource through a small fixed buffer. Hostile input cannot make it read
// past the stream or loop: running out of input is recorded and reported by status().
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/codec/prob.hpp"
#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota::codec {

// Where the compressed bytes come from (the download region, a test buffer, ...).
class ByteSource {
 public:
  // Fills up to out.size() bytes; 0 means the end of the stream.
  virtual Result<size_t> Read(ByteSpan out) = 0;

 protected:
  ~ByteSource() = default;
};

class RangeDecoder {
 public:
  static constexpr size_t kInputBufferSize = 64;

  explicit RangeDecoder(ByteSource& source) : source_(source) {}

  // Reads the 5-byte preamble. kCorrupt if the stream does not start like one we write.
  Status Init();

  uint32_t DecodeBit(Prob& prob, int max_shift = kAdaptShift);
  // `count` equiprobable bits, most significant first (count <= 32).
  uint32_t DecodeDirect(int count);
  // A `bits`-bit symbol coded as a binary tree of 2^bits probabilities (probs[1..]).
  uint32_t DecodeTree(Prob* probs, int bits, int max_shift = kAdaptShift);

  // kCorrupt once the decoder has needed bytes past the end of the stream (a truncated or
  // forged patch), or the source's error. Checked by callers at every symbol boundary.
  Status status() const { return status_; }
  // Bytes consumed from the source so far.
  uint64_t consumed() const { return consumed_; }

 private:
  uint8_t NextByte();
  void Normalize() {
    while (range_ < kRangeTop) {
      range_ <<= 8;
      code_ = (code_ << 8) | NextByte();
    }
  }

  ByteSource& source_;
  uint32_t range_ = 0xFFFFFFFFu;
  uint32_t code_ = 0;
  uint8_t buffer_[kInputBufferSize] = {};
  size_t buffer_pos_ = 0;
  size_t buffer_len_ = 0;
  uint64_t consumed_ = 0;
  Status status_;
};

}  // namespace ota::codec
