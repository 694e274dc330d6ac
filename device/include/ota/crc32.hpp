// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320; the same value as zlib's crc32()).
// Used for the boot state record, where a table-free nibble-wise CRC costs 64 bytes of ROM.
#pragma once

#include <cstdint>

#include "ota/span.hpp"

namespace ota {

// Continues a CRC: start with crc = 0, feed the data in any number of pieces.
uint32_t Crc32(uint32_t crc, ConstByteSpan data);

}  // namespace ota
