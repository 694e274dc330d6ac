// The STM32F429IG's internal flash (bank 1 of the 1 MB part, sectors 0-11) as an ota::Flash:
// register-level, from RM0090 section 3 ("Embedded Flash memory interface").
#pragma once

#include <cstdint>

#include "ota/flash.hpp"

namespace fire {

class Stm32f4Flash final : public ota::Flash {
 public:
  // Geometry ota::kStm32f429Fire.internal; offset 0 is CPU address 0x08000000.
  Stm32f4Flash();

 private:
  ota::Status DoRead(uint32_t addr, ota::ByteSpan out) override;
  ota::Status DoProgram(uint32_t addr, ota::ConstByteSpan data) override;
  ota::Status DoErase(uint32_t addr, uint32_t len) override;
};

}  // namespace fire
