// The anti-rollback counter in the MCU's OTP area (docs/spec/trust-record.md, "OTP counter"):
// a unary counter whose value is the number of programmed (0) bits in its blocks. Bits only
// go 1 -> 0 and nothing erases them, so no code, the app's included, can lower it, and
// erasing the external flash does not touch it. A torn write clears some of the bits it was
// to clear: the value lands between the old and the new one, and raising again finishes it.
#pragma once

#include <cstdint>

#include "ota/flash.hpp"
#include "ota/profile.hpp"
#include "ota/status.hpp"

namespace ota {

class OtpCounter {
 public:
  // `otp` presents the OTP area from its first block (kOtpSize bytes, lock bytes at 512).
  OtpCounter(Flash& otp, uint32_t first_block, uint32_t blocks)
      : otp_(otp), first_block_(first_block), blocks_(blocks) {}
  OtpCounter(Flash& otp, const BoardProfile& profile)
      : OtpCounter(otp, profile.otp_counter_first_block, profile.otp_counter_blocks) {}

  // The highest value the blocks can count to (2048 for eight blocks).
  uint32_t max() const { return blocks_ * kOtpBlockSize * 8; }
  Result<uint32_t> Read();
  // Makes the value at least `value`: kOutOfRange past max(), kFailedPrecondition if a block
  // that needs bits is locked. Never lowers it (nothing can).
  Status Raise(uint32_t value);

 private:
  Flash& otp_;
  uint32_t first_block_;
  uint32_t blocks_;
};

}  // namespace ota
