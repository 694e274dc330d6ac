#include "ota/server/device_protocol.hpp"

#include <zlib.h>

#include <ctime>

#include "ota/broker/device_auth.hpp"
#include "ota/broker/presence.hpp"
#include "ota/server/registry.hpp"
#include "ota/server/upgrade_tasks.hpp"

namespace ota::server {

namespace {

constexpr std::string_view kPrefix = "$oc/devices/";

std::string EventTime() {
  return FormatEventTime(std::time(nullptr));
}

// A sub-device's messages go to its gateway's topic, naming it in object_device_id.
Outgoing Event(const std::string& device_id, const std::string& gateway_id, const std::string& type,
               const nlohmann::json& paras, const char* service = "$ota") {
  const nlohmann::json envelope = {{"object_device_id", device_id},
                                   {"services",
                                    {{{"service_id", service},
                                      {"event_type", type},
                                      {"event_time", EventTime()},
                                      {"paras", paras}}}}};
  return {std::string(kPrefix) + (gateway_id.empty() ? device_id : gateway_id) + "/sys/events/down",
          envelope.dump()};
}

// Epoch ms as C and Java send it (a number) or as Python does (a string of digits).
std::optional<int64_t> Millis(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) {
    return v.get<int64_t>() >= 0 ? std::optional<int64_t>(v.get<int64_t>()) : std::nullopt;
  }
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

// A device's text: a string as it is, another JSON value as its JSON text, made safe to store.
std::string Text(const nlohmann::json& paras, const char* key, size_t max_bytes) {
  if (!paras.contains(key) || paras[key].is_null()) return {};
  const nlohmann::json& v = paras[key];
  return SafeUtf8(v.is_string() ? v.get<std::string>()
                                : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  max_bytes);
}

// Digits at s[pos, pos+n) as a number; -1 if any is not a digit.
int Digits(std::string_view s, size_t pos, size_t n) {
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string Gunzip(std::string_view data, size_t max_size) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw ApiError(500, "zlib: no memory");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    const size_t got = sizeof(buf) - z.avail_out;
    if (out.size() + got > max_size) {
      inflateEnd(&z);
      throw ApiError(413, "gzip payload inflates past " + std::to_string(max_size) + " bytes");
    }
    out.append(buf, got);
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // input ended before the stream did
  }
  const bool complete = rc == Z_STREAM_END && z.avail_in == 0;
  inflateEnd(&z);
  if (!complete) throw ApiError(400, "not one complete gzip stream");
  return out;
}

std::optional<UpTopic> ParseUpTopic(std::string_view topic) {
  if (topic.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  topic.remove_prefix(kPrefix.size());
  const size_t slash = topic.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  UpTopic up;
  up.device_id = std::string(topic.substr(0, slash));
  if (!broker::IsValidDeviceId(up.device_id)) return std::nullopt;
  std::string_view rest = topic.substr(slash);
  // The C and Java SDKs compress reports and messages this way; any kind may be compressed.
  constexpr std::string_view kGzip = "?encoding=gzip";
  if (rest.size() > kGzip.size() && rest.substr(rest.size() - kGzip.size()) == kGzip) {
    up.gzip = true;
    rest.remove_suffix(kGzip.size());
  }
  constexpr std::string_view kShadowGet = "/sys/shadow/get/request_id=";
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
  } else if (rest == "/sys/gateway/sub_devices/properties/report") {
    up.kind = UpKind::kGatewayPropertiesReport;
  } else if (rest == "/sys/messages/up") {
    up.kind = UpKind::kMessagesUp;
  } else if (rest.substr(0, kShadowGet.size()) == kShadowGet) {
    up.kind = UpKind::kShadowGet;  // the request ID is checked when handled (and counted)
    up.request_id = std::string(rest.substr(kShadowGet.size()));
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
  // A '?' is an ordinary character in MQTT: the gzip variants are topics of their own.
  // Presence events and login statistics come from the broker itself (docs/spec/broker-auth.md):
  // never shared, every instance keeps its view of who is online and its login counters.
  return {base + "properties/report",
          base + "properties/report?encoding=gzip",
          base + "events/up",
          base + "messages/up",
          base + "messages/up?encoding=gzip",
          base + "gateway/sub_devices/properties/report",
          base + "gateway/sub_devices/properties/report?encoding=gzip",
          base + "commands/response/#",
          base + "shadow/get/+",  // not shadow/get/#: that would take the platform's answers
          base + "properties/set/response/#",
          base + "properties/get/response/#",
          std::string(broker::kPresenceTopicPrefix) + "+",
          std::string(broker::kLoginStatsTopic)};
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

SdkEvents ParseSdkEvents(const nlohmann::json& envelope) {
  if (!envelope.is_object() || !envelope.contains("services") || !envelope["services"].is_array()) {
    throw ApiError(400, "event: expected {\"services\": [...]}");
  }
  SdkEvents out;
  for (const auto& s : envelope["services"]) {
    if (!s.is_object() || !s.contains("service_id") || !s["service_id"].is_string()) {
      throw ApiError(400, "event: a service needs a service_id");
    }
    if (!s.contains("event_type") || !s["event_type"].is_string()) continue;
    const std::string& service = s["service_id"].get_ref<const std::string&>();
    const std::string& type = s["event_type"].get_ref<const std::string&>();
    const nlohmann::json paras =
        s.contains("paras") && s["paras"].is_object() ? s["paras"] : nlohmann::json::object();
    if (service == "$time_sync" && type == "time_sync_request") {
      const std::optional<int64_t> sent =
          paras.contains("device_send_time") ? Millis(paras["device_send_time"]) : std::nullopt;
      if (!sent) throw ApiError(400, "time_sync_request: device_send_time (epoch ms) is required");
      out.time_sync_requests.push_back(*sent);
    } else if (service == "$sdk_info" && type == "sdk_info_report") {
      out.sdk_info = nlohmann::json::object();
      for (const char* key : {"device_sdk_version", "sw_version", "fw_version", "device_ip"}) {
        if (paras.contains(key) && paras[key].is_string()) {
          out.sdk_info[key] = SafeUtf8(paras[key].get<std::string>(), kMaxLogField);
        }
      }
    } else if (service == "$log" && type == "log_report") {
      out.logs.push_back({Text(paras, "type", kMaxLogField), Text(paras, "content", kMaxLogContent),
                          Text(paras, "timestamp", kMaxLogField)});
    }
  }
  return out;
}

std::optional<int64_t> ParseEventTime(const nlohmann::json& value) {
  if (!value.is_string()) return std::nullopt;
  const std::string_view s = value.get_ref<const std::string&>();
  int f[6];                                             // year month day hour minute second
  if (s.size() == 16 && s[8] == 'T' && s[15] == 'Z') {  // 20250414T010203Z
    f[0] = Digits(s, 0, 4), f[1] = Digits(s, 4, 2), f[2] = Digits(s, 6, 2);
    f[3] = Digits(s, 9, 2), f[4] = Digits(s, 11, 2), f[5] = Digits(s, 13, 2);
  } else if (s.size() == 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
             s[16] == ':' && s[19] == 'Z') {  // 2025-04-14T09:02:03Z
    f[0] = Digits(s, 0, 4), f[1] = Digits(s, 5, 2), f[2] = Digits(s, 8, 2);
    f[3] = Digits(s, 11, 2), f[4] = Digits(s, 14, 2), f[5] = Digits(s, 17, 2);
  } else {
    return std::nullopt;
  }
  for (int v : f) {
    if (v < 0) return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = f[0] - 1900;
  tm.tm_mon = f[1] - 1;
  tm.tm_mday = f[2];
  tm.tm_hour = f[3];
  tm.tm_min = f[4];
  tm.tm_sec = f[5];
  const std::time_t t = timegm(&tm);
  // timegm normalises (month 13, 31 April, hour 24): a time that does not come back is no time.
  std::tm back{};
  if (f[0] < 1970 || t < 0 || gmtime_r(&t, &back) == nullptr || back.tm_year != f[0] - 1900 ||
      back.tm_mon != f[1] - 1 || back.tm_mday != f[2] || back.tm_hour != f[3] ||
      back.tm_min != f[4] || back.tm_sec != f[5]) {
    return std::nullopt;
  }
  return static_cast<int64_t>(t);
}

std::string FormatEventTime(int64_t epoch_seconds) {
  const std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
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

std::optional<LoginStatsReport> ParseLoginStats(const std::string& payload) {
  const nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
  if (!j.is_object() || !j.contains("broker") || !j["broker"].is_string() ||
      !j.contains("started_at") || !j["started_at"].is_number_integer() || !j.contains("logins") ||
      !j["logins"].is_object()) {
    return std::nullopt;
  }
  LoginStatsReport r;
  r.broker = j["broker"];
  if (r.broker.empty() || r.broker.size() > 64 ||
      r.broker.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
          std::string::npos) {
    return std::nullopt;
  }
  r.started_at = j["started_at"];
  const nlohmann::json& logins = j["logins"];
  for (size_t i = 0; i < r.counts.size(); ++i) {
    const char* reason = broker::ConnectVerdictReason(static_cast<broker::ConnectVerdict>(i));
    if (!logins.contains(reason)) continue;
    if (!logins[reason].is_number_unsigned()) return std::nullopt;
    r.counts[i] = logins[reason].get<uint64_t>();
  }
  return r;
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

Outgoing TimeSyncResponse(const std::string& device_id, int64_t device_send_time,
                          int64_t server_recv_time, int64_t server_send_time) {
  return Event(device_id, "", "time_sync_response",
               {{"device_send_time", device_send_time},
                {"server_recv_time", server_recv_time},
                {"server_send_time", server_send_time}},
               "$time_sync");
}

Outgoing ShadowResponse(const std::string& device_id, const std::string& request_id,
                        const nlohmann::json& shadow) {
  const nlohmann::json body = {{"object_device_id", device_id}, {"shadow", shadow}};
  return {std::string(kPrefix) + device_id + "/sys/shadow/get/response/request_id=" + request_id,
          body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
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

}  // namespace ota::server
