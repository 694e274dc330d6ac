// Delta encoder (host): old image + new image -> patch in the format of
// ota/codec/delta_format.hpp, decoded on the device by ota::codec::DeltaDecoder. With an
// empty old image it compresses a full image.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ota::host {

struct DeltaStats {
  uint64_t blocks = 0;
  uint64_t diff_bytes = 0;     // bytes coded as old + difference
  uint64_t nonzero_diffs = 0;  // of which the difference is not zero
  uint64_t extra_bytes = 0;    // bytes coded as literals
  // Where the patch's bits go (ideal code lengths, in bytes).
  double control_cost = 0;     // seeks and run lengths
  double diff_flag_cost = 0;   // zero / non-zero flags of diff bytes
  double diff_value_cost = 0;  // the non-zero differences
  double literal_cost = 0;     // extra bytes
  double map_cost = 0;         // the displacement map
  uint8_t flags = 0;           // header flags: what the diff runs predict
  uint64_t predicted_units = 0;
};

std::vector<uint8_t> EncodeDelta(std::span<const uint8_t> old_image,
                                 std::span<const uint8_t> new_image, DeltaStats* stats = nullptr);

}  // namespace ota::host
