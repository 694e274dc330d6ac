#include "ota/flash.hpp"

namespace ota {

uint32_t FlashGeometry::total_size() const {
  uint32_t total = 0;
  for (const SectorRun& run : runs)
    total += run.count * run.size;
  return total;
}

uint32_t FlashGeometry::sector_count() const {
  uint32_t n = 0;
  for (const SectorRun& run : runs)
    n += run.count;
  return n;
}

Result<SectorInfo> FlashGeometry::SectorAt(uint32_t addr) const {
  uint32_t offset = 0;
  uint32_t index = 0;
  for (const SectorRun& run : runs) {
    if (run.count == 0) continue;
    const uint32_t run_bytes = run.count * run.size;
    if (addr < offset + run_bytes) {
      const uint32_t k = (addr - offset) / run.size;
      return SectorInfo{index + k, offset + k * run.size, run.size};
    }
    offset += run_bytes;
    index += run.count;
  }
  return StatusCode::kOutOfRange;
}

Result<SectorInfo> FlashGeometry::SectorByIndex(uint32_t wanted) const {
  uint32_t offset = 0;
  uint32_t index = 0;
  for (const SectorRun& run : runs) {
    if (wanted < index + run.count) {
      const uint32_t k = wanted - index;
      return SectorInfo{wanted, offset + k * run.size, run.size};
    }
    offset += run.count * run.size;
    index += run.count;
  }
  return StatusCode::kOutOfRange;
}

bool FlashGeometry::IsSectorBoundary(uint32_t addr) const {
  if (addr == total_size()) return true;
  const Result<SectorInfo> sector = SectorAt(addr);
  return sector.ok() && sector->offset == addr;
}

uint32_t FlashGeometry::EraseCommandSize(uint32_t addr, uint32_t remaining) const {
  // Block sizes are listed largest first.
  for (const uint32_t block : block_erase_sizes) {
    if (block != 0 && addr % block == 0 && block <= remaining) return block;
  }
  const Result<SectorInfo> sector = SectorAt(addr);
  return sector.ok() ? sector->size : remaining;
}

namespace {
// True if [addr, addr+len) lies inside [0, size) without overflow.
bool InRange(uint32_t addr, size_t len, uint32_t size) {
  return addr <= size && len <= static_cast<size_t>(size - addr);
}
}  // namespace

Status Flash::Read(uint32_t addr, ByteSpan out) {
  if (!InRange(addr, out.size(), size())) return StatusCode::kOutOfRange;
  if (out.empty()) return Status::Ok();
  return DoRead(addr, out);
}

Status Flash::Program(uint32_t addr, ConstByteSpan data) {
  if (!InRange(addr, data.size(), size())) return StatusCode::kOutOfRange;
  if (data.empty()) return Status::Ok();
  const uint32_t align = geometry_.program_align;
  if (align > 1 && (addr % align != 0 || data.size() % align != 0)) {
    return StatusCode::kMisaligned;
  }
  const uint32_t page = geometry_.program_page;
  if (page != 0 && addr / page != (addr + data.size() - 1) / page) {
    return StatusCode::kMisaligned;  // a page program would wrap inside the page
  }
  return DoProgram(addr, data);
}

Status Flash::Erase(uint32_t addr, uint32_t len) {
  if (!InRange(addr, len, size())) return StatusCode::kOutOfRange;
  if (len == 0) return Status::Ok();
  if (!geometry_.IsSectorBoundary(addr) || !geometry_.IsSectorBoundary(addr + len)) {
    return StatusCode::kMisaligned;
  }
  return DoErase(addr, len);
}

}  // namespace ota
