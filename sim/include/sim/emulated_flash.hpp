// The host port of ota::Flash: an in-memory (optionally file-backed) flash device that
// behaves like the datasheets say: programming only clears bits, erase works on whole
// sectors or blocks, and a power fault can cut or tear any single program or erase op.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ota/flash.hpp"
#include "sim/flash_timing.hpp"
#include "sim/power.hpp"

namespace ota::sim {

class EmulatedOptionBytes;

// What a device did, counted per operation the real part would see.
struct FlashCounters {
  uint64_t read_calls = 0;
  uint64_t read_bytes = 0;
  uint64_t program_ops = 0;
  uint64_t program_bytes = 0;
  uint64_t erase_ops = 0;
  uint64_t erased_bytes = 0;
  std::map<uint32_t, uint64_t> erase_ops_by_size;  // erase command size -> ops
  // What the real part would take, typical and worst case.
  uint64_t time_typ_us = 0;
  uint64_t time_max_us = 0;

  // Ops of one erase size; 0 if none were issued.
  uint64_t erase_ops_of(uint32_t size) const;
  FlashCounters& operator+=(const FlashCounters& other);
};

class EmulatedFlash : public Flash {
 public:
  // `geometry` must outlive the device (the base keeps a reference); `power` may be nullptr
  // for a supply that never fails. Contents start erased (all 0xFF).
  EmulatedFlash(const FlashGeometry& geometry, const FlashTiming& timing, PowerSupply* power);
  ~EmulatedFlash();

  // Backs the device with the file at `path` so a simulated board keeps its flash across
  // process restarts. A missing file is created erased; an existing one is loaded and must
  // be exactly the device's size (else kInvalidArgument). Every completed (or torn) op is
  // then written through, so a process killed at any point leaves the file as the flash was
  // after its last op. Erase counts go to `path + ".wear"` (little-endian uint32 per sector).
  Status OpenFile(const std::string& path);
  // Writes all of raw() to the backing file (after set-up through raw(), which bypasses it).
  Status Sync() { return WriteThrough(0, contents_.size()); }

  const FlashCounters& counters() const { return counters_; }
  void ResetCounters();
  // Erase count per sector index.
  const std::vector<uint32_t>& wear() const { return wear_; }

  // Direct access for test set-up and assertions: not counted, not faulted and not written
  // to the backing file. A snapshot is a copy of raw(); a restore assigns it back.
  std::vector<uint8_t>& raw() { return contents_; }
  const std::vector<uint8_t>& raw() const { return contents_; }

  // The option bytes whose write protection this device obeys (the STM32F4's internal flash;
  // nullptr: none). A program or erase touching a protected sector is refused whole with
  // kWriteProtected, as the F4 sets WRPERR: nothing changes and no operation is counted.
  void set_option_bytes(const EmulatedOptionBytes* option_bytes) { option_bytes_ = option_bytes; }

 private:
  Status DoRead(uint32_t addr, ByteSpan out) override;
  Status DoProgram(uint32_t addr, ConstByteSpan data) override;
  Status DoErase(uint32_t addr, uint32_t len) override;

  bool PowerLost() const { return power_ != nullptr && power_->lost(); }
  PowerDecision BeginMutatingOp();
  // One program op over [addr, addr + data.size()); the whole range is already checked.
  Status ProgramOp(uint32_t addr, ConstByteSpan data);
  // One erase command of `size` bytes at `addr`.
  Status EraseOp(uint32_t addr, uint32_t size);
  // The largest erase command that fits at `addr` with `remaining` bytes left to erase.
  uint32_t EraseOpSize(uint32_t addr, uint32_t remaining) const;
  Status CheckNotProtected(uint32_t addr, size_t len) const;
  Status WriteThrough(uint32_t addr, size_t len);
  Status WriteWearThrough(uint32_t first_sector, uint32_t count);
  void AddReadTime(double us);
  void CloseFile();

  FlashTiming timing_;
  PowerSupply* power_;
  const EmulatedOptionBytes* option_bytes_ = nullptr;
  std::vector<uint8_t> contents_;
  std::vector<uint32_t> wear_;
  FlashCounters counters_;
  double read_time_us_ = 0;  // reads cost fractions of a microsecond: keep the remainder
  int data_fd_ = -1;
  int wear_fd_ = -1;
};

}  // namespace ota::sim
