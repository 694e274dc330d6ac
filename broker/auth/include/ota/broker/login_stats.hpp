// Login statistics (docs/spec/broker-auth.md, "Login statistics"): the Mosquitto plugin counts
// its device login verdicts by reason and publishes the cumulative counts to the platform on
// `$ota/stats/logins`, at most every few seconds and only when they changed; the platform
// exposes them as `ota_device_logins_total`. Pure bookkeeping: no I/O, no clock (the caller
// passes the time), so it can be tested without a broker.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ota/broker/device_auth.hpp"

namespace ota::broker {

// Broker to platform, QoS 1, retained. Only the platform identity may subscribe (a device is
// confined to `$oc/devices/{its id}/`).
inline constexpr std::string_view kLoginStatsTopic = "$ota/stats/logins";

// The number of ConnectVerdict values, and the snake_case reason each is counted under
// (`accepted`, `malformed_client_id`, `unknown_device`, `disabled`, `bad_password`,
// `stale_timestamp`), in the enum's order: the label values of the platform's metrics.
inline constexpr size_t kConnectVerdictCount = 6;
const char* ConnectVerdictReason(ConnectVerdict verdict);
using LoginCounts = std::array<uint64_t, kConnectVerdictCount>;  // by ConnectVerdict

// A broker instance ID: 32 random lowercase hex digits, new at every broker start.
std::string NewBrokerInstanceId();

// The payload: `{"broker":"<id>","started_at":<unix s>,"logins":{"accepted":n,...}}` with every
// reason present. `broker` is an instance ID (hex), so it needs no JSON escaping.
std::string LoginStatsPayload(std::string_view broker, int64_t started_at,
                              const LoginCounts& counts);

class LoginStats {
 public:
  LoginStats(std::string instance_id, int64_t started_at)
      : instance_id_(std::move(instance_id)), started_at_(started_at) {}

  void Count(ConnectVerdict verdict);
  // The payload to publish at `now_s`, or nullopt: nothing counted since the last publish, or
  // the last one less than `interval_s` ago. Call Published() once the broker took it.
  std::optional<std::string> Due(int64_t now_s, int interval_s) const;
  void Published(int64_t now_s);

  const LoginCounts& counts() const { return counts_; }
  const std::string& instance_id() const { return instance_id_; }

 private:
  std::string instance_id_;
  int64_t started_at_;
  LoginCounts counts_{};
  uint64_t counted_ = 0;    // logins counted so far
  uint64_t published_ = 0;  // `counted_` at the last publish
  std::optional<int64_t> last_publish_s_;
};

}  // namespace ota::broker
