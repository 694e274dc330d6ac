#include "ota/server/device_protocol.hpp"

#include <ctime>

#include "ota/broker/device_auth.hpp"
#include "ota/broker/presence.hpp"
#include "ota/server/registry.hpp"

namespace ota::server {

namespace {

constexpr std::string_view kPrefix = "$oc/devices/";

std::string EventTime() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Outgoing Event(const std::string& device_id, const std::string& type, const nlohmann::json& paras) {
  const nlohmann::json envelope = {{"object_device_id", device_id},
                                   {"services",
                                    {{{"service_id", "$ota"},
                                      {"event_type", type},
                                      {"event_time", EventTime()},
                                      {"paras", paras}}}}};
  return {std::string(kPrefix) + device_id + "/sys/events/down", envelope.dump()};
}

}  // namespace

std::optional<UpTopic> ParseUpTopic(std::string_view topic) {
  if (topic.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  topic.remove_prefix(kPrefix.size());
  const size_t slash = topic.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  UpTopic up;
  up.device_id = std::string(topic.substr(0, slash));
  if (!broker::IsValidDeviceId(up.device_id)) return std::nullopt;
  const std::string_view rest = topic.substr(slash);
  // Answers to the platform's requests (device_requests.hpp); the ID is checked there.
  static constexpr std::pair<std::string_view, UpKind> kResponses[] = {
      {"/sys/commands/response/request_id=", UpKind::kCommandResponse},
      {"/sys/properties/set/response/request_id=", UpKind::kPropertiesSetResponse},
      {"/sys/properties/get/response/request_id=", UpKind::kPropertiesGetResponse},
  };
  for (const auto& [prefix, kind] : kResponses) {
    if (rest.substr(0, prefix.size()) == prefix && rest.size() > prefix.size()) {
      up.kind = kind;
      up.request_id = std::string(rest.substr(prefix.size()));
      return up;
    }
  }
  if (rest == "/sys/properties/report") {
    up.kind = UpKind::kPropertiesReport;
  } else if (rest == "/sys/events/up") {
    up.kind = UpKind::kEventsUp;
  } else if (rest == "/sys/messages/up") {
    up.kind = UpKind::kMessagesUp;
  } else {
    return std::nullopt;
  }
  return up;
}

std::vector<std::string> UpSubscriptions(const std::string& share_group) {
  // Mosquitto 2.0 does not route topics that start with '$' to $share subscriptions (checked
  // with 2.0.11): with it, the one instance subscribes plainly (empty group).
  const std::string base =
      (share_group.empty() ? std::string() : "$share/" + share_group + "/") + "$oc/devices/+/sys/";
  // Presence events come from the broker itself (docs/spec/broker-auth.md): never shared, every
  // instance keeps its view of who is online.
  return {base + "properties/report",
          base + "events/up",
          base + "messages/up",
          base + "commands/response/#",
          base + "properties/set/response/#",
          base + "properties/get/response/#",
          std::string(broker::kPresenceTopicPrefix) + "+"};
}

std::vector<OtaEvent> ParseOtaEvents(const nlohmann::json& envelope) {
  if (!envelope.is_object() || !envelope.contains("services") || !envelope["services"].is_array()) {
    throw ApiError(400, "event: expected {\"services\": [...]}");
  }
  std::vector<OtaEvent> out;
  for (const auto& s : envelope["services"]) {
    if (!s.is_object() || !s.contains("service_id") || !s["service_id"].is_string()) {
      throw ApiError(400, "event: a service needs a service_id");
    }
    if (s["service_id"] != "$ota") continue;
    if (!s.contains("event_type") || !s["event_type"].is_string()) {
      throw ApiError(400, "event: $ota needs an event_type");
    }
    OtaEvent e{s["event_type"], s.contains("paras") ? s["paras"] : nlohmann::json::object()};
    if (!e.paras.is_object()) throw ApiError(400, "event: paras must be an object");
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<Presence> ParsePresence(std::string_view topic, const std::string& payload) {
  if (topic.substr(0, broker::kPresenceTopicPrefix.size()) != broker::kPresenceTopicPrefix)
    return std::nullopt;
  const std::string device(topic.substr(broker::kPresenceTopicPrefix.size()));
  if (!broker::IsValidDeviceId(device)) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
  if (!j.is_object() || !j.contains("event") || !j["event"].is_string() || !j.contains("seq") ||
      !j["seq"].is_number_integer()) {
    return std::nullopt;
  }
  const std::string event = j["event"];
  if (event != "connected" && event != "disconnected") return std::nullopt;
  return Presence{device, event == "connected", j["seq"].get<int64_t>()};
}

Outgoing VersionQuery(const std::string& device_id) {
  return Event(device_id, "version_query", nlohmann::json::object());
}

Outgoing DeviceRequest(DownKind kind, const std::string& device_id, const std::string& request_id,
                       nlohmann::json body) {
  nlohmann::json payload = std::move(body);
  payload["object_device_id"] = device_id;
  const std::string base = std::string(kPrefix) + device_id + "/sys/";
  switch (kind) {
    case DownKind::kCommand:
      return {base + "commands/request_id=" + request_id, payload.dump()};
    case DownKind::kPropertiesSet:
      return {base + "properties/set/request_id=" + request_id, payload.dump()};
    case DownKind::kPropertiesGet:
      return {base + "properties/get/request_id=" + request_id, payload.dump()};
    case DownKind::kMessage:
      break;
  }
  return {base + "messages/down", payload.dump()};
}

Outgoing FirmwareUpgrade(const std::string& device_id, const nlohmann::json& paras) {
  return Event(device_id, "firmware_upgrade", paras);
}

}  // namespace ota::server
