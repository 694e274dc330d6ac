// SHA-256 through mbedTLS (the seed's crypto library), on host and board alike.
#pragma once

#include <cstdint>

#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota {

inline constexpr size_t kSha256Size = 32;
using Sha256Digest = uint8_t[kSha256Size];

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Status Update(ConstByteSpan data);
  Status Finish(Sha256Digest out);

 private:
  // Storage for mbedtls_sha256_context without exposing mbedTLS headers to every user.
  alignas(8) uint8_t context_[128];
  bool failed_ = false;
};

// Constant-time comparison of two digests (no early exit on the first differing byte).
bool DigestEqual(const Sha256Digest a, const Sha256Digest b);

}  // namespace ota
