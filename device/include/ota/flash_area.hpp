// A partition of a flash device (like MCUboot's flash_area): offsets are relative to the
// partition and every access is bounds-checked against it.
#pragma once

#include <cstdint>

#include "ota/flash.hpp"
#include "ota/profile.hpp"
#include "ota/sha256.hpp"
#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota {

class FlashArea {
 public:
  FlashArea() = default;
  FlashArea(Flash& flash, uint32_t offset, uint32_t size)
      : flash_(&flash), offset_(offset), size_(size) {}

  Flash& flash() const { return *flash_; }
  uint32_t offset() const { return offset_; }
  uint32_t size() const { return size_; }

  Status Read(uint32_t off, ByteSpan out) const;
  // Programs `data`, split at the device's page boundaries so callers need not know them.
  Status Program(uint32_t off, ConstByteSpan data) const;
  // Erases [off, off+len); both ends must be sector boundaries of the device.
  Status Erase(uint32_t off, uint32_t len) const;
  // Erases exactly the sectors that hold any byte of [off, off+len), and no other.
  Status EraseCovering(uint32_t off, uint32_t len) const;
  // True if every byte of [off, off+len) reads 0xFF.
  Result<bool> IsErased(uint32_t off, uint32_t len, ByteSpan work) const;

 private:
  bool Contains(uint32_t off, uint32_t len) const { return off <= size_ && len <= size_ - off; }

  Flash* flash_ = nullptr;
  uint32_t offset_ = 0;
  uint32_t size_ = 0;
};

// The area of a partition of `profile`, given the board's two flash devices.
FlashArea OpenPartition(const BoardProfile& profile, Flash* const (&flashes)[kFlashCount],
                        PartitionId id);

// Writes an image into an area from its start, in order, erasing each part of the area just
// before the first write into it (largest erase block the device offers, never past the
// sectors the image needs). Bytes are held back until a whole program unit is ready.
class SlotWriter {
 public:
  // `total` bytes will be written: the writer never erases past the sectors they need.
  SlotWriter(const FlashArea& area, uint32_t total) : area_(area), total_(total) {}

  Status Write(ConstByteSpan data);
  // Programs any held-back tail, padded with 0xFF to a whole program unit.
  Status Finish();
  uint32_t written() const { return written_; }

  static constexpr uint32_t kMaxProgramAlign = 8;

 private:
  Status EnsureErased(uint32_t end);
  Status ProgramAligned(ConstByteSpan data);

  FlashArea area_;
  uint32_t total_;
  uint32_t written_ = 0;     // bytes accepted from the caller
  uint32_t programmed_ = 0;  // bytes programmed to flash
  uint32_t erased_end_ = 0;  // [0, erased_end_) has been erased by this writer
  uint8_t pending_[kMaxProgramAlign] = {};
  uint32_t pending_len_ = 0;
};

// Copies `len` bytes from `src` (from 0) into `dst` through `work`.
Status CopyToWriter(const FlashArea& src, uint32_t len, SlotWriter& dst, ByteSpan work);

// SHA-256 of [off, off+len) of an area, read through `work`.
Status HashArea(const FlashArea& area, uint32_t off, uint32_t len, ByteSpan work, Sha256Digest out);

}  // namespace ota
