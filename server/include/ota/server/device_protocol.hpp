// The IoTDA device protocol as the platform sees it (iotda-protocol.md): which device and what
// kind of message an incoming topic is, the $ota events in an envelope, and the messages the
// platform sends. Pure functions; the broker's ACL already guarantees the topic's device ID.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ota::server {

enum class UpKind {
  kPropertiesReport,
  kEventsUp,
  kCommandResponse,
  kMessagesUp,
  kPropertiesSetResponse,
  kPropertiesGetResponse,
};

struct UpTopic {
  std::string device_id;
  UpKind kind = UpKind::kMessagesUp;
  std::string request_id;  // responses: the text after "request_id=", unchecked
};

// The broker plugin's presence events (docs/spec/broker-auth.md, "Presence events") on
// broker::kPresenceTopicPrefix + device ID.
struct Presence {
  std::string device_id;
  bool connected = false;
  int64_t seq = 0;
};
// nullopt for another topic or a malformed event.
std::optional<Presence> ParsePresence(std::string_view topic, const std::string& payload);

// nullopt for a topic the platform does not take from devices.
std::optional<UpTopic> ParseUpTopic(std::string_view topic);

// The topic filters the platform subscribes to: as one shared-subscription group when
// `share_group` is set (brokers that share `$`-topics, e.g. EMQX: instances split the
// traffic), plainly when it is empty (Mosquitto 2.0).
std::vector<std::string> UpSubscriptions(const std::string& share_group);

struct OtaEvent {
  std::string event_type;
  nlohmann::json paras;
};

// The $ota events of an events/up envelope; other services are ignored. Throws ApiError(400)
// for an envelope that is not one.
std::vector<OtaEvent> ParseOtaEvents(const nlohmann::json& envelope);

struct Outgoing {
  std::string topic;
  std::string payload;
};

Outgoing VersionQuery(const std::string& device_id);

// Requests to a device (device_requests.hpp); `body` is the payload without object_device_id.
enum class DownKind { kCommand, kPropertiesSet, kPropertiesGet, kMessage };
Outgoing DeviceRequest(DownKind kind, const std::string& device_id, const std::string& request_id,
                       nlohmann::json body);
// paras: version, url, file_size, access_token, expires, sign, file_name (iotda-protocol.md).
Outgoing FirmwareUpgrade(const std::string& device_id, const nlohmann::json& paras);

}  // namespace ota::server
