#include "ota/server/download_tokens.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>
#include <string>

#include "ota/broker/device_auth.hpp"
#include "ota/broker/secret_box.hpp"
#include "ota/server/hex.hpp"

namespace ota::server {

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

DownloadTokens::DownloadTokens(const std::filesystem::path& key_file) {
  std::string error;
  if (!std::filesystem::exists(key_file) && !broker::SecretBox::CreateKeyFile(key_file, &error)) {
    throw std::runtime_error(error);
  }
  // The same 64-hex-digit file format as the secret key; only the bytes are used here.
  std::FILE* f = std::fopen(key_file.c_str(), "r");
  if (f == nullptr) throw std::runtime_error(key_file.string() + ": cannot read");
  char hex[65] = {};
  const size_t n = std::fread(hex, 1, 64, f);
  std::fclose(f);
  for (size_t i = 0; i < 32; ++i) {
    const int hi = n == 64 ? HexValue(hex[2 * i]) : -1;
    const int lo = n == 64 ? HexValue(hex[2 * i + 1]) : -1;
    if (hi < 0 || lo < 0) throw std::runtime_error(key_file.string() + ": not a key");
    key_[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
}

std::string DownloadTokens::Mac(const std::string& body) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  return ToHex(std::span<const uint8_t>(mac, len));
}

std::string DownloadTokens::Issue(const std::string& device_id, int64_t package_id,
                                  std::time_t expires, int64_t task_id, int64_t generation) const {
  const std::string body = device_id + "." + std::to_string(package_id) + "." +
                           std::to_string(expires) + "." + std::to_string(task_id) + "." +
                           std::to_string(generation);
  return body + "." + Mac(body);
}

DownloadTokens::Check DownloadTokens::Verify(const std::string& token, int64_t package_id,
                                             std::time_t now, std::string* device_id,
                                             int64_t* task_id, int64_t* generation) const {
  const size_t mac_dot = token.rfind('.');
  if (mac_dot == std::string::npos || token.size() - mac_dot - 1 != 64) return Check::kMalformed;
  const std::string body = token.substr(0, mac_dot);
  if (!broker::SafeEqual(token.substr(mac_dot + 1), Mac(body))) return Check::kBadSignature;
  // Device IDs have no dots (broker::IsValidDeviceId), so the fields split unambiguously:
  // device.package.expires.task[.generation] (tokens made before generations have none).
  const size_t d1 = body.find('.');
  const size_t d2 = body.find('.', d1 == std::string::npos ? 0 : d1 + 1);
  const size_t d3 = body.find('.', d2 == std::string::npos ? 0 : d2 + 1);
  if (d1 == std::string::npos || d2 == std::string::npos || d3 == std::string::npos) {
    return Check::kMalformed;
  }
  const size_t d4 = body.find('.', d3 + 1);
  *device_id = body.substr(0, d1);
  const int64_t pkg = std::stoll(body.substr(d1 + 1, d2 - d1 - 1));
  const int64_t exp = std::stoll(body.substr(d2 + 1, d3 - d2 - 1));
  *task_id = std::stoll(body.substr(d3 + 1, d4 == std::string::npos ? d4 : d4 - d3 - 1));
  if (generation != nullptr) {
    *generation = d4 == std::string::npos ? 0 : std::stoll(body.substr(d4 + 1));
  }
  if (now >= exp) return Check::kExpired;
  if (pkg != package_id) return Check::kOtherPackage;
  return Check::kValid;
}

}  // namespace ota::server
