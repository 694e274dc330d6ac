#include "ota/crc32.hpp"

namespace ota {

namespace {
// Reflected CRC-32 of each 4-bit value: 16 entries instead of the usual 256.
constexpr uint32_t kNibbleTable[16] = {
    0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
    0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
};
}  // namespace

uint32_t Crc32(uint32_t crc, ConstByteSpan data) {
  crc = ~crc;
  for (uint8_t byte : data) {
    crc = (crc >> 4) ^ kNibbleTable[(crc ^ byte) & 0x0F];
    crc = (crc >> 4) ^ kNibbleTable[(crc ^ (byte >> 4)) & 0x0F];
  }
  return ~crc;
}

}  // namespace ota
