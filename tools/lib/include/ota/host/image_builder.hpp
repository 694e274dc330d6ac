// Turns a linked firmware binary into an app image (docs/spec/image.md): writes the header at
// kImageHeaderOffset and appends the SHA-256 trailer. Host side only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ota/status.hpp"

namespace ota::host {

struct StampResult {
  std::vector<uint8_t> image;
  std::string error;  // empty on success; one line saying what is wrong otherwise
};

// `binary` must be at least kImageHeaderOffset + kImageHeaderSize bytes, and the header's
// bytes in it must be all 0x00 or all 0xFF (space the linker script reserved).
StampResult StampImage(std::vector<uint8_t> binary, std::string_view version,
                       uint32_t load_address);

}  // namespace ota::host
