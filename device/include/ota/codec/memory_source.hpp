// A ByteSource over bytes in memory, handed out in pieces of at most `max_chunk` bytes (so
// tests can mimic a download arriving in small pieces).
#pragma once

#include <cstddef>
#include <cstring>

#include "ota/codec/range_decoder.hpp"

namespace ota::codec {

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(ConstByteSpan data, size_t max_chunk = static_cast<size_t>(-1))
      : data_(data), max_chunk_(max_chunk) {}

  Result<size_t> Read(ByteSpan out) override {
    size_t n = data_.size() - pos_;
    if (n > out.size()) n = out.size();
    if (n > max_chunk_) n = max_chunk_;
    if (n > 0) std::memcpy(out.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  ConstByteSpan data_;
  size_t max_chunk_;
  size_t pos_ = 0;
};

}  // namespace ota::codec
