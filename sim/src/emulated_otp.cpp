#include "sim/emulated_otp.hpp"

namespace ota::sim {

EmulatedOtp::EmulatedOtp(PowerSupply* power)
    : Flash(kStm32f4OtpGeometry), cells_(kStm32f4OtpGeometry, kStm32f4InternalTiming, power) {}

Status EmulatedOtp::DoRead(uint32_t addr, ByteSpan out) {
  return cells_.Read(addr, out);
}

Status EmulatedOtp::DoProgram(uint32_t addr, ConstByteSpan data) {
  for (uint32_t a = addr; a < addr + data.size() && a < kOtpLockOffset; ++a) {
    if (cells_.raw()[kOtpLockOffset + a / kOtpBlockSize] == 0x00) {
      return StatusCode::kFailedPrecondition;  // the block is locked: nothing is written
    }
  }
  return cells_.Program(addr, data);
}

Status EmulatedOtp::DoErase(uint32_t, uint32_t) {
  return StatusCode::kUnsupported;  // one-time programmable
}

}  // namespace ota::sim
