#include "ota/otp_counter.hpp"

namespace ota {

namespace {
int ZeroBits(uint8_t b) {
  int n = 0;
  for (int i = 0; i < 8; ++i)
    n += ((b >> i) & 1) == 0 ? 1 : 0;
  return n;
}

// The byte at counter offset `byte` when the value is `value`: bits [0, value) are 0,
// counted from bit 0 of byte 0.
uint8_t Target(uint32_t byte, uint32_t value) {
  const uint32_t first_bit = byte * 8;
  if (value >= first_bit + 8) return 0x00;
  if (value <= first_bit) return 0xFF;
  return static_cast<uint8_t>(0xFF << (value - first_bit));
}
}  // namespace

Result<uint32_t> OtpCounter::Read() {
  if (first_block_ + blocks_ > kOtpBlocks) return StatusCode::kOutOfRange;
  uint32_t zeros = 0;
  for (uint32_t b = 0; b < blocks_; ++b) {
    uint8_t block[kOtpBlockSize];
    OTA_TRY(otp_.Read((first_block_ + b) * kOtpBlockSize, ByteSpan(block)));
    for (uint8_t v : block)
      zeros += static_cast<uint32_t>(ZeroBits(v));
  }
  return zeros;
}

Status OtpCounter::Raise(uint32_t value) {
  if (value > max()) return StatusCode::kOutOfRange;
  if (first_block_ + blocks_ > kOtpBlocks) return StatusCode::kOutOfRange;
  // Already there (zero bits elsewhere count too: only code on the MCU puts them there).
  OTA_TRY_ASSIGN(const uint32_t before, Read());
  if (before >= value) return Status::Ok();
  for (uint32_t b = 0; b < blocks_; ++b) {
    const uint32_t block_start = (first_block_ + b) * kOtpBlockSize;
    if (value <= b * kOtpBlockSize * 8) break;  // this block and the rest stay as they are
    uint8_t block[kOtpBlockSize];
    OTA_TRY(otp_.Read(block_start, ByteSpan(block)));
    uint8_t lock = 0;
    OTA_TRY(otp_.Read(kOtpLockOffset + first_block_ + b, ByteSpan(&lock, 1)));
    for (uint32_t w = 0; w < kOtpBlockSize; w += 4) {
      uint8_t word[4];
      bool change = false;
      for (uint32_t i = 0; i < 4; ++i) {
        word[i] = block[w + i] & Target(b * kOtpBlockSize + w + i, value);
        change = change || word[i] != block[w + i];
      }
      if (!change) continue;
      // A locked block ignores programming on the part: say so instead of pretending.
      if (lock == 0x00) return StatusCode::kFailedPrecondition;
      OTA_TRY(otp_.Program(block_start + w, ConstByteSpan(word)));
    }
  }
  OTA_TRY_ASSIGN(const uint32_t now, Read());
  return now >= value ? Status::Ok() : Status(StatusCode::kIoError);
}

}  // namespace ota
