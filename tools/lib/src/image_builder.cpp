#include "ota/host/image_builder.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "ota/bytes.hpp"
#include "ota/image.hpp"
#include "ota/sha256.hpp"

namespace ota::host {

std::string VectorTableError(std::span<const uint8_t> image, uint32_t load_address,
                             uint32_t image_size) {
  if (image.size() < 8) return "vector table: the image is shorter than its first two words";
  const uint32_t sp = LoadLe32(image.data());
  const uint32_t reset = LoadLe32(image.data() + 4);
  char buf[200];
  switch (FindVectorTableFault(sp, reset, load_address, image_size)) {
    case VectorTableFault::kNone:
      return {};
    case VectorTableFault::kStackNotInRam: {
      std::string rule;
      for (const RamRegion& r : kStackRegions) {
        std::snprintf(buf, sizeof(buf), "%s0x%08X < SP <= 0x%08X (%s)", rule.empty() ? "" : ", ",
                      r.start, r.end, r.name);
        rule += buf;
      }
      std::snprintf(buf, sizeof(buf), "initial SP 0x%08X (word 0) is not in SRAM or CCM: ", sp);
      return "vector table: " + std::string(buf) + rule;
    }
    case VectorTableFault::kStackMisaligned:
      std::snprintf(buf, sizeof(buf), "initial SP 0x%08X (word 0) is not %u-byte aligned", sp,
                    kStackAlignment);
      break;
    case VectorTableFault::kResetNotThumb:
      std::snprintf(buf, sizeof(buf),
                    "reset vector 0x%08X (word 1) has bit 0 clear: not a Thumb code address",
                    reset);
      break;
    case VectorTableFault::kResetOutsideImage:
      std::snprintf(buf, sizeof(buf),
                    "reset vector 0x%08X (word 1) does not point into the image's code: "
                    "0x%08X <= (reset & ~1) < 0x%08X",
                    reset, load_address + kImageCodeOffset, load_address + image_size);
      break;
  }
  return "vector table: " + std::string(buf);
}

StampResult StampImage(std::vector<uint8_t> binary, std::string_view version,
                       uint32_t load_address) {
  StampResult result;
  if (binary.size() < kImageHeaderOffset + kImageHeaderSize) {
    result.error = "binary is " + std::to_string(binary.size()) +
                   " bytes, too small to hold the image header at offset 0x200";
    return result;
  }
  if (version.size() >= kVersionMax) {
    result.error = "version '" + std::string(version) + "' is longer than 31 characters";
    return result;
  }
  ImageHeader header;
  std::memcpy(header.version, version.data(), version.size());
  if (!IsValidVersion(header.version)) {
    result.error = "version '" + std::string(version) +
                   "' must be 1-31 printable ASCII characters without spaces";
    return result;
  }
  const auto reserved = binary.begin() + kImageHeaderOffset;
  const bool blank =
      std::all_of(reserved, reserved + kImageHeaderSize, [](uint8_t b) { return b == 0x00; }) ||
      std::all_of(reserved, reserved + kImageHeaderSize, [](uint8_t b) { return b == 0xFF; });
  if (!blank) {
    result.error = "bytes 0x200-0x23F of the binary are not reserved (all 0x00 or 0xFF)";
    return result;
  }
  const auto image_size = static_cast<uint32_t>(binary.size());
  if (std::string e = VectorTableError(binary, load_address, image_size); !e.empty()) {
    result.error = e;
    return result;
  }
  header.image_size = image_size;
  header.load_address = load_address;
  uint8_t raw[kImageHeaderSize];
  EncodeImageHeader(header, raw);
  std::copy(raw, raw + kImageHeaderSize, reserved);

  Sha256 sha;
  Sha256Digest digest;
  if (!sha.Update(ConstByteSpan(binary.data(), binary.size())).ok() || !sha.Finish(digest).ok()) {
    result.error = "SHA-256 failed";
    return result;
  }
  binary.insert(binary.end(), digest, digest + kSha256Size);
  result.image = std::move(binary);
  return result;
}

}  // namespace ota::host
