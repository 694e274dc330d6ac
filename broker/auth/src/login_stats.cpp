#include "ota/broker/login_stats.hpp"

#include <openssl/rand.h>

#include <cstdio>
#include <stdexcept>

namespace ota::broker {

const char* ConnectVerdictReason(ConnectVerdict verdict) {
  switch (verdict) {
    case ConnectVerdict::kAccepted:
      return "accepted";
    case ConnectVerdict::kBadClientId:
      return "malformed_client_id";
    case ConnectVerdict::kUnknownDevice:
      return "unknown_device";
    case ConnectVerdict::kDisabled:
      return "disabled";
    case ConnectVerdict::kBadPassword:
      return "bad_password";
    case ConnectVerdict::kStaleTimestamp:
      return "stale_timestamp";
  }
  return "?";
}

std::string NewBrokerInstanceId() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof(raw)) != 1) throw std::runtime_error("no randomness (RAND_bytes)");
  std::string out;
  char hex[3];
  for (const unsigned char b : raw) {
    std::snprintf(hex, sizeof(hex), "%02x", b);
    out += hex;
  }
  return out;
}

std::string LoginStatsPayload(std::string_view broker, int64_t started_at,
                              const LoginCounts& counts) {
  std::string out = "{\"broker\":\"";
  out += broker;
  out += "\",\"started_at\":";
  out += std::to_string(started_at);
  out += ",\"logins\":{";
  for (size_t i = 0; i < counts.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    out += ConnectVerdictReason(static_cast<ConnectVerdict>(i));
    out += "\":";
    out += std::to_string(counts[i]);
  }
  out += "}}";
  return out;
}

void LoginStats::Count(ConnectVerdict verdict) {
  const auto i = static_cast<size_t>(verdict);
  if (i >= counts_.size()) return;
  ++counts_[i];
  ++counted_;
}

std::optional<std::string> LoginStats::Due(int64_t now_s, int interval_s) const {
  if (counted_ == published_) return std::nullopt;
  if (last_publish_s_ && now_s < *last_publish_s_ + interval_s) return std::nullopt;
  return LoginStatsPayload(instance_id_, started_at_, counts_);
}

void LoginStats::Published(int64_t now_s) {
  published_ = counted_;
  last_publish_s_ = now_s;
}

}  // namespace ota::broker
