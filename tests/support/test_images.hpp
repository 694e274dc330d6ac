// Synthetic app images for tests: a plausible vector table, a stamped header, random code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ota::testing {

// The address app images for the FIRE board's running slot are linked for.
uint32_t FireAppAddress();

// An image of exactly `total_size` bytes (trailer included) linked for `load_address`.
// The same seed gives the same bytes.
std::vector<uint8_t> MakeTestImage(const std::string& version, uint32_t total_size,
                                   uint32_t load_address, uint32_t seed);

// `image` with other vector words (initial SP, reset vector) and a trailer that matches
// again: intact, as stamped by a tool that did not check, but perhaps not startable.
std::vector<uint8_t> WithVectors(std::vector<uint8_t> image, uint32_t sp, uint32_t reset);

}  // namespace ota::testing
