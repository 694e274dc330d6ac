// Lowercase hex of bytes: digests, key ids, tokens.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace ota::host {

inline std::string ToHex(std::span<const uint8_t> bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

}  // namespace ota::host
