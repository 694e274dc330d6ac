#include "ota/broker/implicit_subscriptions.hpp"

#include <algorithm>
#include <utility>

#include "ota/broker/device_auth.hpp"

namespace ota::broker {

namespace {

constexpr std::string_view kDevicesPrefix = "$oc/devices/";

// `level` as a topic filter `level` (exact) matches `s`.
bool Exact(std::string_view s, std::string_view level) {
  return s == level;
}

// `level/#` matches `s`: `level` itself or anything below it.
bool Subtree(std::string_view s, std::string_view level) {
  if (s.substr(0, level.size()) != level) return false;
  return s.size() == level.size() || s[level.size()] == '/';
}

}  // namespace

std::optional<std::string_view> ImplicitDownDevice(std::string_view topic) {
  if (topic.substr(0, kDevicesPrefix.size()) != kDevicesPrefix) return std::nullopt;
  const std::string_view rest = topic.substr(kDevicesPrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view device = rest.substr(0, slash);
  if (!IsValidDeviceId(device)) return std::nullopt;
  constexpr std::string_view kSys = "/sys/";
  if (rest.substr(slash, kSys.size()) != kSys) return std::nullopt;
  const std::string_view s = rest.substr(slash + kSys.size());
  if (Exact(s, "messages/down") || Exact(s, "events/down") || Subtree(s, "commands") ||
      Subtree(s, "properties/set") || Subtree(s, "properties/get") ||
      Subtree(s, "shadow/get/response")) {
    return device;
  }
  return std::nullopt;
}

void ImplicitSubscriptions::Connected(const void* key, std::string device_id,
                                      std::string client_id) {
  Disconnected(key);
  by_device_[device_id].push_back(Connection{key, std::move(client_id)});
  device_of_.emplace(key, std::move(device_id));
}

void ImplicitSubscriptions::Disconnected(const void* key) {
  const auto it = device_of_.find(key);
  if (it == device_of_.end()) return;
  const auto dev = by_device_.find(it->second);
  if (dev != by_device_.end()) {
    std::vector<Connection>& conns = dev->second;
    conns.erase(std::remove_if(conns.begin(), conns.end(),
                               [key](const Connection& c) { return c.key == key; }),
                conns.end());
    if (conns.empty()) by_device_.erase(dev);
  }
  device_of_.erase(it);
}

std::optional<std::string> ImplicitSubscriptions::CurrentClientId(
    std::string_view device_id) const {
  const auto it = by_device_.find(std::string(device_id));
  if (it == by_device_.end() || it->second.empty()) return std::nullopt;
  return it->second.back().client_id;
}

std::optional<Redirect> ImplicitSubscriptions::Route(bool from_platform, std::string_view topic,
                                                     bool retain) const {
  // Only the platform's messages: a device publishing to its own down topic is ordinary MQTT.
  // A retained message is a deliberate store for later subscribers: left to normal routing.
  if (!from_platform || retain) return std::nullopt;
  const std::optional<std::string_view> device = ImplicitDownDevice(topic);
  if (!device) return std::nullopt;
  // Offline: normal routing, so a persistent session that subscribed gets it queued.
  std::optional<std::string> client_id = CurrentClientId(*device);
  if (!client_id) return std::nullopt;
  return Redirect{std::move(*client_id)};
}

}  // namespace ota::broker
