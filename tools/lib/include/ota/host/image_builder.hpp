// Turns a linked firmware binary into an app image (docs/spec/image.md): checks its vector
// table, writes the header at kImageHeaderOffset and appends the SHA-256 trailer. Host side only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ota/status.hpp"

namespace ota::host {

struct StampResult {
  std::vector<uint8_t> image;
  std::string error;  // empty on success; one line saying what is wrong otherwise
};

// `binary` must be at least kImageHeaderOffset + kImageHeaderSize bytes, the header's bytes in
// it must be all 0x00 or all 0xFF (space the linker script reserved), and its vector table
// must pass ota::CheckVectorTable for `load_address` (an image the loader could not start is
// refused here, not on the board).
StampResult StampImage(std::vector<uint8_t> binary, std::string_view version,
                       uint32_t load_address);

// Empty if the first two words of `image` (at least 8 bytes) pass ota::CheckVectorTable for
// `load_address` and `image_size` (the header's: hashed bytes, trailer excluded); otherwise
// one line naming the word, its value and the rule, e.g. "vector table: initial SP 0x00000000
// (word 0) is not in SRAM or CCM (...)".
std::string VectorTableError(std::span<const uint8_t> image, uint32_t load_address,
                             uint32_t image_size);

}  // namespace ota::host
