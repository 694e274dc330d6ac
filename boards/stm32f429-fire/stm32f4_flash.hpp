// The STM32F429IG's internal flash (bank 1 of the 1 MB part, sectors 0-11) as an ota::Flash:
// register-level, from RM0090 section 3 ("Embedded Flash memory interface").
#pragma once

#include <cstdint>

#include "ota/flash.hpp"

namespace fire {

// Programs `data` (a multiple of 4 bytes) word by word at `cpu_address` (4-aligned) through
// the flash interface at x32 parallelism (RM0090 "Programming"; the OTP area is programmed
// the same way, "One-time programmable bytes"): kNotErased, before anything is written, if a
// word would need a 0 -> 1 bit; kWriteProtected for WRPERR, kIoError for the other error
// flags or a timeout. The caller checks the address range and any write protection.
ota::Status ProgramWords(uint32_t cpu_address, ota::ConstByteSpan data);

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
