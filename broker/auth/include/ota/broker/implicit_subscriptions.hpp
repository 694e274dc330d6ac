// Implicit subscriptions (docs/spec/broker-auth.md, "Implicit subscriptions"): IoTDA subscribes
// every device, at QoS 1, to its own system down topics, and Huawei's device SDKs rely on it and
// never SUBSCRIBE. Mosquitto 2.0 cannot add a subscription, so the plugin delivers the platform's
// messages on those topics to the device's current connection itself and keeps the original
// from normal routing. This is the decision, without I/O, so it can be tested without a broker.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ota::broker {

// Where the broker re-files an original it delivered itself: a topic nobody may receive.
inline constexpr std::string_view kRedirectSinkTopic = "$ota/redirected";

// The device a topic belongs to when it matches one of the six implicit filters of that device:
// `$oc/devices/{id}/sys/` + `messages/down`, `commands/#`, `properties/set/#`,
// `properties/get/#`, `events/down`, `shadow/get/response/#` (MQTT matching: `x/#` also
// matches `x`). nullopt for anything else, and for an invalid device ID.
std::optional<std::string_view> ImplicitDownDevice(std::string_view topic);

// What to do with a PUBLISH (docs/spec/broker-auth.md, "Implicit subscriptions").
struct Redirect {
  std::string client_id;  // deliver a copy to this client only, and sink the original
};

// The accepted device connections and which one is each device's current one: the newest
// accepted login still open. A connection is named by an opaque key (the broker's client
// pointer), valid from its accepted login until its disconnect.
class ImplicitSubscriptions {
 public:
  // A device login was accepted on `key` with `client_id`. It becomes the device's current
  // connection. Replaces any entry for `key`.
  void Connected(const void* key, std::string device_id, std::string client_id);
  // `key` went away (no-op if it is not an accepted device connection). If it was the device's
  // current connection, the newest other one still open (if any) becomes current.
  void Disconnected(const void* key);

  // The redirect for a PUBLISH, or nullopt to route it normally. Redirected: a message from the
  // platform identity, not retained, on an implicit topic of a device that has an open
  // connection.
  std::optional<Redirect> Route(bool from_platform, std::string_view topic, bool retain) const;

  // The client ID of the device's current connection.
  std::optional<std::string> CurrentClientId(std::string_view device_id) const;
  size_t size() const { return device_of_.size(); }  // open device connections

 private:
  struct Connection {
    const void* key;
    std::string client_id;
  };
  // Per device its open connections, oldest first (almost always one).
  std::unordered_map<std::string, std::vector<Connection>> by_device_;
  std::unordered_map<const void*, std::string> device_of_;
};

}  // namespace ota::broker
