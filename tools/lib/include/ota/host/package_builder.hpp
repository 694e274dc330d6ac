// Makes and signs update packages (docs/spec/package.md) on the host. Every check a user can
// fail is made here, before any output exists, and reported as one line.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ota/host/delta_encoder.hpp"
#include "ota/package.hpp"
#include "ota/profile.hpp"

namespace ota::host {

struct PackageSpec {
  PackageKind kind = PackageKind::kFull;
  std::string version;          // the target's version; must be the one in its image header
  std::vector<uint8_t> image;   // the target app image (docs/spec/image.md)
  std::string from_version;     // diff: the source's version
  std::vector<uint8_t> source;  // diff: the exact source image
  CodecId codec = CodecId::kDelta;
  uint32_t security_counter = 0;
  bool allow_downgrade = false;
  std::string description;
  const BoardProfile* profile = &kStm32f429Fire;  // slot size and link address
};

struct PackResult {
  std::vector<uint8_t> package;
  std::string error;
  DeltaStats stats;
};

// An unsigned package. Checks versions, images (header, trailer, link address, slot size),
// that a diff's two images differ, and that the payload decodes to the target.
PackResult BuildPackage(const PackageSpec& spec);

struct SignResult {
  std::vector<uint8_t> package;
  std::string error;
};

// Appends the signature block. Refuses a package that is malformed or already signed.
SignResult SignPackage(std::span<const uint8_t> unsigned_package, EVP_PKEY* key);

// One-line reason why `image` is not an app image for `profile`'s running slot; empty if it is.
// The checks are ota::ValidateImage's, in its order: header, size, load address, SHA-256
// trailer, vector table (VectorTableError).
std::string CheckAppImage(std::span<const uint8_t> image, const BoardProfile& profile,
                          std::string* version);

}  // namespace ota::host
