#include "sim/flash_timing.hpp"

#include <cstdio>

namespace ota::sim {

EraseTiming FlashTiming::EraseCost(uint32_t size) const {
  const EraseTiming* nearest = nullptr;
  uint64_t nearest_distance = 0;
  for (const EraseTiming& entry : erase) {
    if (entry.size == 0) continue;
    if (entry.size == size) return entry;
    const uint64_t distance = entry.size > size ? entry.size - size : size - entry.size;
    if (nearest == nullptr || distance < nearest_distance) {
      nearest = &entry;
      nearest_distance = distance;
    }
  }
  if (nearest == nullptr) return EraseTiming{size, 0, 0};
  return EraseTiming{size, nearest->typ_us * size / nearest->size,
                     nearest->max_us * size / nearest->size};
}

double FlashTiming::ReadCostUs(size_t bytes) const {
  const double transfer =
      read_bytes_per_us > 0 ? static_cast<double>(bytes) / read_bytes_per_us : 0.0;
  return read_call_overhead_us + transfer;
}

namespace {
// `value` with about three significant digits and no trailing zeros: "2.31", "12.5", "250".
std::string ThreeDigits(double value) {
  char text[32];
  const int decimals = value < 10 ? 2 : value < 100 ? 1 : 0;
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  std::string result = text;
  if (result.find('.') != std::string::npos) {
    while (result.back() == '0')
      result.pop_back();
    if (result.back() == '.') result.pop_back();
  }
  return result;
}
}  // namespace

std::string FormatMicros(uint64_t us) {
  const double value = static_cast<double>(us);
  if (us < 1'000) return std::to_string(us) + " us";
  if (us < 1'000'000) return ThreeDigits(value / 1e3) + " ms";
  if (us < 60'000'000) return ThreeDigits(value / 1e6) + " s";
  const uint64_t seconds = us / 1'000'000;
  return std::to_string(seconds / 60) + " min " + std::to_string(seconds % 60) + " s";
}

}  // namespace ota::sim
