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

// A sub-device's messages go to its gateway's topic, naming it in object_device_id.
Outgoing Event(const std::string& device_id, const std::string& gateway_id, const std::string& type,
               const nlohmann::json& paras) {
  const nlohmann::json envelope = {{"object_device_id", device_id},
                                   {"services",
                                    {{{"service_id", "$ota"},
                                      {"event_type", type},
                                      {"event_time", EventTime()},
                                      {"paras", paras}}}}};
  return {std::string(kPrefix) + (gateway_id.empty() ? device_id : gateway_id) + "/sys/events/down",
          envelope.dump()};
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
  constexpr std::string_view kResponse = "/sys/commands/response/request_id=";
  if (rest == "/sys/properties/report") {
    up.kind = UpKind::kPropertiesReport;
  } else if (rest == "/sys/events/up") {
    up.kind = UpKind::kEventsUp;
  } else if (rest == "/sys/gateway/sub_devices/properties/report") {
    up.kind = UpKind::kGatewayPropertiesReport;
  } else if (rest == "/sys/messages/up") {
    up.kind = UpKind::kMessagesUp;
  } else if (rest.substr(0, kResponse.size()) == kResponse && rest.size() > kResponse.size()) {
    up.kind = UpKind::kCommandResponse;
    up.request_id = std::string(rest.substr(kResponse.size()));
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
          base + "gateway/sub_devices/properties/report",
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

std::string ObjectDeviceId(const nlohmann::json& envelope, const std::string& sender) {
  if (!envelope.is_object() || !envelope.contains("object_device_id")) return {};
  const nlohmann::json& o = envelope["object_device_id"];
  if (o.is_null()) return {};
  if (!o.is_string()) throw ApiError(400, "object_device_id must be a string");
  const std::string id = o;
  // The C SDK answers "-1" when the platform's event named no device; Py sends "" or its own.
  if (id.empty() || id == "-1" || id == sender) return {};
  if (!broker::IsValidDeviceId(id)) throw ApiError(400, "object_device_id is not a device ID");
  return id;
}

std::vector<SubDeviceStatus> ParseSubDeviceStatuses(const nlohmann::json& envelope) {
  std::vector<SubDeviceStatus> out;
  for (const auto& s : envelope["services"]) {
    if (s["service_id"] != "$sub_device_manager" || !s.contains("event_type") ||
        s["event_type"] != "sub_device_update_status") {
      continue;
    }
    const nlohmann::json& paras = s.contains("paras") ? s["paras"] : nlohmann::json();
    if (!paras.is_object() || !paras.contains("device_statuses") ||
        !paras["device_statuses"].is_array() || paras["device_statuses"].size() > kMaxSubDevices) {
      throw ApiError(400, "sub_device_update_status: expected device_statuses (at most " +
                              std::to_string(kMaxSubDevices) + ")");
    }
    for (const auto& d : paras["device_statuses"]) {
      if (!d.is_object() || !d.contains("device_id") || !d["device_id"].is_string() ||
          !d.contains("status") || !d["status"].is_string() ||
          (d["status"] != "ONLINE" && d["status"] != "OFFLINE")) {
        throw ApiError(400, "sub_device_update_status: each needs device_id and ONLINE|OFFLINE");
      }
      out.push_back({d["device_id"], d["status"] == "ONLINE"});
    }
  }
  return out;
}

std::vector<std::pair<std::string, nlohmann::json>> ParseGatewayProperties(
    const nlohmann::json& report) {
  if (!report.is_object() || !report.contains("devices") || !report["devices"].is_array() ||
      report["devices"].size() > kMaxSubDevices) {
    throw ApiError(400, "sub-device properties: expected {\"devices\": [...]} (at most " +
                            std::to_string(kMaxSubDevices) + ")");
  }
  std::vector<std::pair<std::string, nlohmann::json>> out;
  for (const auto& d : report["devices"]) {
    if (!d.is_object() || !d.contains("device_id") || !d["device_id"].is_string() ||
        !d.contains("services")) {
      throw ApiError(400, "sub-device properties: each device needs device_id and services");
    }
    out.emplace_back(d["device_id"], nlohmann::json{{"services", d["services"]}});
  }
  return out;
}

Outgoing VersionQuery(const std::string& device_id, const std::string& gateway_id) {
  return Event(device_id, gateway_id, "version_query", nlohmann::json::object());
}

Outgoing FirmwareUpgrade(const std::string& device_id, const nlohmann::json& paras,
                         const std::string& gateway_id) {
  return Event(device_id, gateway_id, "firmware_upgrade", paras);
}

Outgoing SoftwareUpgrade(const std::string& device_id, const nlohmann::json& paras,
                         const std::string& gateway_id) {
  return Event(device_id, gateway_id, "software_upgrade", paras);
}

}  // namespace ota::server
