// Device secrets at rest: AES-256-GCM under a key from the server's configuration. The
// platform seals, the broker plugin opens; neither ever logs a secret.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ota::broker {

class SecretBox {
 public:
  static constexpr size_t kKeySize = 32;

  // The key file holds 64 hex digits (one line). nullopt with `error` set otherwise.
  static std::optional<SecretBox> FromKeyFile(const std::filesystem::path& path,
                                              std::string* error);
  // Writes a new random key file (mode 0600); refuses to overwrite one.
  static bool CreateKeyFile(const std::filesystem::path& path, std::string* error);
  explicit SecretBox(const std::array<uint8_t, kKeySize>& key) : key_(key) {}

  // 1 byte version (1) || 12-byte nonce || ciphertext || 16-byte tag.
  std::vector<uint8_t> Seal(std::string_view plain) const;
  // nullopt if the bytes were not sealed under this key or were changed.
  std::optional<std::string> Open(const std::vector<uint8_t>& sealed) const;

 private:
  std::array<uint8_t, kKeySize> key_;
};

}  // namespace ota::broker
