// Fuzz target: the app image header decoder and the full image check over a fuzzed slot.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ota/image.hpp"
#include "sim/board_flash.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint8_t raw[ota::kImageHeaderSize] = {};
  std::memcpy(raw, data, size < sizeof(raw) ? size : sizeof(raw));
  const ota::Result<ota::ImageHeader> header = ota::DecodeImageHeader(raw);
  if (header.ok()) {
    uint8_t again[ota::kImageHeaderSize];
    ota::EncodeImageHeader(header.value(), again);
    if (std::memcmp(raw, again, sizeof(raw)) != 0) __builtin_trap();
  }

  static ota::sim::BoardFlash board(ota::kSimSmall);
  const ota::Partition& run = ota::kSimSmall.partition(ota::PartitionId::kRunning);
  auto& in = board.internal.raw();
  std::memset(&in[run.offset], 0xFF, run.size);
  std::memcpy(&in[run.offset], data, size < run.size ? size : run.size);
  uint8_t work[256];
  const ota::FlashArea slot(board.internal, run.offset, run.size);
  const ota::Result<ota::ImageInfo> info =
      ota::ValidateImage(slot, ota::kSimSmall.internal_base + run.offset, ota::ByteSpan(work));
  if (info.ok() && info->total_size > run.size) __builtin_trap();
  return 0;
}
