// Products, their signing keys and model, devices (with their broker credentials), groups,
// and reported properties. Every write that a device's login depends on goes to the broker's
// credential table in the same transaction (docs/spec/broker-auth.md).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ota/broker/device_auth.hpp"
#include "ota/broker/secret_box.hpp"
#include "ota/server/database.hpp"
#include "ota/server/device_protocol.hpp"
#include "ota/signature.hpp"

namespace ota::server {

// A refusal the API reports: HTTP status and a one-line message.
struct ApiError : std::runtime_error {
  ApiError(int http_status, const std::string& message)
      : std::runtime_error(message), status(http_status) {}
  int status;
};

struct ProductKey {
  std::string key_id;
  std::string public_pem;
  bool may_downgrade = false;
};

struct Product {
  std::string product_id, name, manufacturer, protocol;
  nlohmann::json model;  // {"services":[{"service_id":..,"properties":[{"name","type",..}]}]}
  std::vector<ProductKey> keys;
};

// Without presence events from the broker (brokers other than Mosquitto with the plugin), a
// device counts as online while it has sent anything within this many seconds.
inline constexpr int64_t kOnlineSeconds = 600;
// A property's event_time further ahead than this is the device's clock (or, from the Python
// SDK, its local time labelled UTC), not the time of the data: the time of receipt is stored.
inline constexpr int64_t kEventTimeFutureSeconds = 15 * 60;
// Log lines kept per device (each at most kMaxLogContent bytes of content).
inline constexpr int64_t kMaxDeviceLogs = 100;

struct Device {
  std::string device_id, product_id, node_id;
  bool enabled = true;
  bool online = false;
  int64_t last_seen = 0;
  std::string fw_version, sw_version;
  std::vector<std::string> groups;
  std::string gateway_id;  // a sub-device's gateway; "" for a device that logs in itself
};

// The operator's device search (GET /api/v1/devices): every filter that is set must hold.
struct DeviceFilter {
  std::string q;  // substring of device_id or node_id, ASCII case-insensitive
  std::string product_id;
  std::string group;
  std::optional<std::string> version;  // exact fw_version; "" = never reported
  std::optional<bool> online;
  int64_t limit = -1;  // -1: all
  int64_t offset = 0;
};

// SQL for whether the device `d` (devices d LEFT JOIN devices gw ON gw.device_id = d.gateway_id)
// is online at `now` (0/1): what the broker last said (presence events), without them recent
// traffic; a sub-device while its gateway is and the gateway last said it was.
std::string DeviceOnlineSql(int64_t now);

class Registry {
 public:
  Registry(Database& db, const broker::SecretBox& box);

  Product CreateProduct(const std::string& product_id, const std::string& name,
                        const std::string& manufacturer, const std::string& protocol,
                        const nlohmann::json& model);
  Product GetProduct(const std::string& product_id);
  std::vector<Product> ListProducts();
  // A PEM public key (P-256) allowed to sign this product's packages.
  ProductKey AddProductKey(const std::string& product_id, const std::string& public_pem,
                           bool may_downgrade);
  std::vector<TrustedKey> TrustedKeys(const std::string& product_id);

