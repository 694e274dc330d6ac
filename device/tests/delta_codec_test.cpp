#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "ota/bytes.hpp"
#include "ota/codec/delta_decoder.hpp"
#include "ota/codec/memory_source.hpp"
#include "ota/host/delta_encoder.hpp"
#include "ota/host/range_encoder.hpp"
#include "sim/board_flash.hpp"

namespace ota::codec {
namespace {

// Decodes `patch` against `old` (placed in the emulated backup region, as on the board). The
// new image goes to the running slot as it comes out, the last `held` bytes held back as a
// flash writer holds an incomplete program unit (at most DeltaDecoder::kUnflushed).
Result<std::vector<uint8_t>> Decode(const std::vector<uint8_t>& old,
                                    const std::vector<uint8_t>& patch, size_t chunk = 61,
                                    size_t out_piece = 173, size_t held = 7) {
  static sim::BoardFlash board(kStm32f429Fire);
  const Partition& backup = kStm32f429Fire.partition(PartitionId::kBackup);
  const Partition& running = kStm32f429Fire.partition(PartitionId::kRunning);
  if (old.size() > backup.size) return StatusCode::kOutOfRange;
  std::copy(old.begin(), old.end(), board.external.raw().begin() + backup.offset);
  auto slot = board.internal.raw().begin() + running.offset;
  std::fill(slot, slot + running.size, 0xFF);
  MemorySource source(ConstByteSpan(patch.data(), patch.size()), chunk);
  DeltaDecoder decoder(source, FlashArea(board.external, backup.offset, backup.size),
                       FlashArea(board.internal, running.offset, running.size));
  OTA_TRY(decoder.Init(static_cast<uint32_t>(old.size())));
  std::vector<uint8_t> out;
  std::vector<uint8_t> piece(out_piece);
  size_t flushed = 0;
  for (;;) {
    const Result<size_t> n = decoder.Read(ByteSpan(piece.data(), piece.size()));
    if (!n.ok()) return n.status();
    if (n.value() == 0) break;
    out.insert(out.end(), piece.begin(), piece.begin() + static_cast<long>(n.value()));
    if (out.size() > decoder.new_size()) return StatusCode::kTooLarge;
    for (; flushed + held < out.size(); ++flushed)
      slot[static_cast<long>(flushed)] = out[flushed];
  }
  return out;
}

// An "old" firmware-like image and a "new" one with insertions, deletions and edits.
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> MakePair(uint32_t seed, size_t size) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> old(size);
  for (size_t i = 0; i < size; ++i) {
    old[i] = static_cast<uint8_t>(i % 7 == 0 ? rng() : (i * 13) ^ (i >> 5));
  }
  std::vector<uint8_t> neu(old.begin(), old.begin() + static_cast<long>(size / 3));
  for (int i = 0; i < 500; ++i)
    neu.push_back(static_cast<uint8_t>(rng()));                                       // insertion
  neu.insert(neu.end(), old.begin() + static_cast<long>(size / 3 + 200), old.end());  // deletion
  for (int i = 0; i < 300; ++i)
    neu[rng() % neu.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
  return {old, neu};
}

TEST(DeltaCodec, RoundTrip_EditedImage_ExactAndSmall) {
  const auto [old, neu] = MakePair(1, 100000);
  host::DeltaStats stats;
  const auto patch = host::EncodeDelta(old, neu, &stats);
  const Result<std::vector<uint8_t>> out = Decode(old, patch);
  ASSERT_TRUE(out.ok()) << out.status().name();
  EXPECT_EQ(out.value(), neu);
  EXPECT_LT(patch.size(), 5000u) << "blocks=" << stats.blocks << " extra=" << stats.extra_bytes;
}

TEST(DeltaCodec, RoundTrip_AnyChunking_Exact) {
  const auto [old, neu] = MakePair(2, 20000);
  const auto patch = host::EncodeDelta(old, neu);
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{4096}}) {
    for (size_t piece : {size_t{1}, size_t{256}, size_t{70000}}) {
      const Result<std::vector<uint8_t>> out = Decode(old, patch, chunk, piece);
      ASSERT_TRUE(out.ok()) << out.status().name();
      EXPECT_EQ(out.value(), neu) << "chunk " << chunk << " piece " << piece;
    }
  }
}

