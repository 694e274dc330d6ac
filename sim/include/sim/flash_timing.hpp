// How long the real parts take, so a host run can estimate what an upgrade costs on the
// board. Figures are the datasheets' typical and maximum values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ota::sim {

// Time for one erase command of `size` bytes.
struct EraseTiming {
  uint32_t size;  // 0 = unused entry
  uint64_t typ_us;
  uint64_t max_us;
};

inline constexpr size_t kMaxEraseTimings = 4;

struct FlashTiming {
  // One program operation: a word on STM32F4 internal flash, a page program on SPI NOR.
  uint64_t program_typ_us;
  uint64_t program_max_us;
  EraseTiming erase[kMaxEraseTimings];
  double read_bytes_per_us;
  double read_call_overhead_us;  // fixed cost per read call (SPI: opcode + address)

  // The entry for exactly `size`, else the entry with the nearest size scaled in proportion
  // to bytes (erase time grows roughly with the cells erased). All zero if the table is empty.
  EraseTiming EraseCost(uint32_t size) const;
  // Time for one read call of `bytes` bytes.
  double ReadCostUs(size_t bytes) const;
};

// STM32F429 internal flash at x32 parallelism (VDD 2.7-3.6 V), DS9405 "Flash memory
// programming" table: word program tprog 16 us typ / 100 us max; sector erase tERASE16KB
// 250/500 ms, tERASE64KB 550/1100 ms, tERASE128KB 1/2 s. Reads are memory mapped (180 MHz,
// 5 wait states, ART accelerator): a CPU copy runs at roughly 100 bytes/us, no set-up cost.
inline constexpr FlashTiming kStm32f4InternalTiming = {
    16,
    100,
    {{16 * 1024, 250'000, 500'000},
     {64 * 1024, 550'000, 1'100'000},
     {128 * 1024, 1'000'000, 2'000'000},
     {0, 0, 0}},
    100.0,
    0.0,
};

// Winbond W25Q128JV datasheet, AC electrical characteristics: page program tPP 0.7 ms typ /
// 3 ms max; sector erase tSE (4 KB) 45/400 ms, block erase tBE1 (32 KB) 120/1600 ms, tBE2
// (64 KB) 150/2000 ms. Reads over SPI5 at 45 MHz, single lane: 45e6 / 8 = 5.625 bytes/us,
// plus about 1 us per read command for the opcode and 24-bit address (32 clocks + CS).
inline constexpr FlashTiming kW25q128Timing = {
    700,
    3'000,
    {{4 * 1024, 45'000, 400'000},
     {32 * 1024, 120'000, 1'600'000},
     {64 * 1024, 150'000, 2'000'000},
     {0, 0, 0}},
    5.625,
    1.0,
};

// Microseconds as text for people: "850 us", "12.5 ms", "2.31 s", "3 min 12 s".
std::string FormatMicros(uint64_t us);

}  // namespace ota::sim
