// SPI5 as the FIRE board uses it (RM0090 section 28): master, 8-bit frames, software slave
// management, wired to the W25Q128 on PF7 (SCK), PF8 (MISO), PF9 (MOSI) in AF5, its chip
// select on PF6 driven as a GPIO. A byte written to DR shifts out at fPCLK2 / 2^(BR+1):
// TXE stays set (the byte moves to the shift register at once), BSY is set and RXNE comes
// when the eighth bit is in, with the chip's answer in DR.
//
// Rules checked (each recorded in violations()): SPE set, pins in AF5, clock mode 0 or 3
// and MSB first (what the W25Q128 accepts), SCK within the chip's 50 MHz for a read (03)
// and SPI5's 45 MHz, chip select not raised while a byte is still shifting, RXNE read before
// the next byte arrives (else OVR). Slave mode, 16-bit frames and a write while a byte is
// shifting stop the run: not modelled.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/m4/gpio.hpp"
#include "sim/m4/peripheral.hpp"
#include "sim/m4/rcc.hpp"
#include "sim/m4/w25q128_chip.hpp"

namespace ota::sim::m4 {

class Spi final : public Peripheral {
 public:
  Spi(Machine& machine, const Rcc& rcc, const Gpio& pins, W25q128Chip& chip);

  void Reset() override;
  uint32_t Read(uint32_t offset) override;
  void Write(uint32_t offset, uint32_t value) override;
  // DR takes 8-bit accesses (the driver writes bytes so one frame goes out, RM0090 28.3.5).
  uint32_t ReadNarrow(uint32_t offset, unsigned size) override;
  void WriteNarrow(uint32_t offset, unsigned size, uint32_t value) override;

  // Chip select changed (PF6): the chip is selected when it is low.
  void ChipSelect(bool level);
  const std::vector<std::string>& violations() const { return violations_; }
  uint64_t bytes() const { return bytes_; }

 private:
  void Update();
  void Send(uint8_t byte);
  uint8_t ReceiveDr();
  void Violation(const std::string& what);

  const Rcc& rcc_;
  const Gpio& pins_;
  W25q128Chip& chip_;
  uint32_t cr1_ = 0;
  uint32_t cr2_ = 0;
  uint32_t sr_ = 0;
  uint8_t rx_ = 0;
  uint8_t shifting_rx_ = 0;
  bool shifting_ = false;
  uint64_t shift_end_ns_ = 0;
  uint64_t bytes_ = 0;
  std::vector<std::string> violations_;
};

}  // namespace ota::sim::m4