TEST(DeltaCodec, RoundTrip_EmptyOldImage_CompressesFullImage) {
  const auto [unused, neu] = MakePair(3, 50000);
  const std::vector<uint8_t> none;
  const auto patch = host::EncodeDelta(none, neu);
  const Result<std::vector<uint8_t>> out = Decode(none, patch);
  ASSERT_TRUE(out.ok()) << out.status().name();
  EXPECT_EQ(out.value(), neu);
  EXPECT_LT(patch.size(), neu.size());
}

TEST(DeltaCodec, RoundTrip_EdgeSizes_Exact) {
  const std::vector<uint8_t> none;
  const std::vector<uint8_t> one = {0x42};
  for (const auto& [old, neu] : std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>>{
           {none, none}, {one, none}, {none, one}, {one, one}}) {
    const auto patch = host::EncodeDelta(old, neu);
    const Result<std::vector<uint8_t>> out = Decode(old, patch);
    ASSERT_TRUE(out.ok()) << out.status().name();
    EXPECT_EQ(out.value(), neu);
  }
}

TEST(DeltaCodec, Init_WrongOldSizeOrHeader_Refused) {
  const auto [old, neu] = MakePair(4, 5000);
  auto patch = host::EncodeDelta(old, neu);
  std::vector<uint8_t> shorter(old.begin(), old.end() - 1);
  EXPECT_EQ(Decode(shorter, patch).status().code(), StatusCode::kFailedPrecondition);
  auto bad_magic = patch;
  bad_magic[0] ^= 1;
  EXPECT_EQ(Decode(old, bad_magic).status().code(), StatusCode::kCorrupt);
  auto bad_format = patch;
  bad_format[4] = kDeltaFormat + 1;
  EXPECT_EQ(Decode(old, bad_format).status().code(), StatusCode::kUnsupported);
}

TEST(DeltaCodec, CorruptOrTruncatedPatch_ErrorOrWrongBytesNeverOverrun) {
  const auto [old, neu] = MakePair(5, 30000);
  const auto patch = host::EncodeDelta(old, neu);
  std::mt19937 rng(6);
  int errors = 0;
  for (int round = 0; round < 200; ++round) {
    auto bad = patch;
    if (round % 2 == 0) {
      bad.resize(codec::kDeltaHeaderSize + rng() % (patch.size() - codec::kDeltaHeaderSize));
    } else {
      bad[codec::kDeltaHeaderSize + rng() % (patch.size() - codec::kDeltaHeaderSize)] ^=
          static_cast<uint8_t>(1 + rng() % 255);
    }
    const Result<std::vector<uint8_t>> out = Decode(old, bad);
    if (!out.ok()) {
      ++errors;
      EXPECT_NE(out.status().code(), StatusCode::kTooLarge);  // never past new_size
    } else {
      EXPECT_EQ(out->size(), neu.size());  // a lucky corruption still stops at new_size
    }
  }
  EXPECT_GT(errors, 100);
}

// A new image that repeats itself and the old one at all distances: copies from the new image
// read back from the slot (through the held-back seam and the slot itself) and from the old.
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> MakeRepetitivePair(uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> old(20000);
  for (auto& b : old)
    b = static_cast<uint8_t>(rng() % 7);
  std::vector<uint8_t> neu;
  while (neu.size() < 60000) {
    const uint32_t kind = rng() % 4;
    const size_t len = 2 + rng() % 300;
    if (kind == 0 || neu.size() < 400) {
      for (size_t i = 0; i < len; ++i)
        neu.push_back(static_cast<uint8_t>(rng()));
    } else if (kind == 1) {
      const size_t from = rng() % (old.size() - len);
      neu.insert(neu.end(), old.begin() + static_cast<long>(from),
                 old.begin() + static_cast<long>(from + len));
    } else {
      const size_t dist = 1 + rng() % (kind == 2 ? 32 : neu.size());
      for (size_t i = 0; i < len; ++i)
        neu.push_back(neu[neu.size() - dist]);
    }
  }
  return {old, neu};
}

