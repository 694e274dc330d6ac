#include "stm32f4_otp.hpp"

#include <cstring>

#include "ota/profile.hpp"
#include "stm32f4_flash.hpp"

namespace fire {
namespace {

constexpr uint32_t kOtpBase = 0x1FFF7800;  // RM0090 table "OTP area organization"

const volatile uint8_t* Byte(uint32_t addr) {
  return reinterpret_cast<const volatile uint8_t*>(kOtpBase + addr);
}

}  // namespace

Stm32f4Otp::Stm32f4Otp() : ota::Flash(ota::kStm32f4OtpGeometry) {}

ota::Status Stm32f4Otp::DoRead(uint32_t addr, ota::ByteSpan out) {
  std::memcpy(out.data(), reinterpret_cast<const void*>(kOtpBase + addr), out.size());
  return ota::Status::Ok();
}

ota::Status Stm32f4Otp::DoProgram(uint32_t addr, ota::ConstByteSpan data) {
  // The base class checked the range (kOtpSize) and the word alignment.
  for (size_t i = 0; i < data.size(); ++i) {
    const uint32_t a = addr + static_cast<uint32_t>(i);
    if (a >= ota::kOtpLockOffset) {
      if (data[i] != 0x00 && data[i] != 0xFF) return ota::StatusCode::kInvalidArgument;
    } else if (*Byte(ota::kOtpLockOffset + a / ota::kOtpBlockSize) == 0x00) {
      return ota::StatusCode::kFailedPrecondition;  // locked: the part ignores the program
    }
  }
  return ProgramWords(kOtpBase + addr, data);
}

ota::Status Stm32f4Otp::DoErase(uint32_t /*addr*/, uint32_t /*len*/) {
  return ota::StatusCode::kUnsupported;
}

}  // namespace fire