  // Returns the device and, only here, its secret (generated when `secret` is empty).
  // With `gateway_id`: a sub-device of that gateway (itself no sub-device), which has no
  // broker credential and never logs in (a secret is refused); its secret is "".
  std::pair<Device, std::string> CreateDevice(const std::string& product_id,
                                              const std::string& node_id,
                                              const std::string& device_id,
                                              const std::string& secret,
                                              const std::string& gateway_id = "");
  std::vector<std::string> SubDeviceIds(const std::string& gateway_id);
  // Whether `device_id` is a sub-device of `gateway_id`.
  bool IsSubDeviceOf(const std::string& device_id, const std::string& gateway_id);
  // The gateway's sub_device_update_status; false (nothing changed) for a device that is not
  // its sub-device.
  bool SetSubDeviceOnline(const std::string& gateway_id, const std::string& device_id, bool online);
  Device GetDevice(const std::string& device_id);
  std::vector<Device> ListDevices(const std::string& product_id, const std::string& group);
  // One page, sorted by device_id, and (`total`) how many match before paging. SQL does the
  // filtering and paging (indexed); only the page is read.
  std::vector<Device> FindDevices(const DeviceFilter& filter, int64_t* total = nullptr);
  // Only the IDs, in order (task targets): one query however many.
  std::vector<std::string> DeviceIds(const std::string& product_id, const std::string& group);
  // Disabling also disconnects the device's open MQTT connections at once (QueueDisconnect).
  void SetDeviceEnabled(const std::string& device_id, bool enabled);
  void AddToGroup(const std::string& device_id, const std::string& group);
  // 404 when the device is not in the group.
  void RemoveFromGroup(const std::string& device_id, const std::string& group);
  // Removes the device, its broker credential (its next login is refused), groups, properties,
  // logs, requests, queued messages and its rows of ended tasks, in one transaction, and
  // disconnects its open MQTT connections (QueueDisconnect); its download tokens fail once the
  // row is gone, and for a device re-created with the same ID too (Generation). 409 while it is
  // in an open task or is a gateway with sub-devices.
  void DeleteDevice(const std::string& device_id);
  // A new secret (generated when `secret` is empty), returned once: the broker accepts only it
  // from the commit on, the device's open MQTT connections are closed (QueueDisconnect) and its
  // download tokens refused (a new Generation). 400 for a sub-device (it never logs in).
  std::string RotateSecret(const std::string& device_id, const std::string& secret);
  // The key no longer signs this product's packages (stored ones stay). 404 when unknown.
  void RemoveProductKey(const std::string& product_id, const std::string& key_id);

  // From the device: traffic and reported versions.
  // False for an unknown device.
  bool MarkSeen(const std::string& device_id);
  // From the broker (docs/spec/broker-auth.md, "Presence events"): applied when `seq` is newer
  // than what the device's presence was last set from (a disconnect of the connection a
  // takeover replaced is older). Returns whether it was applied.
  bool ApplyPresence(const std::string& device_id, bool connected, int64_t seq);
  // The broker lost every session (it restarted without them): what it said of presence no
  // longer holds, and recent traffic decides again until its next events.
  void PresenceUnknown();
  void SetVersions(const std::string& device_id, const std::string& fw, const std::string& sw);

  // A properties report (iotda-protocol.md): every property must be in the product model with
  // the right type; otherwise nothing of the report is stored and ApiError(400) says why.
  // A service's event_time is stored in IoTDA's form; when it is missing, null, malformed or more
  // than kEventTimeFutureSeconds ahead, the time of receipt is stored instead.
  void StoreProperties(const std::string& device_id, const nlohmann::json& report);
  nlohmann::json Properties(const std::string& device_id);
  // The device shadow as IoTDA answers sys/shadow/get: [{"service_id", "reported":
  // {"properties", "event_time"}, "version"}] per reported service (`service_id` "": all).
  // There are no desired properties yet, so "desired" is left out (it is optional).
  nlohmann::json Shadow(const std::string& device_id, const std::string& service_id);

  // What a Huawei SDK says of itself ($sdk_info): the last report's text fields, or null.
  void SetSdkInfo(const std::string& device_id, const nlohmann::json& info);
  nlohmann::json SdkInfo(const std::string& device_id);
  // Log lines a device reports ($log): the newest kMaxDeviceLogs are kept, oldest first.
  void AddDeviceLogs(const std::string& device_id, const std::vector<LogLine>& lines);
  nlohmann::json DeviceLogs(const std::string& device_id);

  // The broker's view of a device (docs/spec/broker-auth.md), for brokers that ask over HTTP.
  std::optional<broker::DeviceCredential> Credential(const std::string& device_id);

  // What the device's download tokens carry (docs/server.md, "Downloads"): new when the
  // device is created and when its secret is rotated, never reused. 404 when unknown.
  int64_t Generation(const std::string& device_id);

  void Count(const std::string& counter, int64_t by = 1);
  int64_t Counter(const std::string& counter);

 private:
  // The parsed model of a product (models never change once made), for property reports.
  const nlohmann::json& Model(const std::string& product_id);
  // The next value of the device_generation counter (inside the caller's transaction).
  int64_t NextGeneration();
  // Inside the caller's transaction: the outbox message that makes the broker close every open
  // MQTT connection of the device (docs/spec/broker-auth.md, "Control messages"). Queued with
  // the change, so a crash after the commit still sends it.
  void QueueDisconnect(const std::string& device_id);

  Database& db_;
  broker::SecretBox box_;
  std::map<std::string, nlohmann::json> models_;
};

// Checks a product model's shape; throws ApiError(400) with the first problem.
void ValidateModel(const nlohmann::json& model);

}  // namespace ota::server
