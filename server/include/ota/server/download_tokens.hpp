// Download tokens (iotda-protocol.md, "Download"): each names one device, one package and an
// expiry, and is signed with the server's key, so checking one needs no database lookup.
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <string>

namespace ota::server {

class DownloadTokens {
 public:
  // The key lives in `key_file` (made on first use, mode 0600).
  explicit DownloadTokens(const std::filesystem::path& key_file);

  std::string Issue(const std::string& device_id, int64_t package_id, std::time_t expires) const;

  enum class Check { kValid, kMalformed, kBadSignature, kExpired, kOtherPackage };
  // Whether `token` allows downloading `package_id` at `now`; `device_id` gets its device.
  Check Verify(const std::string& token, int64_t package_id, std::time_t now,
               std::string* device_id) const;

 private:
  std::string Mac(const std::string& body) const;
  std::array<uint8_t, 32> key_{};
};

}  // namespace ota::server
