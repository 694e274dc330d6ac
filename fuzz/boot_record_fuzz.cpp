// Fuzz target: the boot record decoder and the boot store reading arbitrary flash contents.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ota/boot_state.hpp"
#include "sim/board_flash.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint8_t raw[ota::kBootRecordSize];
  std::memset(raw, 0xFF, sizeof(raw));
  std::memcpy(raw, data, size < sizeof(raw) ? size : sizeof(raw));
  const ota::Result<ota::BootRecord> record = ota::DecodeBootRecord(raw);
  if (record.ok()) {
    // A record that decodes re-encodes to the same bytes: one encoding per record.
    uint8_t again[ota::kBootRecordSize];
    ota::EncodeBootRecord(record.value(), again);
    if (std::memcmp(raw, again, sizeof(raw)) != 0) __builtin_trap();
  }

  // The whole store over fuzzed copies: Load and Save must cope with any bytes.
  static ota::sim::BoardFlash board(ota::kSimSmall);
  const ota::Partition& a = ota::kSimSmall.partition(ota::PartitionId::kBootStateA);
  const ota::Partition& b = ota::kSimSmall.partition(ota::PartitionId::kBootStateB);
  auto& ext = board.external.raw();
  std::memset(&ext[a.offset], 0xFF, a.size);
  std::memset(&ext[b.offset], 0xFF, b.size);
  std::memcpy(&ext[a.offset], data, size < a.size ? size : a.size);
  if (size > a.size)
    std::memcpy(&ext[b.offset], data + a.size, size - a.size < b.size ? size - a.size : b.size);
  ota::BootStore store(ota::FlashArea(board.external, a.offset, a.size),
                       ota::FlashArea(board.external, b.offset, b.size));
  ota::Result<ota::BootRecord> loaded = store.Load();
  if (loaded.ok()) {
    ota::BootRecord next = loaded.value();
    const uint32_t before = next.sequence;
    if (store.Save(next).ok()) {
      // The record just saved is the one loaded, under a number above the old newest (one
      // more per torn slot: record_log.hpp), or renumbered from 1 near the top of the range.
      const ota::Result<ota::BootRecord> after = store.Load();
      if (!after.ok() || after->sequence != next.sequence) __builtin_trap();
      if (next.sequence <= before && next.sequence != 1) __builtin_trap();
      uint8_t saved[ota::kBootRecordSize], loaded_again[ota::kBootRecordSize];
      ota::EncodeBootRecord(next, saved);
      ota::EncodeBootRecord(after.value(), loaded_again);
      if (std::memcmp(saved, loaded_again, sizeof(saved)) != 0) __builtin_trap();
    }
  }
  return 0;
}
