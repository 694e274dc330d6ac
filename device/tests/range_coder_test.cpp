#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "ota/codec/memory_source.hpp"
#include "ota/codec/range_decoder.hpp"
#include "ota/host/range_encoder.hpp"

namespace ota::codec {
namespace {

class FailingSource final : public ByteSource {
 public:
  Result<size_t> Read(ByteSpan) override { return StatusCode::kIoError; }
};

// A mixed stream: context-modelled bits, 8-bit tree symbols and direct bits.
struct Symbol {
  int kind;  // 0 bit, 1 tree byte, 2 direct 20 bits
  uint32_t value;
  int context;
};

std::vector<Symbol> MakeSymbols(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::vector<Symbol> out;
  for (size_t i = 0; i < n; ++i) {
    const int kind = static_cast<int>(rng() % 3);
    const int context = static_cast<int>(rng() % 4);
    uint32_t value = 0;
    if (kind == 0) value = (rng() % 100) < static_cast<uint32_t>(5 + 30 * context) ? 1 : 0;
    if (kind == 1) value = rng() % 16 == 0 ? rng() % 256 : 0x20 + rng() % 8;
    if (kind == 2) value = rng() & 0xFFFFF;
    out.push_back({kind, value, context});
  }
  return out;
}

std::vector<uint8_t> Encode(const std::vector<Symbol>& symbols) {
  host::RangeEncoder enc;
  Prob bits[4];
  Prob tree[256];
  for (const Symbol& s : symbols) {
    if (s.kind == 0) enc.EncodeBit(bits[s.context], s.value);
    if (s.kind == 1) enc.EncodeTree(tree, 8, s.value);
    if (s.kind == 2) enc.EncodeDirect(s.value, 20);
  }
  return enc.Finish();
}

// Decodes `symbols.size()` symbols; returns how many matched before the first difference.
size_t DecodeAndCompare(ByteSource& source, const std::vector<Symbol>& symbols, Status* status) {
  RangeDecoder dec(source);
  *status = dec.Init();
  if (!status->ok()) return 0;
  Prob bits[4];
  Prob tree[256];
  size_t i = 0;
  for (; i < symbols.size(); ++i) {
    const Symbol& s = symbols[i];
    uint32_t v = 0;
    if (s.kind == 0) v = dec.DecodeBit(bits[s.context]);
    if (s.kind == 1) v = dec.DecodeTree(tree, 8);
    if (s.kind == 2) v = dec.DecodeDirect(20);
    if (!dec.status().ok() || v != s.value) break;
  }
  *status = dec.status();
  return i;
}

TEST(RangeCoder, RoundTrip_MixedSymbolsAnyChunking_Identical) {
  const auto symbols = MakeSymbols(1, 200000);
  const auto stream = Encode(symbols);
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}, size_t{4096}}) {
    MemorySource source(ConstByteSpan(stream.data(), stream.size()), chunk);
    Status status;
    EXPECT_EQ(DecodeAndCompare(source, symbols, &status), symbols.size()) << "chunk " << chunk;
    EXPECT_TRUE(status.ok()) << status.name();
  }
}

TEST(RangeCoder, RoundTrip_ConsumesExactlyTheStream) {
  const auto symbols = MakeSymbols(2, 5000);
  const auto stream = Encode(symbols);
  MemorySource source(ConstByteSpan(stream.data(), stream.size()), 64);
  RangeDecoder dec(source);
  ASSERT_TRUE(dec.Init().ok());
  Prob bits[4];
  Prob tree[256];
  for (const Symbol& s : symbols) {
    if (s.kind == 0) (void)dec.DecodeBit(bits[s.context]);
    if (s.kind == 1) (void)dec.DecodeTree(tree, 8);
    if (s.kind == 2) (void)dec.DecodeDirect(20);
  }
  EXPECT_TRUE(dec.status().ok());
  EXPECT_EQ(dec.consumed(), stream.size());
}

// A fixed adaptation rate of 1/32 tracks changes fast but pays for it on a stationary source:
// measured 3.9% over the entropy at p = 0.03 (a count-based or two-rate probability would
// recover most of that; see the codec issue).
TEST(RangeCoder, SkewedBits_WithinFivePercentOfEntropy) {
  std::mt19937 rng(3);
  const size_t n = 400000;
  const double p1 = 0.03;  // 300 in 10000
  host::RangeEncoder enc;
  Prob prob;
  for (size_t i = 0; i < n; ++i)
    enc.EncodeBit(prob, rng() % 10000 < 300 ? 1 : 0);
  const double entropy_bytes = n * (-p1 * std::log2(p1) - (1 - p1) * std::log2(1 - p1)) / 8;
  const size_t size = enc.Finish().size();
  EXPECT_LT(static_cast<double>(size), entropy_bytes * 1.05) << size << " vs " << entropy_bytes;
}

TEST(RangeCoder, TruncatedStream_ReportsCorruptInsteadOfReadingOn) {
  const auto symbols = MakeSymbols(4, 20000);
  auto stream = Encode(symbols);
  stream.resize(stream.size() / 2);
  MemorySource source(ConstByteSpan(stream.data(), stream.size()), 64);
  Status status;
  const size_t matched = DecodeAndCompare(source, symbols, &status);
  EXPECT_LT(matched, symbols.size());
  EXPECT_EQ(status.code(), StatusCode::kCorrupt);
}

TEST(RangeCoder, GarbageStream_DecodesWithoutFault) {
  std::mt19937 rng(5);
  for (int round = 0; round < 50; ++round) {
    std::vector<uint8_t> garbage(1 + rng() % 300);
    for (uint8_t& b : garbage)
      b = static_cast<uint8_t>(rng());
    garbage[0] = 0;
    MemorySource source(ConstByteSpan(garbage.data(), garbage.size()), 16);
    RangeDecoder dec(source);
    if (!dec.Init().ok()) continue;
    Prob tree[256];
    for (int i = 0; i < 2000 && dec.status().ok(); ++i)
      (void)dec.DecodeTree(tree, 8);
    EXPECT_LE(dec.consumed(), garbage.size());
  }
}

TEST(RangeCoder, Init_BadPreambleOrSourceError_Refused) {
  const std::vector<uint8_t> bad = {1, 0, 0, 0, 0, 0};
  MemorySource source(ConstByteSpan(bad.data(), bad.size()), 64);
  RangeDecoder dec(source);
  EXPECT_EQ(dec.Init().code(), StatusCode::kCorrupt);
  const std::vector<uint8_t> forged = {0, 0xFF, 0xFF, 0xFF, 0xFF};
  MemorySource forged_source(ConstByteSpan(forged.data(), forged.size()), 64);
  RangeDecoder dec2(forged_source);
  EXPECT_EQ(dec2.Init().code(), StatusCode::kCorrupt);
  FailingSource failing;
  RangeDecoder dec3(failing);
  EXPECT_EQ(dec3.Init().code(), StatusCode::kIoError);
}

}  // namespace
}  // namespace ota::codec
