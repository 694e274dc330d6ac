// Signed packages for tests: a P-256 key made for the test run, real signatures, and the real
// firmware pairs of ../shared/firmware-pairs turned into app images.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ota/host/keys.hpp"
#include "ota/host/package_builder.hpp"
#include "ota/package_installer.hpp"
#include "ota/signature.hpp"

namespace ota::testing {

class TestKey {
 public:
  explicit TestKey(uint32_t permissions = 0);
  const TrustedKey& trusted() const { return trusted_; }
  EVP_PKEY* pkey() const { return key_.get(); }

 private:
  host::Pkey key_;
  TrustedKey trusted_{};
};

// A package for `spec`, signed by `key` (unsigned when key is nullptr). Aborts on error: the
// specs in tests are meant to be valid.
std::vector<uint8_t> MakePackage(const host::PackageSpec& spec, const TestKey* key);

// Re-signs bytes that were changed after signing (to test what the signature cannot catch).
std::vector<uint8_t> Resign(std::vector<uint8_t> package, const TestKey& key);
// The same with any P-256 key (e.g. the development key a firmware build trusts).
std::vector<uint8_t> Resign(std::vector<uint8_t> package, EVP_PKEY* key);

// A real firmware file as an app image: its first 0x200 bytes, 64 reserved header bytes, the
// rest, stamped with `version` for `load_address`; words 0 and 1 (initial SP, reset vector)
// are replaced by ones the loader accepts. nullopt if the file is not there.
std::optional<std::vector<uint8_t>> RealFirmwareImage(const std::string& file_name,
                                                      const std::string& version,
                                                      uint32_t load_address);

}  // namespace ota::testing