TEST(DeltaCodec, RoundTrip_CopiesFromOldAndNewImage_ExactWhateverTheReadSizes) {
  const auto [old, neu] = MakeRepetitivePair(7);
  const auto patch = host::EncodeDelta(old, neu);
  EXPECT_LT(patch.size(), neu.size() / 3);
  for (size_t piece : {size_t{1}, size_t{5}, size_t{173}, size_t{70000}}) {
    for (size_t held : {size_t{0}, size_t{DeltaDecoder::kUnflushed}}) {
      const Result<std::vector<uint8_t>> out = Decode(old, patch, 61, piece, held);
      ASSERT_TRUE(out.ok()) << out.status().name() << " piece " << piece << " held " << held;
      EXPECT_EQ(out.value(), neu) << "piece " << piece << " held " << held;
    }
  }
  const std::vector<uint8_t> none;
  const auto full = host::EncodeDelta(none, neu);
  const Result<std::vector<uint8_t>> out = Decode(none, full, 7, 1, DeltaDecoder::kUnflushed);
  ASSERT_TRUE(out.ok()) << out.status().name();
  EXPECT_EQ(out.value(), neu);
}

// A Thumb-2-like image at 0x08000000: BL instructions and pointers to functions; the new image
// has code inserted near the start, so every target behind it moves.
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> MakeMovedCodePair() {
  constexpr uint32_t kBase = 0x08000000;
  auto build = [&](uint32_t inserted) {
    auto moved = [&](uint32_t x) { return x < 1000 ? x : x + inserted; };
    std::mt19937 r(12);
    std::vector<uint8_t> img(40000 + inserted);
    for (uint32_t x = 0; x < 40000; ++x)
      img[moved(x)] = static_cast<uint8_t>(r() % 16);
    std::mt19937 ins(13);
    for (uint32_t i = 0; i < inserted; ++i)
      img[1000 + i] = static_cast<uint8_t>(ins());
    std::mt19937 u(14);
    for (uint32_t i = 0; i < 1500; ++i) {
      const uint32_t at = 2000 + i * 24;  // old offsets, word-aligned, not overlapping
      const auto target = static_cast<uint32_t>(i % 2 ? (u() % 500) * 2 : 1000 + (u() % 19000) * 2);
      if (at % 4 == 0 && i % 3 == 0) {
        StoreLe32(&img[moved(at)], kBase + moved(target) + 1);  // a function pointer
        continue;
      }
      const uint32_t field = ((moved(target) - moved(at) - 4) >> 1) & 0x3FFFFF;
      img[moved(at)] = static_cast<uint8_t>(field >> 11);
      img[moved(at) + 1] = static_cast<uint8_t>(0xF0 | (field >> 19));
      img[moved(at) + 2] = static_cast<uint8_t>(field);
      img[moved(at) + 3] = static_cast<uint8_t>(0xF8 | ((field >> 8) & 7));
    }
    return img;
  };
  return {build(0), build(200)};
}

TEST(DeltaCodec, RoundTrip_MovedBranchesAndPointers_PredictedAndExact) {
  const auto [old, neu] = MakeMovedCodePair();
  host::DeltaStats stats;
  const auto patch = host::EncodeDelta(old, neu, &stats);
  EXPECT_EQ(patch[5] & kPredictFlags, kFlagPredictBranches | kFlagPredictPointers);
  EXPECT_GT(stats.predicted_units, 1000u);
  const Result<std::vector<uint8_t>> out = Decode(old, patch);
  ASSERT_TRUE(out.ok()) << out.status().name();
  EXPECT_EQ(out.value(), neu);
  EXPECT_LT(patch.size(), 1000u);
}

