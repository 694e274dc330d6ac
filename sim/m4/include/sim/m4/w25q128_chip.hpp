// The Winbond W25Q128JV on the SPI bus, byte by byte (datasheet sections 8.1-8.2): the
// commands the FIRE board's driver uses, on the board's emulated external flash
// (sim::BoardFlash::external), so programs and erases go through its rules, faults and
// counters. Chip select low starts a command; the bytes clocked in are the opcode, the
// address and data; chip select high ends it, and a program or erase starts then.
//
// Modelled: 06 write enable, 04 write disable, 05/35/15 status registers 1-3 (BUSY, WEL),
// 9F JEDEC ID (EF 40 18), 03 read and 0B fast read (continuous, wrapping at the end of the
// array), 02 page program (256-byte page buffer: an address past the page's end wraps to its
// start, datasheet 8.2.13), 20 4 KB sector erase, 52 32 KB and D8 64 KB block erases, B9
// power-down and AB release. BUSY lasts the typical (or, with set_timing, the maximum) time of
// sim::kW25q128Timing.
// As the part, a program or erase without WEL set, any command but a status read while BUSY,
// and a command that changes the chip's state (06, 04, 02, 20, 52, D8, B9, AB) whose chip
// select rises before the address is complete or in the middle of a byte (datasheet 8.2.x:
// "/CS must be driven high after the eighth bit of the last byte has been latched. If this
// is not done the ... instruction will not be executed") are ignored; each is recorded as a
// violation. Any other opcode stops the run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/emulated_flash.hpp"
#include "sim/m4/peripheral.hpp"

namespace ota::sim::m4 {

struct W25qCommand {
  uint8_t opcode = 0;
  uint32_t address = 0;     // for commands with one
  uint32_t data_bytes = 0;  // bytes after the opcode and address (and dummy) bytes
  bool wel_before = false;  // WEL when chip select went low
  bool busy_before = false;
  bool executed = true;  // false: ignored by the chip (see note)
  uint64_t cycle = 0;    // when chip select went high
  uint32_t pc = 0;
  std::string note;  // why it was ignored, or a rule it broke
};

class W25q128Chip {
 public:
  static constexpr uint32_t kJedecId = 0xEF4018;
  static constexpr uint8_t kStatusBusy = 0x01;
  static constexpr uint8_t kStatusWel = 0x02;
  static constexpr uint32_t kPageSize = 256;

  W25q128Chip(Machine& machine, EmulatedFlash& flash);

  // Power-on state: not busy, WEL clear, not powered down. The array keeps its contents.
  void Reset();
  void Select();
  // Chip select high. `byte_complete` false: it rose while a byte was still being clocked
  // in (SPI5 still shifting), so the last byte was never latched.
  void Deselect(bool byte_complete = true);
  bool selected() const { return selected_; }
  // One byte each way while selected.
  uint8_t Transfer(uint8_t in);

  uint8_t status1();
  // Fast waiting (off by default): a status read that answers BUSY lets the emulated time run
  // to the end of the operation (no instruction runs meanwhile), so the driver's next poll
  // finds it done. Same emulated time, same commands but fewer polls: the power-cut sweep's.
  void set_fast_busy_wait(bool on) { fast_busy_wait_ = on; }
  uint64_t waited_ns() const { return waited_ns_; }
  // BUSY for the typical time (default) or the datasheet's maximum (tPP 3 ms, tSE 400 ms,
  // tBE1 1.6 s, tBE2 2 s): the driver's timeouts must cover the maximum.
  void set_timing(FlashTimingCase timing) { timing_ = timing; }
  // Every command, in order (status reads included: the tests count the polls).
  const std::vector<W25qCommand>& commands() const { return commands_; }
  void ClearCommands() { commands_.clear(); }
  // The commands that broke a rule of the datasheet, as text.
  std::vector<std::string> Violations() const;

 private:
  void Update();
  void Execute();
  uint32_t AddressBytes(uint8_t opcode) const;
  void Program();
  void Erase(uint32_t size);
  void Ignore(const std::string& why);

  Machine& machine_;
  EmulatedFlash& flash_;
  bool selected_ = false;
  bool wel_ = false;
  bool busy_ = false;
  bool powered_down_ = false;
  uint64_t busy_until_ns_ = 0;
  bool fast_busy_wait_ = false;
  uint64_t waited_ns_ = 0;
  FlashTimingCase timing_ = FlashTimingCase::kTypical;
  // The command being clocked in.
  W25qCommand current_;
  uint32_t byte_index_ = 0;
  uint8_t page_[kPageSize];
  uint32_t page_pos_ = 0;  // next byte's offset in the page buffer
  bool page_touched_[kPageSize];
  std::vector<W25qCommand> commands_;
};

}  // namespace ota::sim::m4
