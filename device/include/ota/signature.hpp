// ECDSA P-256 / SHA-256 verification through mbedTLS, and the loader's table of trusted keys.
#pragma once

#include <cstdint>

#include "ota/package.hpp"
#include "ota/sha256.hpp"
#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota {

inline constexpr uint32_t kPublicKeySize = 65;  // uncompressed point: 0x04 || X || Y

// What a key may sign beyond an ordinary upgrade (docs/spec/package.md, "Downgrades").
enum KeyPermission : uint32_t {
  kKeyMayDowngrade = 0x1,  // may sign packages that carry the allow-downgrade flag
};

// A public key built into the loader.
struct TrustedKey {
  uint8_t point[kPublicKeySize];
  uint32_t permissions;
};

// The key id a signature block names: SHA-256 of the 65-byte point.
Status ComputeKeyId(const uint8_t (&point)[kPublicKeySize], uint8_t (&id)[kKeyIdSize]);

// kOk if `der` is a valid signature of `digest` by `point`; kVerifyFailed if it is not (or the
// point is not on the curve); other codes only for resource failures.
Status VerifyEcdsaP256(const uint8_t (&point)[kPublicKeySize], const Sha256Digest digest,
                       ConstByteSpan der);

}  // namespace ota
