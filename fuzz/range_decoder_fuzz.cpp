// Fuzz target: the range decoder on arbitrary streams must never read past its input,
// fault, or hang.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ota/codec/range_decoder.hpp"

namespace {
class Source final : public ota::codec::ByteSource {
 public:
  Source(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  ota::Result<size_t> Read(ota::ByteSpan out) override {
    const size_t n = out.size() < size_ - pos_ ? out.size() : size_ - pos_;
    std::memcpy(out.data(), data_ + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Source source(data, size);
  ota::codec::RangeDecoder dec(source);
  if (!dec.Init().ok()) return 0;
  ota::codec::Prob bits[16];
  ota::codec::Prob tree[256];
  for (int i = 0; i < 4096 && dec.status().ok(); ++i) {
    (void)dec.DecodeBit(bits[i & 15]);
    (void)dec.DecodeTree(tree, 8);
    (void)dec.DecodeDirect(13);
  }
  if (dec.consumed() > size) __builtin_trap();
  return 0;
}
