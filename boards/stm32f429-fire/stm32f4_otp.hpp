// The STM32F429's one-time-programmable area (RM0090 "One-time programmable bytes") as an
// ota::Flash, for the loader's anti-rollback counter (ota::OtpCounter): 16 data blocks of 32
// bytes at 0x1FFF7800, then 16 lock bytes at 0x1FFF7A00 (LOCKBi = 0x00 locks block i for
// good). Reads are memory mapped; programs go word by word through the flash interface like
// the main flash's (fire::ProgramWords). Nothing erases it.
#pragma once

#include <cstdint>

#include "ota/flash.hpp"

namespace fire {

class Stm32f4Otp final : public ota::Flash {
 public:
  // Geometry ota::kStm32f4OtpGeometry (ota::kOtpSize bytes); offset 0 is 0x1FFF7800.
  Stm32f4Otp();

 private:
  ota::Status DoRead(uint32_t addr, ota::ByteSpan out) override;
  // kFailedPrecondition, before anything is written, if a word lies in a block whose lock
  // byte is 0x00 (the part would ignore it); kInvalidArgument for a lock byte other than 0x00
  // or 0xFF (RM0090: "the lock bytes must only contain 0x00 and 0xFF values"); kNotErased for
  // a 0 -> 1 bit; then ProgramWords' errors.
  ota::Status DoProgram(uint32_t addr, ota::ConstByteSpan data) override;
  // kUnsupported: one-time programmable.
  ota::Status DoErase(uint32_t addr, uint32_t len) override;
};

}  // namespace fire
