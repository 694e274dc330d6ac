// Fuzz target: the range decoder on arbitrary streams must never read past its input,
// fault, or hang.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ota/codec/memory_source.hpp"
#include "ota/codec/range_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ota::codec::MemorySource source(ota::ConstByteSpan(data, size));
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
