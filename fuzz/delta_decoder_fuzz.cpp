// Fuzz target: the delta decoder on arbitrary patches against a fixed old image must return
// an error or at most new_size bytes; never fault, hang, or read outside the old image.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ota/bytes.hpp"
#include "ota/codec/delta_decoder.hpp"
#include "ota/codec/memory_source.hpp"
#include "sim/board_flash.hpp"

namespace {
constexpr uint32_t kOldSize = 4096;
constexpr uint32_t kNewOffset = 0x20000;  // free space above the sim-small partitions
constexpr uint32_t kNewMax = 1u << 17;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ota::sim::BoardFlash board(ota::kSimSmall);
  const ota::Partition& backup = ota::kSimSmall.partition(ota::PartitionId::kBackup);
  static bool filled = false;
  if (!filled) {
    for (uint32_t i = 0; i < kOldSize; ++i) {
      board.external.raw()[backup.offset + i] = static_cast<uint8_t>(i * 7);
    }
    filled = true;
  }
  // Give the fuzzer a valid header most of the time, so it spends its effort on the stream;
  // cap new_size so one input cannot take long.
  uint8_t patch[1 << 16];
  if (size < ota::codec::kDeltaHeaderSize || size > sizeof(patch)) return 0;
  std::memcpy(patch, data, size);
  if (data[0] & 1) {
    ota::StoreLe32(patch, ota::codec::kDeltaMagic);
    patch[4] = ota::codec::kDeltaFormat;
    patch[5] &= ota::codec::kKnownFlags;  // predictions and literal modes stay reachable
    patch[6] = patch[7] = 0;
    ota::StoreLe32(patch + 8, kOldSize);
  }
  ota::StoreLe32(patch + 12, ota::LoadLe32(patch + 12) % kNewMax);
  ota::codec::MemorySource source(ota::ConstByteSpan(patch, size));
  // The new image goes to the top of the external device as it comes out.
  const ota::FlashArea written(board.external, kNewOffset, kNewMax);
  ota::codec::DeltaDecoder decoder(source, ota::FlashArea(board.external, backup.offset, kOldSize),
                                   written);
  if (!decoder.Init(kOldSize).ok()) return 0;
  uint8_t out[512];
  uint64_t total = 0;
  for (;;) {
    const ota::Result<size_t> n = decoder.Read(ota::ByteSpan(out));
    if (!n.ok() || n.value() == 0) break;
    if (total + n.value() > decoder.new_size()) __builtin_trap();
    std::memcpy(board.external.raw().data() + kNewOffset + total, out, n.value());
    total += n.value();
  }
  return 0;
}
