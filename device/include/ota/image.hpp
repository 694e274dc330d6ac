// The app image format (docs/spec/image.md): a header at a fixed offset after the vector
// table and a SHA-256 trailer. The loader boots an image only after checking both and the
// vector table's first two words, so a half-written, corrupted or foreign slot is never
// started.
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

// ---- Vector table plausibility (docs/spec/image.md, "Vector table") ----
// The loader jumps through words 0 and 1 of the image: the initial SP and the reset vector.
// An image whose table cannot start it (a binary linked for another part or address, an
// unfilled table) is refused like a corrupted one, before the jump and before any backup.

// A RAM region the initial stack pointer may lie in. A full-descending stack decrements SP
// before its first store, so SP may equal `end` (one past the region's last byte) but not
// `start`: valid is start < SP <= end.
struct RamRegion {
  uint32_t start;
  uint32_t end;  // one past the last byte
  const char* name;
};
// The STM32F429's RAM (RM0090 section 2.3.1), the same on every board of this project:
// SRAM1-3 (112 + 16 + 64 KB, contiguous) and the 64 KB CCM data RAM.
inline constexpr RamRegion kStackRegions[] = {
    {0x20000000, 0x20030000, "SRAM"},
    {0x10000000, 0x10010000, "CCM"},
};
// AAPCS: the stack is 8-byte aligned at every public interface, the reset handler's included.
inline constexpr uint32_t kStackAlignment = 8;
// The reset handler is code, which starts after the vector table and the image header.
inline constexpr uint32_t kImageCodeOffset = kImageHeaderOffset + kImageHeaderSize;

// What is wrong with a vector table: the first rule (in this order) it breaks.
enum class VectorTableFault : uint8_t {
  kNone = 0,
  kStackNotInRam,      // word 0 is not in (start, end] of any kStackRegions entry
  kStackMisaligned,    // word 0 is not a multiple of kStackAlignment
  kResetNotThumb,      // word 1 has bit 0 clear (a Cortex-M executes Thumb code only)
  kResetOutsideImage,  // word 1 & ~1 is not in [load + kImageCodeOffset, load + image_size)
};

const char* VectorTableFaultName(VectorTableFault fault);

// Checks the initial SP (word 0) and reset vector (word 1) of an image linked for
// `load_address` whose header says `image_size` (the hashed bytes, trailer excluded).
VectorTableFault FindVectorTableFault(uint32_t initial_sp, uint32_t reset_vector,
                                      uint32_t load_address, uint32_t image_size);
// The same check as a Status: Ok, or StatusCode::kBadVectorTable.
Status CheckVectorTable(uint32_t initial_sp, uint32_t reset_vector, uint32_t load_address,
                        uint32_t image_size);

// Reads and fully checks the image at the start of `area`: header, that the image fits the
// area, that it is linked for `load_address`, that the SHA-256 trailer matches, and that its
// vector table can start it (CheckVectorTable). Errors, in this order: kNotFound,
// kUnsupported or kCorrupt (header), kTooLarge, kFailedPrecondition (load address),
// kVerifyFailed (hash), kBadVectorTable; flash errors as the flash reports them.
Result<ImageInfo> ValidateImage(const FlashArea& area, uint32_t load_address, ByteSpan work);

// Validates a version string: 1..31 printable ASCII characters, no spaces.
bool IsValidVersion(const char* version);

}  // namespace ota