// An Xtensa-like image: 2- and 3-byte instructions, CALL0s (op0 = 5) to functions before and
// after a point where the new image inserts code, so call offsets across it change.
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> MakeMovedCallsPair() {
  auto build = [](uint32_t inserted) {
    auto moved = [&](uint32_t x) { return x < 4000 ? x : x + inserted; };
    std::vector<uint8_t> img(40000 + inserted);
    std::mt19937 r(21);
    uint32_t x = 0;
    while (x + 3 <= 40000) {
      const auto kind = static_cast<uint32_t>(r() % 8);
      const auto b1 = static_cast<uint32_t>(r() & 0xFF), b2 = static_cast<uint32_t>(r() & 0xFF);
      if (kind < 3) {  // narrow: op0 8..13
        img[moved(x)] = static_cast<uint8_t>(0x08 + r() % 6 + (b1 & 0xF0));
        img[moved(x) + 1] = static_cast<uint8_t>(b2);
        x += 2;
      } else if (kind < 6 || x < 4000) {  // other 24-bit instructions: op0 0..4, 6, 7
        static const uint8_t ops[] = {0, 1, 2, 3, 4, 6, 7};
        img[moved(x)] = static_cast<uint8_t>(ops[r() % 7] | (b1 & 0xF0));
        img[moved(x) + 1] = static_cast<uint8_t>(b2);
        img[moved(x) + 2] = static_cast<uint8_t>(r());
        x += 3;
      } else {  // CALL0 to a 4-aligned function, half of them before the insertion
        const auto target = static_cast<uint32_t>((r() % 2 ? r() % 900 : 1100 + r() % 8900) * 4);
        const uint32_t pc = moved(x);
        const int64_t field = (int64_t{moved(target)} - int64_t{pc & ~3u} - 4) >> 2;
        const uint32_t ins = 0x05u | ((static_cast<uint32_t>(field) & 0x3FFFFu) << 6);
        for (int i = 0; i < 3; ++i)
          img[pc + i] = static_cast<uint8_t>(ins >> (8 * i));
        x += 3;
      }
    }
    std::mt19937 ins(22);
    for (uint32_t i = 0; i < inserted; ++i)
      img[4000 + i] = static_cast<uint8_t>(ins());
    return img;
  };
  return {build(0), build(124)};
}

TEST(DeltaCodec, RoundTrip_MovedXtensaCalls_PredictedAndExact) {
  const auto [old, neu] = MakeMovedCallsPair();
  host::DeltaStats stats;
  const auto patch = host::EncodeDelta(old, neu, &stats);
  EXPECT_NE(patch[5] & kFlagPredictCalls, 0);
  EXPECT_GT(stats.predicted_units, 1000u);
  const Result<std::vector<uint8_t>> out = Decode(old, patch);
  ASSERT_TRUE(out.ok()) << out.status().name();
  EXPECT_EQ(out.value(), neu);
  EXPECT_LT(patch.size(), 1500u);
}

