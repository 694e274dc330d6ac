#include "test_images.hpp"

#include <cstdio>
#include <cstdlib>
#include <random>

#include "ota/bytes.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/image.hpp"

namespace ota::testing {

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

}  // namespace ota::testing
