#include "ota/broker/control.hpp"

#include "ota/broker/device_auth.hpp"

namespace ota::broker {

bool IsControlTopic(std::string_view topic) {
  return topic.substr(0, kControlTopicPrefix.size()) == kControlTopicPrefix;
}

std::optional<std::string> DisconnectTarget(std::string_view payload,
                                            std::string_view platform_username) {
  if (!IsValidDeviceId(payload) || payload == platform_username) return std::nullopt;
  return std::string(payload);
}

}  // namespace ota::broker
