// Download tokens (iotda-protocol.md, "Download"): each names one device and its generation
// (Registry::Generation), one package, an expiry and the upgrade task that issued it (0: issued
// through the API), and is signed with the server's key. The signature check needs no
// database; whether the device still has that generation and the task still wants it to
// download (revocation) is the download route's lookup.
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

  std::string Issue(const std::string& device_id, int64_t package_id, std::time_t expires,
                    int64_t task_id = 0, int64_t generation = 0) const;

  enum class Check { kValid, kMalformed, kBadSignature, kExpired, kOtherPackage };
  // Whether `token` allows downloading `package_id` at `now`; `device_id`, `task_id` and
  // `generation` (if given) get what it names (a token made before generations names 0).
  Check Verify(const std::string& token, int64_t package_id, std::time_t now,
               std::string* device_id, int64_t* task_id, int64_t* generation = nullptr) const;

 private:
  std::string Mac(const std::string& body) const;
  std::array<uint8_t, 32> key_{};
};

}  // namespace ota::server
