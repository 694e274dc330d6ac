#include "ota/broker/device_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>

namespace ota::broker {

namespace {

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return !s.empty();
}

int Number(std::string_view s) {
  int v = 0;
  for (char c : s)
    v = v * 10 + (c - '0');
  return v;
}

// Seconds since the epoch of a UTC YYYYMMDDHH, or nullopt if YYYYMMDD is not a real date.
// HH may run past 23 (up to 99): Huawei's C SDK adds 1 to the whole stamp while the HMAC
// has a 0x00 byte, so 2025041823 becomes 2025041824, meaning the next day's 00h.
std::optional<std::time_t> HourToTime(std::string_view ts) {
  if (ts.size() != 10 || !AllDigits(ts)) return std::nullopt;
  std::tm tm{};
  tm.tm_year = Number(ts.substr(0, 4)) - 1900;
  tm.tm_mon = Number(ts.substr(4, 2)) - 1;
  tm.tm_mday = Number(ts.substr(6, 2));
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31) return std::nullopt;
  const int mday = tm.tm_mday;
  const int mon = tm.tm_mon;
  const std::time_t day = timegm(&tm);  // normalises tm: 31 Feb becomes 3 Mar
  if (tm.tm_mday != mday || tm.tm_mon != mon) return std::nullopt;
  return day + static_cast<std::time_t>(Number(ts.substr(8, 2))) * 3600;
}

}  // namespace

bool IsValidDeviceId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<ClientId> ParseClientId(std::string_view s) {
  // The device ID may itself contain '_' ({product}_{node}): parse from the end.
  if (s.size() < 16) return std::nullopt;
  const std::string_view ts = s.substr(s.size() - 10);
  if (s[s.size() - 11] != '_') return std::nullopt;
  const char sig = s[s.size() - 12];
  if (s[s.size() - 13] != '_' || s[s.size() - 14] != '0' || s[s.size() - 15] != '_') {
    return std::nullopt;
  }
  const std::string_view device = s.substr(0, s.size() - 15);
  if ((sig < '0' || sig > '2') || !IsValidDeviceId(device) || !HourToTime(ts)) {
    return std::nullopt;
  }
  return ClientId{std::string(device), sig - '0', std::string(ts)};
}

std::string IotdaPassword(std::string_view secret, std::string_view timestamp, int sig_type) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const EVP_MD* const md = sig_type == 2 ? EVP_sm3() : EVP_sha256();
  if (md == nullptr) return {};
  if (HMAC(md, timestamp.data(), static_cast<int>(timestamp.size()),
           reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), mac,
           &len) == nullptr) {
    return {};
  }
  std::string hex;
  hex.reserve(len * 2);
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", mac[i]);
    hex += buf;
  }
  return hex;
}

bool SafeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool TimestampWithin(std::string_view timestamp, std::time_t now, int window_hours) {
  const std::optional<std::time_t> t = HourToTime(timestamp);
  if (!t) return false;
  // The stamp names an hour: the device's clock may be anywhere inside it.
  const std::time_t window = static_cast<std::time_t>(window_hours) * 3600;
  return now >= *t - window && now < *t + 3600 + window;
}

const char* ConnectVerdictName(ConnectVerdict v) {
  switch (v) {
    case ConnectVerdict::kAccepted:
      return "accepted";
    case ConnectVerdict::kBadClientId:
      return "malformed client id";
    case ConnectVerdict::kUnknownDevice:
      return "unknown device";
    case ConnectVerdict::kDisabled:
      return "device disabled";
    case ConnectVerdict::kBadPassword:
      return "bad username or password";
    case ConnectVerdict::kStaleTimestamp:
      return "timestamp outside the window";
  }
  return "?";
}

bool DeviceTopicAllowed(std::string_view device_id, std::string_view topic, TopicAccess access) {
  if (!IsValidDeviceId(device_id)) return false;
  const std::string prefix = "$oc/devices/" + std::string(device_id) + "/";
  if (topic.size() <= prefix.size() || topic.substr(0, prefix.size()) != prefix) return false;
  const std::string_view rest = topic.substr(prefix.size());
  for (char c : rest) {
    if (c == '\0') return false;
    // Publishing names one topic; wildcards are only for filters, and only below the device.
    if ((c == '+' || c == '#') && access == TopicAccess::kPublish) return false;
  }
  return true;
}

}  // namespace ota::broker