// Hand-made streams for what the encoder never writes.
class StreamBuilder {
 public:
  void Bit(Prob& p, uint32_t bit) { rc_.EncodeBit(p, bit); }
  void Tree(Prob* probs, int bits, uint32_t v) { rc_.EncodeTree(probs, bits, v); }
  void Direct(uint32_t v, int bits) { rc_.EncodeDirect(v, bits); }
  void Number(NumberKind kind, uint32_t value) {
    NumberModel& m = model_->numbers[kind];
    const uint64_t w = uint64_t{value} + 1;
    const int below = 63 - __builtin_clzll(w);
    rc_.EncodeTree(m.length, kNumberLengthBits, static_cast<uint32_t>(below));
    const int modelled = std::min(below, kNumberModelledBits);
    const int direct = below - modelled;
    const auto rest = static_cast<uint32_t>(w & ((uint64_t{1} << below) - 1));
    rc_.EncodeTree(m.high[below], modelled, rest >> direct);
    rc_.EncodeDirect(rest & ((1u << direct) - 1u), direct);
  }
  // Block header with no seek.
  void Block(uint32_t diff, uint32_t extra) {
    Bit(model_->seek_negative, 0);
    Number(kSeekMagnitude, 0);
    Number(kDiffLength, diff);
    Number(kExtraLength, extra);
  }
  // A literal in state 0 (not after a copy).
  void Literal(uint32_t pos, uint8_t byte) {
    Bit(model_->is_match[0][pos % kPosStates], 0);
    Tree(model_->literal[LiteralContext(pos, prev_, 0)], 8, byte);
    prev_ = byte;
  }
  // A copy with a new distance, length 2..9, in state 0.
  void Copy(uint32_t pos, uint32_t len, uint32_t distance) {
    Bit(model_->is_match[0][pos % kPosStates], 1);
    Bit(model_->is_rep[0], 0);
    Bit(model_->match_len.choice, 0);
    Tree(model_->match_len.low[pos % kPosStates], 3, len - kMinMatch);
    const uint32_t d0 = distance - 1;
    ASSERT_LT(d0, 4u);  // slots 0..3 have no footer
    Tree(model_->dist_slot[std::min<uint32_t>(len - kMinMatch, kLenStates - 1)], kDistSlotBits, d0);
  }
  std::vector<uint8_t> Finish(uint8_t flags, uint32_t old_size, uint32_t new_size) {
    std::vector<uint8_t> patch(kDeltaHeaderSize, 0);
    StoreLe32(patch.data(), kDeltaMagic);
    patch[4] = kDeltaFormat;
    patch[5] = flags;
    StoreLe32(patch.data() + 8, old_size);
    StoreLe32(patch.data() + 12, new_size);
    const std::vector<uint8_t> body = rc_.Finish();
    patch.insert(patch.end(), body.begin(), body.end());
    return patch;
  }
  DeltaModel& model() { return *model_; }

 private:
  host::RangeEncoder rc_;
  std::unique_ptr<DeltaModel> model_ = std::make_unique<DeltaModel>();
  uint8_t prev_ = 0;
};

TEST(DeltaCodec, HandMadeStream_Valid_Decodes) {
  StreamBuilder b;
  b.Block(0, 6);
  b.Literal(0, 'a');
  b.Literal(1, 'b');
  b.Copy(2, 4, 2);  // "abab"
  const Result<std::vector<uint8_t>> out = Decode({}, b.Finish(0, 0, 6));
  ASSERT_TRUE(out.ok()) << out.status().name();
  EXPECT_EQ(out.value(), std::vector<uint8_t>({'a', 'b', 'a', 'b', 'a', 'b'}));
}

TEST(DeltaCodec, CopyFromBeforeTheStart_Corrupt) {
  StreamBuilder b;
  b.Block(0, 6);
  b.Literal(0, 'a');
  b.Copy(1, 4, 2);  // one byte produced, no old image: distance 2 reaches before both
  EXPECT_EQ(Decode({}, b.Finish(0, 0, 6)).status().code(), StatusCode::kCorrupt);
  StreamBuilder c;  // with an old image of 1 byte, distance 2 is its first byte: fine
  c.Block(0, 5);
  c.Literal(0, 'a');
  c.Copy(1, 4, 2);
  const Result<std::vector<uint8_t>> out = Decode({'x'}, c.Finish(0, 1, 5));
  ASSERT_TRUE(out.ok()) << out.status().name();
  EXPECT_EQ(out.value(), std::vector<uint8_t>({'a', 'x', 'a', 'x', 'a'}));
}

