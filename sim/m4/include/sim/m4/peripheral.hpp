// The interface between the emulated board and one peripheral model: register reads and
// writes at offsets from the peripheral's base, and what a model may ask of the board (the
// time, an interrupt, a reset, stopping the run).
#pragma once

#include <cstdint>
#include <string>

#include <utility>
#include "sim/flash_timing.hpp"

namespace ota::sim::m4 {

// Why the core was reset.
enum class ResetCause { kPowerOn, kSoftware, kWatchdog };
const char* ResetCauseName(ResetCause cause);

// What a peripheral model sees of the board it is part of (implemented by M4Board).
class Machine {
 public:
  // Core clock cycles since power-on: one per instruction executed (docs/m4-board.md).
  virtual uint64_t cycles() const = 0;
  // Emulated time since power-on, in nanoseconds: the cycles at the SYSCLK of the moment.
  virtual uint64_t now_ns() const = 0;
  // The address of the instruction being executed as far as the CPU emulator knows it: on
  // 32-bit ARM Unicorn 2.0.1 keeps the PC exact only at block boundaries, so inside a
  // peripheral access this is the first instruction of the block holding it (a few
  // instructions before the access at most).
  virtual uint32_t pc() const = 0;
  // A gap in the model, or a rule of the part broken in a way the model does not emulate:
  // the run stops with this message. Never silent.
  virtual void Fail(const std::string& what) = 0;
  // Sets exception `number` pending (16 + n for IRQ n; 15 is SysTick).
  virtual void SetPending(uint32_t number) = 0;
  // A system reset at the end of the current instruction.
  virtual void RequestReset(ResetCause cause) = 0;
  // A timer's deadline moved (SysTick reloaded, the watchdog refreshed): the board looks
  // again when the next one is due.
  virtual void TimersChanged() = 0;
  // SYSCLK now (RCC): the core clock, and SysTick's.
  virtual uint32_t sysclk_hz() const = 0;
  // The core stalls for `ns` (a bus access waiting for the flash interface): time and
  // cycles advance, no instruction runs.
  virtual void Stall(uint64_t ns) = 0;
  // A flash model reported that the board's supply failed (a planned power cut): the run
  // stops there.
  virtual void PowerLost() = 0;

 protected:
  ~Machine() = default;
};

class Peripheral {
 public:
  Peripheral(Machine& machine, std::string name, uint32_t base, uint32_t size)
      : machine_(machine), name_(std::move(name)), base_(base), size_(size) {}
  virtual ~Peripheral() = default;
  Peripheral(const Peripheral&) = delete;
  Peripheral& operator=(const Peripheral&) = delete;

  const std::string& name() const { return name_; }
  uint32_t base() const { return base_; }
  uint32_t size() const { return size_; }

  // Every register to its reset value (RM0090's "Reset value" of each register).
  virtual void Reset() = 0;
  // An aligned 32-bit access to the register at `offset`.
  virtual uint32_t Read(uint32_t offset) = 0;
  virtual void Write(uint32_t offset, uint32_t value) = 0;
  // An 8- or 16-bit access: only registers the part documents for it (SPI DR, NVIC IPR)
  // override these; anything else stops the run.
  virtual uint32_t ReadNarrow(uint32_t offset, unsigned size);
  virtual void WriteNarrow(uint32_t offset, unsigned size, uint32_t value);

  // Timed behaviour (a timer's tick, a byte arriving): the emulated time at which OnTime
  // must run next, or kNever. The board calls OnTime once now_ns() has reached it (at the
  // end of a block of instructions, or at once when the core sleeps), and asks again after
  // Machine::TimersChanged.
  static constexpr uint64_t kNever = UINT64_MAX;
  virtual uint64_t NextEventNs() { return kNever; }
  virtual void OnTime() {}

 protected:
  // Stops the run: `offset` is not a register this model has. Returns 0 for the read.
  uint32_t Unmodelled(uint32_t offset, unsigned size, bool write, uint32_t value = 0);
  // Stops the run with "<name>: <what>".
  void Fail(const std::string& what);
  std::string RegisterName(uint32_t offset) const;

  Machine& machine_;

 private:
  std::string name_;
  uint32_t base_;
  uint32_t size_;
};

// "0x40023c10".
std::string Hex(uint32_t value);

// How long the flash models keep BSY/BUSY: the datasheets' typical or maximum times
// (sim/flash_timing.hpp: RM0090/DS9405 for the internal flash, the W25Q128JV's AC table).
enum class FlashTimingCase { kTypical, kMaximum };
inline uint64_t ProgramUs(const FlashTiming& t, FlashTimingCase c) {
  return c == FlashTimingCase::kMaximum ? t.program_max_us : t.program_typ_us;
}
inline uint64_t EraseUs(const FlashTiming& t, uint32_t size, FlashTimingCase c) {
  const EraseTiming e = t.EraseCost(size);
  return c == FlashTimingCase::kMaximum ? e.max_us : e.typ_us;
}

}  // namespace ota::sim::m4
