#include "ota/codec/range_decoder.hpp"

namespace ota::codec {

uint8_t RangeDecoder::NextByte() {
  if (buffer_pos_ == buffer_len_) {
    if (!status_.ok()) return 0;
    const Result<size_t> got = source_.Read(ByteSpan(buffer_));
    if (!got.ok()) {
      status_ = got.status();
      return 0;
    }
    if (got.value() == 0 || got.value() > sizeof(buffer_)) {
      status_ = StatusCode::kCorrupt;  // the stream ended inside a symbol
      return 0;
    }
    buffer_pos_ = 0;
    buffer_len_ = got.value();
  }
  ++consumed_;
  return buffer_[buffer_pos_++];
}

Status RangeDecoder::Init() {
  range_ = 0xFFFFFFFFu;
  code_ = 0;
  // The encoder's first byte is always 0: anything else is not our stream.
  if (NextByte() != 0) return StatusCode::kCorrupt;
  for (int i = 0; i < 4; ++i)
    code_ = (code_ << 8) | NextByte();
  if (code_ == range_) return StatusCode::kCorrupt;  // code must stay below range
  return status_;
}

uint32_t RangeDecoder::DecodeBit(Prob& prob, int max_shift) {
  const uint32_t bound = (range_ >> kProbBits) * prob.p();
  uint32_t bit;
  if (code_ < bound) {
    range_ = bound;
    bit = 0;
  } else {
    code_ -= bound;
    range_ -= bound;
    bit = 1;
  }
  prob.Update(bit, max_shift);
  Normalize();
  return bit;
}

uint32_t RangeDecoder::DecodeDirect(int count) {
  uint32_t value = 0;
  for (int i = 0; i < count; ++i) {
    range_ >>= 1;
    uint32_t bit = 0;
    if (code_ >= range_) {
      code_ -= range_;
      bit = 1;
    }
    value = (value << 1) | bit;
    Normalize();
  }
  return value;
}

uint32_t RangeDecoder::DecodeTree(Prob* probs, int bits, int max_shift) {
  uint32_t node = 1;
  for (int i = 0; i < bits; ++i)
    node = (node << 1) | DecodeBit(probs[node], max_shift);
  return node - (1u << bits);
}

}  // namespace ota::codec
