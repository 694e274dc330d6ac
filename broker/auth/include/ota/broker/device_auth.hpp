// Device authentication and topic confinement by the IoTDA rules (docs/spec/broker-auth.md):
// one implementation shared by the Mosquitto plugin and the platform's HTTP auth endpoints for
// other brokers. Pure functions: no I/O, no clock (the caller passes the time).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace ota::broker {

// `{device_id}_0_{sig}_{YYYYMMDDHH}`.
struct ClientId {
  std::string device_id;
  // 0: HMAC-SHA256, timestamp not checked; 1: HMAC-SHA256, 2: HMAC-SM3, both with the
  // timestamp near the platform's time.
  int sig_type = 0;
  std::string timestamp;  // YYYYMMDDHH, UTC hour of connecting (HH may pass 23: see .cpp)
};

std::optional<ClientId> ParseClientId(std::string_view client_id);

// Lowercase hex HMAC (SHA-256, or SM3 for sig type 2), key = timestamp, message = secret.
std::string IotdaPassword(std::string_view secret, std::string_view timestamp, int sig_type = 0);

// A device ID: 1..128 characters of [A-Za-z0-9_-], so it can never contain MQTT wildcards,
// a '/' or a NUL, and always ends the topic level it names.
bool IsValidDeviceId(std::string_view device_id);

enum class ConnectVerdict : uint8_t {
  kAccepted,
  kBadClientId,  // malformed client ID (IoTDA: CONNACK 2)
  kUnknownDevice,
  kDisabled,
  kBadPassword,     // username is not the device ID, or the HMAC does not match
  kStaleTimestamp,  // sig type 1 or 2 and the timestamp is outside the window
};
const char* ConnectVerdictName(ConnectVerdict verdict);

struct DeviceCredential {
  std::string secret;
  bool enabled = true;
};

// The whole connect decision for a device. `lookup` is called at most once, with the device ID.
template <typename Lookup>
ConnectVerdict CheckDeviceConnect(std::string_view client_id, std::string_view username,
                                  std::string_view password, std::time_t now, int window_hours,
                                  Lookup&& lookup);

// Whether `device_id` may use `topic` (a topic name, or a filter when subscribing): only
// `$oc/devices/{device_id}/...`, with no wildcard before that level's end.
enum class TopicAccess : uint8_t { kPublish, kSubscribe, kReceive };
bool DeviceTopicAllowed(std::string_view device_id, std::string_view topic, TopicAccess access);

// Constant-time string comparison (passwords, tokens).
bool SafeEqual(std::string_view a, std::string_view b);

// internals shared by the template
bool TimestampWithin(std::string_view timestamp, std::time_t now, int window_hours);

template <typename Lookup>
ConnectVerdict CheckDeviceConnect(std::string_view client_id, std::string_view username,
                                  std::string_view password, std::time_t now, int window_hours,
                                  Lookup&& lookup) {
  const std::optional<ClientId> id = ParseClientId(client_id);
  if (!id) return ConnectVerdict::kBadClientId;
  if (username != id->device_id) return ConnectVerdict::kBadPassword;
  const std::optional<DeviceCredential> cred = lookup(id->device_id);
  if (!cred) return ConnectVerdict::kUnknownDevice;
  if (!cred->enabled) return ConnectVerdict::kDisabled;
  if (!SafeEqual(password, IotdaPassword(cred->secret, id->timestamp, id->sig_type))) {
    return ConnectVerdict::kBadPassword;
  }
  if (id->sig_type != 0 && !TimestampWithin(id->timestamp, now, window_hours)) {
    return ConnectVerdict::kStaleTimestamp;
  }
  return ConnectVerdict::kAccepted;
}

}  // namespace ota::broker
