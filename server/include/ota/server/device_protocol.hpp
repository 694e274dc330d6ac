// The IoTDA device protocol as the platform sees it (iotda-protocol.md): which device and what
// kind of message an incoming topic is, the $ota events in an envelope, and the messages the
// platform sends. Pure functions; the broker's ACL already guarantees the topic's device ID.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ota/broker/login_stats.hpp"

namespace ota::server {

enum class UpKind {
  kPropertiesReport,
  kEventsUp,
  kCommandResponse,
  kMessagesUp,
  kShadowGet,
  kGatewayPropertiesReport,  // sys/gateway/sub_devices/properties/report
  kPropertiesSetResponse,
  kPropertiesGetResponse,
};

struct UpTopic {
  std::string device_id;
  UpKind kind = UpKind::kMessagesUp;
  // Responses: as sent (checked where handled); shadow requests: checked by IsValidRequestId.
  std::string request_id;
  bool gzip = false;  // the topic ended in "?encoding=gzip": the payload is gzip (RFC 1952)
};

// A request ID the platform echoes in a topic: 1-128 characters of A-Z a-z 0-9 - _ . :
// (UUIDs, counters, the C SDK's "requestId"), never a wildcard, '/' or anything odd.
bool IsValidRequestId(std::string_view id);

// The payload of a "?encoding=gzip" topic, inflated. Throws ApiError(413) as soon as the output
// passes `max_size` (a zip bomb costs at most that much work), ApiError(400) for data that is
// not one complete gzip stream.
std::string Gunzip(std::string_view data, size_t max_size);

// The broker plugin's presence events (docs/spec/broker-auth.md, "Presence events") on
// broker::kPresenceTopicPrefix + device ID.
struct Presence {
  std::string device_id;
  bool connected = false;
  int64_t seq = 0;
};
// nullopt for another topic or a malformed event.
std::optional<Presence> ParsePresence(std::string_view topic, const std::string& payload);

// The broker plugin's login statistics (docs/spec/broker-auth.md, "Login statistics") on
// broker::kLoginStatsTopic: one broker instance's cumulative counts by reason.
struct LoginStatsReport {
  std::string broker;  // the instance: 1..64 of [A-Za-z0-9_-]
  int64_t started_at = 0;
  broker::LoginCounts counts{};  // by ConnectVerdict; a reason the message lacks is 0
};
// nullopt for a malformed message (a count that is not a non-negative integer, no instance).
// Reasons this version does not know are ignored.
std::optional<LoginStatsReport> ParseLoginStats(const std::string& payload);

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

// What Huawei's device SDKs send besides $ota on events/up (docs/spec/device-protocol.md):
// $time_sync time_sync_request, $sdk_info sdk_info_report, $log log_report. Other services and
// event types are ignored.
struct LogLine {
  std::string type, content, timestamp;  // valid UTF-8, cut to kMaxLog* bytes
};
inline constexpr size_t kMaxLogContent = 1024;
inline constexpr size_t kMaxLogField = 64;
struct SdkEvents {
  std::vector<int64_t> time_sync_requests;  // device_send_time (epoch ms) of each request
  nlohmann::json sdk_info;                  // the last sdk_info_report's text paras, or null
  std::vector<LogLine> logs;
};
// Throws ApiError(400) for a time_sync_request without a device_send_time in ms (a number or
// a string of digits) and for an envelope that is not one.
SdkEvents ParseSdkEvents(const nlohmann::json& envelope);

// An event_time as IoTDA writes it (yyyyMMddTHHmmssZ) or as the Python SDK does
// (YYYY-MM-DDTHH:MM:SSZ): epoch seconds; nullopt for anything else (missing, null, malformed).
std::optional<int64_t> ParseEventTime(const nlohmann::json& value);
// IoTDA's form, UTC.
std::string FormatEventTime(int64_t epoch_seconds);

struct Outgoing {
  std::string topic;
  std::string payload;
};

// Gateways (docs/server.md, "Gateways and sub-devices"). Sub-devices a gateway may name in one
// message, at most.
inline constexpr size_t kMaxSubDevices = 100;

// The device an envelope from `sender` is about: "" for the sender itself (object_device_id
// missing, null, "", "-1" or the sender's own ID), else the named ID (whether it is the
// sender's sub-device is the caller's check). Throws ApiError(400) for a non-string.
std::string ObjectDeviceId(const nlohmann::json& envelope, const std::string& sender);

struct SubDeviceStatus {
  std::string device_id;
  bool online = false;
};
// The $sub_device_manager / sub_device_update_status events of an envelope already accepted
// by ParseOtaEvents. Throws ApiError(400) for a malformed one.
std::vector<SubDeviceStatus> ParseSubDeviceStatuses(const nlohmann::json& envelope);

// {"devices":[{"device_id", "services":[...]}]}: each device with its own properties report
// ({"services":[...]}, checked by Registry::StoreProperties). Throws ApiError(400).
std::vector<std::pair<std::string, nlohmann::json>> ParseGatewayProperties(
    const nlohmann::json& report);

// `gateway_id` set: `device_id` is its sub-device and the message goes to the gateway.
Outgoing VersionQuery(const std::string& device_id, const std::string& gateway_id = "");

// Requests to a device (device_requests.hpp); `body` is the payload without object_device_id.
enum class DownKind { kCommand, kPropertiesSet, kPropertiesGet, kMessage };
Outgoing DeviceRequest(DownKind kind, const std::string& device_id, const std::string& request_id,
                       nlohmann::json body);
// paras: version, url, file_size, access_token, expires, sign, file_name (iotda-protocol.md).
Outgoing FirmwareUpgrade(const std::string& device_id, const nlohmann::json& paras,
                         const std::string& gateway_id = "");
// SOTA: the same paras as firmware_upgrade (IoTDA).
Outgoing SoftwareUpgrade(const std::string& device_id, const nlohmann::json& paras,
                         const std::string& gateway_id = "");
// $time_sync time_sync_response on events/down: the request's device_send_time and the
// platform's receive and send times, all epoch ms as JSON numbers.
Outgoing TimeSyncResponse(const std::string& device_id, int64_t device_send_time,
                          int64_t server_recv_time, int64_t server_send_time);
// The answer to sys/shadow/get/request_id={request_id}: {"object_device_id", "shadow": [...]}.
Outgoing ShadowResponse(const std::string& device_id, const std::string& request_id,
                        const nlohmann::json& shadow);

}  // namespace ota::server
