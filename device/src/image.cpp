#include "ota/image.hpp"

#include <cstring>

#include "ota/bytes.hpp"

namespace ota {

bool IsValidVersion(const char* version) {
  size_t n = 0;
  for (; n < kVersionMax && version[n] != '\0'; ++n) {
    const char c = version[n];
    if (c <= ' ' || c > '~') return false;
  }
  return n > 0 && n < kVersionMax;
}

void EncodeImageHeader(const ImageHeader& h, uint8_t (&out)[kImageHeaderSize]) {
  std::memset(out, 0, sizeof(out));
  StoreLe32(out + 0, kImageMagic);
  StoreLe16(out + 4, kImageHeaderVersion);
  StoreLe16(out + 6, static_cast<uint16_t>(kImageHeaderSize));
  StoreLe32(out + 8, h.image_size);
  StoreLe32(out + 12, h.load_address);
  StoreLe32(out + 16, h.flags);
  std::memcpy(out + 20, h.version, kVersionMax);
}

Result<ImageHeader> DecodeImageHeader(const uint8_t (&in)[kImageHeaderSize]) {
  if (LoadLe32(in + 0) != kImageMagic) return StatusCode::kNotFound;
  if (LoadLe16(in + 4) != kImageHeaderVersion) return StatusCode::kUnsupported;
  if (LoadLe16(in + 6) != kImageHeaderSize) return StatusCode::kCorrupt;
  ImageHeader h;
  h.image_size = LoadLe32(in + 8);
  h.load_address = LoadLe32(in + 12);
  h.flags = LoadLe32(in + 16);
  std::memcpy(h.version, in + 20, kVersionMax);
  if (h.flags != 0) return StatusCode::kUnsupported;
  for (uint32_t i = 52; i < kImageHeaderSize; ++i) {
    if (in[i] != 0) return StatusCode::kCorrupt;
  }
  if (!IsValidVersion(h.version)) return StatusCode::kCorrupt;
  // Every byte after the string's NUL must be NUL too: one encoding per version.
  for (size_t i = std::strlen(h.version); i < kVersionMax; ++i) {
    if (h.version[i] != '\0') return StatusCode::kCorrupt;
  }
  if (h.image_size < kImageHeaderOffset + kImageHeaderSize) return StatusCode::kCorrupt;
  return h;
}

const char* VectorTableFaultName(VectorTableFault fault) {
  switch (fault) {
    case VectorTableFault::kNone:
      return "none";
    case VectorTableFault::kStackNotInRam:
      return "stack-not-in-ram";
    case VectorTableFault::kStackMisaligned:
      return "stack-misaligned";
    case VectorTableFault::kResetNotThumb:
      return "reset-not-thumb";
    case VectorTableFault::kResetOutsideImage:
      return "reset-outside-image";
  }
  return "unknown";
}

VectorTableFault FindVectorTableFault(uint32_t initial_sp, uint32_t reset_vector,
                                      uint32_t load_address, uint32_t image_size) {
  bool in_ram = false;
  for (const RamRegion& r : kStackRegions) {
    if (initial_sp > r.start && initial_sp <= r.end) in_ram = true;
  }
  if (!in_ram) return VectorTableFault::kStackNotInRam;
  if (initial_sp % kStackAlignment != 0) return VectorTableFault::kStackMisaligned;
  if ((reset_vector & 1u) == 0) return VectorTableFault::kResetNotThumb;
  // Offsets from the load address, so that no sum can wrap past 0xFFFFFFFF.
  const uint32_t entry = reset_vector & ~1u;
  if (entry < load_address) return VectorTableFault::kResetOutsideImage;
  const uint32_t offset = entry - load_address;
  if (offset < kImageCodeOffset || offset >= image_size) {
    return VectorTableFault::kResetOutsideImage;
  }
  return VectorTableFault::kNone;
}

Status CheckVectorTable(uint32_t initial_sp, uint32_t reset_vector, uint32_t load_address,
                        uint32_t image_size) {
  if (FindVectorTableFault(initial_sp, reset_vector, load_address, image_size) !=
      VectorTableFault::kNone) {
    return StatusCode::kBadVectorTable;
  }
  return Status::Ok();
}

Result<ImageInfo> ValidateImage(const FlashArea& area, uint32_t load_address, ByteSpan work) {
  uint8_t raw[kImageHeaderSize];
  if (area.size() < kImageHeaderOffset + kImageHeaderSize) return StatusCode::kTooLarge;
  OTA_TRY(area.Read(kImageHeaderOffset, ByteSpan(raw)));
  ImageInfo info;
  OTA_TRY_ASSIGN(info.header, DecodeImageHeader(raw));
  const uint32_t size = info.header.image_size;
  if (size > area.size() || area.size() - size < kImageTrailerSize) return StatusCode::kTooLarge;
  if (info.header.load_address != load_address) return StatusCode::kFailedPrecondition;
  info.total_size = size + kImageTrailerSize;
  Sha256Digest stored;
  OTA_TRY(area.Read(size, ByteSpan(stored)));
  OTA_TRY(HashArea(area, 0, size, work, info.sha256));
  if (!DigestEqual(info.sha256, stored)) return StatusCode::kVerifyFailed;
  // Checked on the hashed bytes, so kBadVectorTable means "intact, but it cannot start".
  uint8_t vectors[8];
  OTA_TRY(area.Read(0, ByteSpan(vectors)));
  OTA_TRY(CheckVectorTable(LoadLe32(vectors), LoadLe32(vectors + 4), load_address, size));
  return info;
}

}  // namespace ota
