#include "test_images.hpp"

#include <cstdio>
#include <cstdlib>
#include <random>

#include "ota/bytes.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/image.hpp"
#include "ota/profile.hpp"
#include "ota/sha256.hpp"

namespace ota::testing {

uint32_t FireAppAddress() {
  return kStm32f429Fire.internal_base + kStm32f429Fire.partition(PartitionId::kRunning).offset;
}

std::vector<uint8_t> MakeTestImage(const std::string& version, uint32_t total_size,
                                   uint32_t load_address, uint32_t seed) {
  std::vector<uint8_t> binary(total_size - kImageTrailerSize);
  std::mt19937 rng(seed);
  for (uint8_t& b : binary)
    b = static_cast<uint8_t>(rng());
  StoreLe32(binary.data(), 0x20030000);                // initial SP: top of SRAM1-3
  StoreLe32(binary.data() + 4, load_address | 0x401);  // reset handler, Thumb bit set
  std::fill(binary.begin() + kImageHeaderOffset,
            binary.begin() + kImageHeaderOffset + kImageHeaderSize, 0);
  host::StampResult stamped = host::StampImage(std::move(binary), version, load_address);
  if (!stamped.error.empty()) {  // a bug in the test itself
    std::fprintf(stderr, "MakeTestImage: %s\n", stamped.error.c_str());
    std::abort();
  }
  return stamped.image;
}

std::vector<uint8_t> WithVectors(std::vector<uint8_t> image, uint32_t sp, uint32_t reset) {
  StoreLe32(image.data(), sp);
  StoreLe32(image.data() + 4, reset);
  const size_t size = image.size() - kImageTrailerSize;
  Sha256 sha;
  Sha256Digest digest;
  if (!sha.Update(ConstByteSpan(image.data(), size)).ok() || !sha.Finish(digest).ok()) {
    std::fprintf(stderr, "WithVectors: SHA-256 failed\n");
    std::abort();
  }
  std::copy(digest, digest + kSha256Size, image.begin() + static_cast<ptrdiff_t>(size));
  return image;
}

}  // namespace ota::testing
