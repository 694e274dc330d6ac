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
  // another or no chip answers. Needs ClockInit (SPI5 runs at APB2 / 4 = 22.5 MHz).
  ota::Status Init();
  uint32_t jedec_id() const { return jedec_id_; }

 private:
  ota::Status DoRead(uint32_t addr, ota::ByteSpan out) override;
  ota::Status DoProgram(uint32_t addr, ota::ConstByteSpan data) override;
  ota::Status DoErase(uint32_t addr, uint32_t len) override;

  ota::Status WriteEnable();
  // Polls status register 1 until BUSY clears: kIoError after `timeout_ms`.
  ota::Status WaitReady(uint32_t timeout_ms);
  // The largest erase command (64 KB, 32 KB block or 4 KB sector) aligned at `addr` that
  // fits in `remaining` bytes: the emulator's rule.
  uint32_t EraseOpSize(uint32_t addr, uint32_t remaining) const;

  uint32_t jedec_id_ = 0;
};

}  // namespace fire
