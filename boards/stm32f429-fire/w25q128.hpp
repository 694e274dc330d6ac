// Winbond W25Q128JV serial NOR flash on SPI5 (PF7 SCK, PF8 MISO, PF9 MOSI, PF6 chip select)
// as an ota::Flash, from the W25Q128JV datasheet (rev. F) and RM0090 section 28 (SPI).
#pragma once

#include <cstdint>

#include "ota/flash.hpp"

namespace fire {

class W25q128 final : public ota::Flash {
 public:
  // Geometry ota::kStm32f429Fire.external.
  W25q128();

  // Sets up GPIO and SPI5, wakes the chip and checks its JEDEC ID (0xEF4018): kNotFound if
  // another or no chip answers, kIoError if SPI5 stops. Needs ClockInit (SPI5 runs at
  // APB2 / 4 = 22.5 MHz). Until an Init succeeds, every read, program and erase returns
  // kFailedPrecondition without touching the bus. Every wait on the chip or the SPI is
  // bounded (a byte: 1 ms; a command: its datasheet maximum with margin, at most 2.5 s), so
  // a dead or missing chip gives an error, never a hang.
  ota::Status Init();
  uint32_t jedec_id() const { return jedec_id_; }

 private:
  ota::Status DoRead(uint32_t addr, ota::ByteSpan out) override;
  ota::Status DoProgram(uint32_t addr, ota::ConstByteSpan data) override;
  ota::Status DoErase(uint32_t addr, uint32_t len) override;

  ota::Status WriteEnable();
  // Polls status register 1 until BUSY clears: kIoError after `timeout_ms`.
  ota::Status WaitReady(uint32_t timeout_ms);

  uint32_t jedec_id_ = 0;
  bool ready_ = false;  // the last Init found the W25Q128
};

}  // namespace fire
