#include "ota/host/image_builder.hpp"

#include <algorithm>
#include <cstring>

#include "ota/image.hpp"
#include "ota/sha256.hpp"

namespace ota::host {

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
  header.image_size = static_cast<uint32_t>(binary.size());
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
