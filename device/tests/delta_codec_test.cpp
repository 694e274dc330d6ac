#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "ota/codec/delta_decoder.hpp"
#include "ota/codec/memory_source.hpp"
#include "ota/host/delta_encoder.hpp"
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
