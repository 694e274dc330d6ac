// Synthetic app images for tests: a plausible vector table, a stamped header, random code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ota::testing {

// An image of exactly `total_size` bytes (trailer included) linked for `load_address`.
// The same seed gives the same bytes.
std::vector<uint8_t> MakeTestImage(const std::string& version, uint32_t total_size,
                                   uint32_t load_address, uint32_t seed);

}  // namespace ota::testing
