#include "test_packages.hpp"

#include <openssl/ec.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ota/bytes.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/image.hpp"

namespace ota::testing {

TestKey::TestKey(uint32_t permissions) : key_(EVP_EC_gen("P-256")) {
  if (!key_) std::abort();
  const host::PublicPoint point = host::PublicPointOf(key_.get());
  std::copy(point.begin(), point.end(), trusted_.point);
  trusted_.permissions = permissions;
}

std::vector<uint8_t> MakePackage(const host::PackageSpec& spec, const TestKey* key) {
  host::PackResult packed = host::BuildPackage(spec);
  if (!packed.error.empty()) {
    std::fprintf(stderr, "MakePackage: %s\n", packed.error.c_str());
    std::abort();
  }
  if (key == nullptr) return packed.package;
  host::SignResult signed_package = host::SignPackage(packed.package, key->pkey());
  if (!signed_package.error.empty()) std::abort();
  return signed_package.package;
}

std::vector<uint8_t> Resign(std::vector<uint8_t> package, const TestKey& key) {
  return Resign(std::move(package), key.pkey());
}

std::vector<uint8_t> Resign(std::vector<uint8_t> package, EVP_PKEY* key) {
  // Signed as bytes, without parsing: tests forge packages the real tool would not sign.
  if (package.size() < kSignatureBlockSize) std::abort();
  package.erase(package.end() - kSignatureBlockSize, package.end());
  Sha256 sha;
  Sha256Digest digest;
  if (!sha.Update(ConstByteSpan(package.data(), package.size())).ok() || !sha.Finish(digest).ok()) {
    std::abort();
  }
  const std::vector<uint8_t> der = host::SignDigest(key, digest);
  if (der.empty() || der.size() > kSignatureDerMax) std::abort();
  const host::KeyId id = host::KeyIdOf(host::PublicPointOf(key));
  uint8_t block[kSignatureBlockSize] = {};
  StoreLe32(block, kSignatureMagic);
  block[4] = kSignatureEcdsaP256Sha256;
  StoreLe16(block + 6, static_cast<uint16_t>(der.size()));
  std::copy(id.begin(), id.end(), block + 8);
  std::copy(der.begin(), der.end(), block + 8 + kKeyIdSize);
  package.insert(package.end(), block, block + sizeof(block));
  return package;
}

std::optional<std::vector<uint8_t>> RealFirmwareImage(const std::string& file_name,
                                                      const std::string& version,
                                                      uint32_t load_address) {
  const std::filesystem::path path =
      std::filesystem::path(OTA_SOURCE_DIR) / "../shared/firmware-pairs" / file_name;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  const std::vector<uint8_t> raw((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
  std::vector<uint8_t> binary(raw.begin(), raw.begin() + kImageHeaderOffset);
  binary.insert(binary.end(), kImageHeaderSize, 0);
  binary.insert(binary.end(), raw.begin() + kImageHeaderOffset, raw.end());
  // None of the files is linked for this slot (ESP8266, a pyboard, a part with other RAM): a
  // vector table the loader would start replaces their first two words (docs/spec/image.md).
  StoreLe32(binary.data(), 0x20030000);                // initial SP: top of SRAM1-3
  StoreLe32(binary.data() + 4, load_address | 0x401);  // reset handler in the image, Thumb
  host::StampResult stamped = host::StampImage(std::move(binary), version, load_address);
  if (!stamped.error.empty()) return std::nullopt;
  return stamped.image;
}

}  // namespace ota::testing
