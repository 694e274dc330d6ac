// The one storage interface under all device code: read, program, erase + geometry.
//
// Public methods are non-virtual: they check every argument against the geometry and only
// then call the private virtuals an implementation supplies (emulation on the host, the
// STM32F4 and W25Q128 drivers on the board). So a misaligned or out-of-range access is the
// same error everywhere, whatever the backend.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota {

// `count` consecutive erase sectors of `size` bytes each.
struct SectorRun {
  uint32_t count;
  uint32_t size;
};

struct SectorInfo {
  uint32_t index;   // 0-based sector number on the device
  uint32_t offset;  // first byte
  uint32_t size;    // bytes
};

inline constexpr size_t kMaxSectorRuns = 4;
inline constexpr size_t kMaxBlockEraseSizes = 2;

struct FlashGeometry {
  const char* name;
  SectorRun runs[kMaxSectorRuns];  // in address order; unused runs have count 0
  // Program address and length must both be multiples of this (4: STM32F4 at x32).
  uint32_t program_align;
  // A single program may not cross a multiple of this (256: W25Q page); 0 = no limit.
  uint32_t program_page;
  // Larger erase commands an implementation may use for aligned ranges (W25Q: 64 KB,
  // 32 KB), largest first; 0 = unused. Erase ranges still only need sector alignment.
  uint32_t block_erase_sizes[kMaxBlockEraseSizes];

  uint32_t total_size() const;
  uint32_t sector_count() const;
  // The sector that holds `addr`.
  Result<SectorInfo> SectorAt(uint32_t addr) const;
  Result<SectorInfo> SectorByIndex(uint32_t index) const;
  bool IsSectorBoundary(uint32_t addr) const;
  // The largest single erase command at `addr` (a sector boundary) that erases no more than
  // `remaining` bytes: an aligned block erase if one fits, else the sector.
  uint32_t EraseCommandSize(uint32_t addr, uint32_t remaining) const;
};

class Flash {
 public:
  explicit Flash(const FlashGeometry& geometry) : geometry_(geometry) {}
  Flash(const Flash&) = delete;
  Flash& operator=(const Flash&) = delete;

  const FlashGeometry& geometry() const { return geometry_; }
  uint32_t size() const { return geometry_.total_size(); }
  static constexpr uint8_t kErased = 0xFF;

  // Reads `out.size()` bytes at `addr`. Any alignment.
  Status Read(uint32_t addr, ByteSpan out);
  // Programs `data` at `addr`. Bits can only go from 1 to 0: programming over bits that are
  // already 0 where `data` has 1 is kNotErased. Alignment per geometry.
  Status Program(uint32_t addr, ConstByteSpan data);
  // Erases [addr, addr+len) to 0xFF; both ends must be sector boundaries.
  Status Erase(uint32_t addr, uint32_t len);

 protected:
  // Not virtual: a Flash is never deleted through this interface, and a virtual destructor
  // would pull operator delete (the heap) into the firmware.
  ~Flash() = default;

 private:
  virtual Status DoRead(uint32_t addr, ByteSpan out) = 0;
  virtual Status DoProgram(uint32_t addr, ConstByteSpan data) = 0;
  virtual Status DoErase(uint32_t addr, uint32_t len) = 0;

  const FlashGeometry& geometry_;
};

}  // namespace ota
