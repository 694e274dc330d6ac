// The app image format (docs/spec/image.md): a header at a fixed offset after the vector
// table and a SHA-256 trailer. The loader boots an image only after checking both, so a
// half-written or corrupted slot is never started.
#pragma once

#include <cstdint>

#include "ota/flash_area.hpp"
#include "ota/sha256.hpp"
#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota {

inline constexpr uint32_t kImageMagic = 0x4941544F;  // bytes "OTAI"
inline constexpr uint16_t kImageHeaderVersion = 1;
// The STM32F429 vector table is 107 words (0x1AC bytes); the header follows at 0x200,
// which keeps the table's VTOR alignment and leaves room for other Cortex-M4 parts.
inline constexpr uint32_t kImageHeaderOffset = 0x200;
inline constexpr uint32_t kImageHeaderSize = 64;
inline constexpr uint32_t kVersionMax = 32;  // bytes, including the terminating NUL
inline constexpr uint32_t kImageTrailerSize = kSha256Size;

// Header fields (little-endian, at kImageHeaderOffset):
//   0 u32 magic, 4 u16 header_version, 6 u16 header_size, 8 u32 image_size,
//   12 u32 load_address, 16 u32 flags (must be 0), 20 char version[32], 52 u8 reserved[12] (0)
struct ImageHeader {
  uint32_t image_size = 0;    // bytes covered by the trailer's hash; the trailer follows
  uint32_t load_address = 0;  // CPU address the image is linked for (its slot's start)
  uint32_t flags = 0;
  char version[kVersionMax] = {};
};

struct ImageInfo {
  ImageHeader header;
  uint32_t total_size = 0;  // image_size + trailer
  Sha256Digest sha256 = {};
};

void EncodeImageHeader(const ImageHeader& header, uint8_t (&out)[kImageHeaderSize]);
// Checks magic, version, sizes, reserved bytes and the version string's termination.
Result<ImageHeader> DecodeImageHeader(const uint8_t (&in)[kImageHeaderSize]);

// Reads and fully checks the image at the start of `area`: header, that the image fits the
// area, that it is linked for `load_address`, and that the SHA-256 trailer matches.
Result<ImageInfo> ValidateImage(const FlashArea& area, uint32_t load_address, ByteSpan work);

// Validates a version string: 1..31 printable ASCII characters, no spaces.
bool IsValidVersion(const char* version);

}  // namespace ota