TEST(DeltaCodec, CopyLongerThanTheRun_Corrupt) {
  StreamBuilder b;
  b.Block(0, 4);
  b.Literal(0, 'a');
  b.Copy(1, 5, 1);  // 5 bytes, 3 left in the run
  EXPECT_EQ(Decode({}, b.Finish(0, 0, 4)).status().code(), StatusCode::kCorrupt);
}

TEST(DeltaCodec, RepeatedDistanceBeforeAnyCopy_Corrupt) {
  StreamBuilder b;
  b.Block(0, 3);
  DeltaModel& m = b.model();
  b.Bit(m.is_match[0][0], 1);  // rep0 (distance 1) with nothing produced and no old image
  b.Bit(m.is_rep[0], 1);
  b.Bit(m.is_rep0[0], 0);
  b.Bit(m.is_rep0_long[0][0], 0);
  EXPECT_EQ(Decode({}, b.Finish(0, 0, 3)).status().code(), StatusCode::kCorrupt);
}

TEST(DeltaCodec, MapTooLargeOrUnknownFlags_Refused) {
  StreamBuilder b;
  b.Direct(0x08000000, 32);
  b.Direct(kMaxMapEntries + 1, 16);
  EXPECT_EQ(Decode({1, 2, 3, 4}, b.Finish(kFlagPredictBranches, 4, 4)).status().code(),
            StatusCode::kCorrupt);
  StreamBuilder c;
  c.Block(0, 1);
  c.Literal(0, 1);
  EXPECT_EQ(Decode({}, c.Finish(3 << kLiteralModeShift, 0, 1)).status().code(),
            StatusCode::kUnsupported);
  EXPECT_EQ(Decode({}, c.Finish(0x40, 0, 1)).status().code(), StatusCode::kUnsupported);
}

TEST(DeltaCodec, TruncatedPatchWithCopiesAndPredictions_Refused) {
  for (int which = 0; which < 2; ++which) {
    const auto [old, neu] = which == 0 ? MakeRepetitivePair(9) : MakeMovedCodePair();
    const auto patch = host::EncodeDelta(old, neu);
    for (size_t cut = kDeltaHeaderSize; cut + 8 < patch.size(); cut += patch.size() / 37 + 1) {
      std::vector<uint8_t> bad(patch.begin(), patch.begin() + static_cast<long>(cut));
      const Result<std::vector<uint8_t>> out = Decode(old, bad);
      EXPECT_FALSE(out.ok()) << "cut at " << cut << " of " << patch.size();
    }
  }
}

// Real firmware pairs from ../shared (the CI layout); skipped, saying so, where absent.
TEST(DeltaCodec, RealFirmwarePairs_RoundTripExact) {
  const std::filesystem::path dir =
      std::filesystem::path(OTA_SOURCE_DIR) / "../shared/firmware-pairs";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no " << dir << ": real pairs not tested";
  auto load = [](const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
  };
  int pairs = 0;
  for (const char* name : {"p2_pybv11_stm32f405", "p3_detools_shell_cortexm4"}) {
    std::vector<uint8_t> old, neu;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      const std::string file = e.path().filename().string();
      if (file.rfind(name, 0) != 0) continue;
      if (file.ends_with(".old.bin")) old = load(e.path());
      if (file.ends_with(".new.bin")) neu = load(e.path());
    }
    if (old.empty() || neu.empty()) continue;
    const auto patch = host::EncodeDelta(old, neu);
    const Result<std::vector<uint8_t>> out = Decode(old, patch, 1024, 4096);
    ASSERT_TRUE(out.ok()) << name << ": " << out.status().name();
    EXPECT_EQ(out.value(), neu) << name;
    std::printf("delta-roundtrip: %s new=%zu patch=%zu\n", name, neu.size(), patch.size());
    ++pairs;
  }
  EXPECT_EQ(pairs, 2);
}

}  // namespace
}  // namespace ota::codec
