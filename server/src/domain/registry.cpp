#include "ota/server/registry.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>

#include "ota/broker/control.hpp"
#include "ota/broker/credential_store.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/host/keys.hpp"
#include "ota/server/hex.hpp"
#include "ota/server/outbox.hpp"

namespace ota::server {

namespace {

int64_t Now() {
  return static_cast<int64_t>(std::time(nullptr));
}

std::string RandomHex(size_t bytes) {
  std::vector<uint8_t> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    throw ApiError(500, "no random bytes");
  }
  return ToHex(raw);
}

bool IsName(const std::string& s) {
  return broker::IsValidDeviceId(s) && s.size() <= 64;
}

const char* kTypes[] = {"int", "decimal", "string", "bool"};

bool TypeMatches(const std::string& type, const nlohmann::json& v) {
  if (type == "int") return v.is_number_integer();
  if (type == "decimal") return v.is_number();
  if (type == "string") return v.is_string();
  if (type == "bool") return v.is_boolean();
  return false;
}

}  // namespace

void ValidateModel(const nlohmann::json& model) {
  if (!model.is_object() || !model.contains("services") || !model["services"].is_array()) {
    throw ApiError(400, "model: expected {\"services\": [...]}");
  }
  for (const auto& svc : model["services"]) {
    if (!svc.is_object() || !svc.contains("service_id") || !svc["service_id"].is_string() ||
        !svc.contains("properties") || !svc["properties"].is_array()) {
      throw ApiError(400, "model: each service needs a service_id and a properties array");
    }
    for (const auto& p : svc["properties"]) {
      if (!p.is_object() || !p.contains("name") || !p["name"].is_string() || !p.contains("type") ||
          !p["type"].is_string()) {
        throw ApiError(400, "model: each property needs a name and a type");
      }
      const std::string type = p["type"];
      bool known = false;
      for (const char* t : kTypes)
        known = known || type == t;
      if (!known) throw ApiError(400, "model: unknown property type '" + type + "'");
    }
  }
}

Registry::Registry(Database& db, const broker::SecretBox& box) : db_(db), box_(box) {
  std::string error;
  if (!broker::CreateCredentialSchema(db_.handle(), &error)) {
    throw DbError("broker credential table: " + error);
  }
}

Product Registry::CreateProduct(const std::string& product_id, const std::string& name,
                                const std::string& manufacturer, const std::string& protocol,
                                const nlohmann::json& model) {
  const std::string id = product_id.empty() ? RandomHex(12) : product_id;
  if (!IsName(id)) throw ApiError(400, "product_id: 1-64 characters of A-Z a-z 0-9 _ -");
  if (name.empty() || name.size() > 128) throw ApiError(400, "name: 1-128 characters");
  if (protocol != "MQTT") throw ApiError(400, "protocol: only MQTT is supported");
  const nlohmann::json m =
      model.is_null() ? nlohmann::json{{"services", nlohmann::json::array()}} : model;
  ValidateModel(m);
  Transaction tx(db_);
  if (db_.Prepare("SELECT 1 FROM products WHERE product_id = ?").Bind(1, id).Step()) {
    throw ApiError(409, "product " + id + " exists");
  }
  db_.Prepare(
         "INSERT INTO products (product_id, name, manufacturer, protocol, model, created_at) "
         "VALUES (?, ?, ?, ?, ?, ?)")
      .Bind(1, id)
      .Bind(2, name)
      .Bind(3, manufacturer)
      .Bind(4, protocol)
      .Bind(5, m.dump())
      .Bind(6, Now())
      .Run();
  tx.Commit();
  return GetProduct(id);
}

Product Registry::GetProduct(const std::string& product_id) {
  Statement st = db_.Prepare(
      "SELECT product_id, name, manufacturer, protocol, model FROM products WHERE product_id = ?");
  st.Bind(1, product_id);
  if (!st.Step()) throw ApiError(404, "no product " + product_id);
  Product p{st.Text(0), st.Text(1), st.Text(2), st.Text(3), nlohmann::json::parse(st.Text(4)), {}};
  Statement keys = db_.Prepare(
      "SELECT key_id, public_pem, may_downgrade FROM product_keys WHERE product_id = ? "
      "ORDER BY created_at, key_id");
  keys.Bind(1, product_id);
  while (keys.Step())
    p.keys.push_back({keys.Text(0), keys.Text(1), keys.Int(2) != 0});
  return p;
}

std::vector<Product> Registry::ListProducts() {
  std::vector<std::string> ids;
  Statement st = db_.Prepare("SELECT product_id FROM products ORDER BY created_at, product_id");
  while (st.Step())
    ids.push_back(st.Text(0));
  std::vector<Product> out;
  for (const std::string& id : ids)
    out.push_back(GetProduct(id));
  return out;
}

ProductKey Registry::AddProductKey(const std::string& product_id, const std::string& public_pem,
                                   bool may_downgrade) {
  GetProduct(product_id);  // 404 first
  const host::PublicKeyResult key = host::ParsePublicKeyPem(public_pem, "public_pem");
  if (!key.error.empty()) throw ApiError(400, key.error);
  const host::KeyId id = host::KeyIdOf(key.point);
  const std::string key_id = ToHex(id);
  Transaction tx(db_);
  if (db_.Prepare("SELECT 1 FROM product_keys WHERE key_id = ?").Bind(1, key_id).Step()) {
    throw ApiError(409, "key " + key_id + " is already registered");
  }
  db_.Prepare(
         "INSERT INTO product_keys (key_id, product_id, public_pem, may_downgrade, created_at) "
         "VALUES (?, ?, ?, ?, ?)")
      .Bind(1, key_id)
      .Bind(2, product_id)
      .Bind(3, public_pem)
      .Bind(4, may_downgrade)
      .Bind(5, Now())
      .Run();
  tx.Commit();
  return {key_id, public_pem, may_downgrade};
}

std::vector<TrustedKey> Registry::TrustedKeys(const std::string& product_id) {
  std::vector<TrustedKey> out;
  for (const ProductKey& k : GetProduct(product_id).keys) {
    const host::PublicKeyResult key = host::ParsePublicKeyPem(k.public_pem, k.key_id);
    if (!key.error.empty()) continue;
    TrustedKey t{};
    std::memcpy(t.point, key.point.data(), kPublicKeySize);
    t.permissions = k.may_downgrade ? static_cast<uint32_t>(kKeyMayDowngrade) : 0u;
    out.push_back(t);
  }
  return out;
}

std::pair<Device, std::string> Registry::CreateDevice(const std::string& product_id,
                                                      const std::string& node_id,
                                                      const std::string& device_id,
                                                      const std::string& secret,
                                                      const std::string& gateway_id) {
  GetProduct(product_id);
  if (!gateway_id.empty()) {
    // One level, as in IoTDA: a gateway logs in itself.
    if (!GetDevice(gateway_id).gateway_id.empty()) {
      throw ApiError(400, "gateway " + gateway_id + " is itself a sub-device");
    }
    if (!secret.empty()) throw ApiError(400, "a sub-device has no secret: it never logs in");
  }
  if (!IsName(node_id)) throw ApiError(400, "node_id: 1-64 characters of A-Z a-z 0-9 _ -");
  const std::string id = device_id.empty() ? product_id + "_" + node_id : device_id;
  if (!broker::IsValidDeviceId(id)) {
    throw ApiError(400, "device_id: 1-128 characters of A-Z a-z 0-9 _ -");
  }
  const std::string s = !gateway_id.empty() ? std::string()
                        : secret.empty()    ? RandomHex(16)
                                            : secret;
  if (gateway_id.empty() && (s.size() < 8 || s.size() > 128)) {
    throw ApiError(400, "secret: 8-128 characters");
  }
  Transaction tx(db_);
  if (db_.Prepare("SELECT 1 FROM devices WHERE device_id = ?").Bind(1, id).Step()) {
    throw ApiError(409, "device " + id + " exists");
  }
  Statement ins = db_.Prepare(
      "INSERT INTO devices (device_id, product_id, node_id, created_at, gateway_id, generation) "
      "VALUES (?, ?, ?, ?, ?, ?)");
  ins.Bind(1, id).Bind(2, product_id).Bind(3, node_id).Bind(4, Now()).Bind(6, NextGeneration());
  if (gateway_id.empty()) {
    ins.BindNull(5);
  } else {
    ins.Bind(5, gateway_id);
  }
  ins.Run();
  std::string error;
  // A sub-device gets no broker credential: the broker refuses any login as it.
  if (gateway_id.empty() && !broker::PutCredential(db_.handle(), box_, id, s, true, &error)) {
    throw DbError("broker credential: " + error);
  }
  tx.Commit();
  return {GetDevice(id), s};
}

namespace {

// Column 10 is the gateway, 11 whether the device is online (DeviceOnlineSql).
std::string DeviceColumns() {
  return "SELECT d.device_id, d.product_id, d.node_id, d.enabled, d.online, d.last_seen, "
         "d.fw_version, d.sw_version, d.presence_seq, (SELECT group_concat(group_name, char(31)) "
         "FROM (SELECT group_name FROM device_groups g WHERE g.device_id = d.device_id ORDER BY "
         "group_name)), COALESCE(d.gateway_id, ''), " +
         DeviceOnlineSql(Now()) +
         " FROM devices d LEFT JOIN devices gw ON gw.device_id = d.gateway_id ";
}

Device DeviceFromRow(Statement& st) {
  Device d{st.Text(0), st.Text(1), st.Text(2), st.Int(3) != 0, st.Int(11) != 0, st.Int(5),
           st.Text(6), st.Text(7), {},         st.Text(10)};
  const std::string groups = st.Text(9);
  for (size_t start = 0; !groups.empty() && start <= groups.size();) {
    const size_t end = std::min(groups.find('\x1f', start), groups.size());
    d.groups.push_back(groups.substr(start, end - start));
    start = end + 1;
  }
  return d;
}

}  // namespace

std::string DeviceOnlineSql(int64_t now) {
  const std::string cut = std::to_string(now - kOnlineSeconds);
  return "(CASE WHEN d.gateway_id IS NULL THEN d.online != 0 AND (d.presence_seq > 0 OR "
         "COALESCE(d.last_seen, 0) > " +
         cut +
         ") ELSE d.online != 0 AND COALESCE(gw.online, 0) != 0 AND (gw.presence_seq > 0 OR "
         "COALESCE(gw.last_seen, 0) > " +
         cut + ") END)";
}

Device Registry::GetDevice(const std::string& device_id) {
  Statement st = db_.Prepare(DeviceColumns() + "WHERE d.device_id = ?");
  st.Bind(1, device_id);
  if (!st.Step()) throw ApiError(404, "no device " + device_id);
  return DeviceFromRow(st);
}

std::vector<Device> Registry::ListDevices(const std::string& product_id, const std::string& group) {
  DeviceFilter f;
  f.product_id = product_id;
  f.group = group;
  return FindDevices(f);
}

std::vector<Device> Registry::FindDevices(const DeviceFilter& f, int64_t* total) {
  // Each filter adds a condition and its bind; the same WHERE counts and pages.
  std::string where = "WHERE 1";
  std::vector<std::string> binds;
  if (!f.q.empty()) {
    std::string q = f.q;
    for (char& c : q)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    where += " AND (instr(lower(d.device_id), ?) > 0 OR instr(lower(d.node_id), ?) > 0)";
    binds.push_back(q);
    binds.push_back(q);
  }
  if (!f.product_id.empty()) {
    where += " AND d.product_id = ?";
    binds.push_back(f.product_id);
  }
  if (!f.group.empty()) {
    where += " AND d.device_id IN (SELECT device_id FROM device_groups WHERE group_name = ?)";
    binds.push_back(f.group);
  }
  if (f.version) {
    if (f.version->empty()) {
      where += " AND (d.fw_version IS NULL OR d.fw_version = '')";
    } else {
      where += " AND d.fw_version = ?";
      binds.push_back(*f.version);
    }
  }
  if (f.online) where += std::string(" AND ") + (*f.online ? "" : "NOT ") + DeviceOnlineSql(Now());
  const auto bind_all = [&binds](Statement& st) {
    for (size_t i = 0; i < binds.size(); ++i)
      st.Bind(static_cast<int>(i + 1), binds[i]);
  };
  if (total != nullptr) {
    Statement count = db_.Prepare(
        "SELECT COUNT(*) FROM devices d LEFT JOIN devices gw ON gw.device_id = d.gateway_id " +
        where);
    bind_all(count);
    *total = count.Step() ? count.Int(0) : 0;
  }
  Statement st = db_.Prepare(DeviceColumns() + where + " ORDER BY d.device_id LIMIT ? OFFSET ?");
  bind_all(st);
  st.Bind(static_cast<int>(binds.size() + 1), f.limit);
  st.Bind(static_cast<int>(binds.size() + 2), f.offset);
  std::vector<Device> out;
  while (st.Step())
    out.push_back(DeviceFromRow(st));
  return out;
}

std::vector<std::string> Registry::DeviceIds(const std::string& product_id,
                                             const std::string& group) {
  Statement st = db_.Prepare(
      "SELECT device_id FROM devices WHERE (?1 = '' OR product_id = ?1) AND (?2 = '' OR "
      "device_id IN (SELECT device_id FROM device_groups WHERE group_name = ?2)) "
      "ORDER BY device_id");
  st.Bind(1, product_id).Bind(2, group);
  std::vector<std::string> ids;
  while (st.Step())
    ids.push_back(st.Text(0));
  return ids;
}

void Registry::SetDeviceEnabled(const std::string& device_id, bool enabled) {
  Transaction tx(db_);
  const bool sub = !GetDevice(device_id).gateway_id.empty();
  db_.Prepare("UPDATE devices SET enabled = ? WHERE device_id = ?")
      .Bind(1, enabled)
      .Bind(2, device_id)
      .Run();
  std::string error;
  if (!sub && !broker::SetCredentialEnabled(db_.handle(), device_id, enabled, &error)) {
    throw DbError("broker credential: " + error);
  }
  if (!sub && !enabled) QueueDisconnect(device_id);
  tx.Commit();
}

void Registry::AddToGroup(const std::string& device_id, const std::string& group) {
  if (!IsName(group)) throw ApiError(400, "group: 1-64 characters of A-Z a-z 0-9 _ -");
  GetDevice(device_id);
  db_.Prepare("INSERT OR IGNORE INTO device_groups (group_name, device_id) VALUES (?, ?)")
      .Bind(1, group)
      .Bind(2, device_id)
      .Run();
}

void Registry::RemoveFromGroup(const std::string& device_id, const std::string& group) {
  GetDevice(device_id);
  if (db_.Prepare("DELETE FROM device_groups WHERE group_name = ? AND device_id = ?")
          .Bind(1, group)
          .Bind(2, device_id)
          .Run() == 0) {
    throw ApiError(404, "device " + device_id + " is not in group " + group);
  }
}

void Registry::DeleteDevice(const std::string& device_id) {
  Transaction tx(db_);
  const bool sub = !GetDevice(device_id).gateway_id.empty();
  if (db_.Prepare("SELECT 1 FROM devices WHERE gateway_id = ?").Bind(1, device_id).Step()) {
    throw ApiError(409,
                   "device " + device_id + " is a gateway with sub-devices: delete them first");
  }
  Statement open = db_.Prepare(
      "SELECT task_id FROM task_devices WHERE device_id = ? AND status IN ('Waiting', "
      "'Processing', 'FailWaitRetry')");
  if (open.Bind(1, device_id).Step()) {
    throw ApiError(409, "device " + device_id + " is in open task " + std::to_string(open.Int(0)) +
                            ": cancel it first");
  }
  // Queued messages to it (a task's, or a message request's) are never sent.
  db_.Prepare(
         "DELETE FROM outbox WHERE device_id = ?1 OR id IN (SELECT outbox_id FROM "
         "device_requests WHERE device_id = ?1 AND outbox_id IS NOT NULL)")
      .Bind(1, device_id)
      .Run();
  db_.Prepare("DELETE FROM task_devices WHERE device_id = ?").Bind(1, device_id).Run();
  // Groups, properties, logs, shadow versions and requests go with it (ON DELETE CASCADE).
  db_.Prepare("DELETE FROM devices WHERE device_id = ?").Bind(1, device_id).Run();
  std::string error;
  // A sub-device has none.
  if (!sub && !broker::DeleteCredential(db_.handle(), device_id, &error)) {
    throw DbError("broker credential: " + error);
  }
  if (!sub) QueueDisconnect(device_id);
  tx.Commit();
}

std::string Registry::RotateSecret(const std::string& device_id, const std::string& secret) {
  Transaction tx(db_);
  const Device d = GetDevice(device_id);
  if (!d.gateway_id.empty()) throw ApiError(400, "a sub-device has no secret: it never logs in");
  const std::string s = secret.empty() ? RandomHex(16) : secret;
  if (s.size() < 8 || s.size() > 128) throw ApiError(400, "secret: 8-128 characters");
  std::string error;
  // Replaces the sealed secret in the table the broker reads at every login.
  if (!broker::PutCredential(db_.handle(), box_, device_id, s, d.enabled, &error)) {
    throw DbError("broker credential: " + error);
  }
  // Download tokens issued before are refused from the commit on (docs/server.md); an upgrade
  // under way gets its command again at the next tick, with a token of the new generation.
  db_.Prepare("UPDATE devices SET generation = ? WHERE device_id = ?")
      .Bind(1, NextGeneration())
      .Bind(2, device_id)
      .Run();
  db_.Prepare(
         "UPDATE task_devices SET resend_due = 1, next_at = 0 WHERE device_id = ? AND "
         "status = 'Processing'")
      .Bind(1, device_id)
      .Run();
  QueueDisconnect(device_id);
  tx.Commit();
  return s;
}

void Registry::RemoveProductKey(const std::string& product_id, const std::string& key_id) {
  GetProduct(product_id);
  if (db_.Prepare("DELETE FROM product_keys WHERE product_id = ? AND key_id = ?")
          .Bind(1, product_id)
          .Bind(2, key_id)
          .Run() == 0) {
    throw ApiError(404, "product " + product_id + " has no key " + key_id);
  }
}

bool Registry::MarkSeen(const std::string& device_id) {
  // Traffic says online only where the broker sends no presence events; a sub-device's
  // status comes from its gateway.
  return db_.Prepare(
                "UPDATE devices SET last_seen = ?, online = (CASE WHEN presence_seq > 0 OR "
                "gateway_id IS NOT NULL THEN online ELSE 1 END) WHERE device_id = ?")
             .Bind(1, Now())
             .Bind(2, device_id)
             .Run() == 1;
}

std::vector<std::string> Registry::SubDeviceIds(const std::string& gateway_id) {
  Statement st =
      db_.Prepare("SELECT device_id FROM devices WHERE gateway_id = ? ORDER BY device_id");
  st.Bind(1, gateway_id);
  std::vector<std::string> ids;
  while (st.Step())
    ids.push_back(st.Text(0));
  return ids;
}

bool Registry::IsSubDeviceOf(const std::string& device_id, const std::string& gateway_id) {
  return db_.Prepare("SELECT 1 FROM devices WHERE device_id = ? AND gateway_id = ?")
      .Bind(1, device_id)
      .Bind(2, gateway_id)
      .Step();
}

bool Registry::SetSubDeviceOnline(const std::string& gateway_id, const std::string& device_id,
                                  bool online) {
  return db_.Prepare(
                "UPDATE devices SET online = ?, last_seen = ? WHERE device_id = ? AND "
                "gateway_id = ?")
             .Bind(1, online)
             .Bind(2, Now())
             .Bind(3, device_id)
             .Bind(4, gateway_id)
             .Run() == 1;
}

void Registry::PresenceUnknown() {
  db_.Exec("UPDATE devices SET presence_seq = 0 WHERE presence_seq > 0");
}

bool Registry::ApplyPresence(const std::string& device_id, bool connected, int64_t seq) {
  // A connect must be newer than anything applied; a disconnect may carry the seq of the
  // connect it ends (equal), but not an older one (a takeover's old connection).
  return db_.Prepare(
                "UPDATE devices SET online = ?1, presence_seq = ?2, last_seen = ?3 WHERE "
                "device_id = ?4 AND (presence_seq < ?2 OR (?1 = 0 AND presence_seq = ?2))")
             .Bind(1, connected)
             .Bind(2, seq)
             .Bind(3, Now())
             .Bind(4, device_id)
             .Run() == 1;
}

void Registry::SetVersions(const std::string& device_id, const std::string& fw,
                           const std::string& sw) {
  // A version the report leaves out (the SDKs may send only one of them) stays as it was.
  db_.Prepare(
         "UPDATE devices SET fw_version = COALESCE(NULLIF(?, ''), fw_version), "
         "sw_version = COALESCE(NULLIF(?, ''), sw_version), last_seen = ? WHERE device_id = ?")
      .Bind(1, fw)
      .Bind(2, sw)
      .Bind(3, Now())
      .Bind(4, device_id)
      .Run();
}

const nlohmann::json& Registry::Model(const std::string& product_id) {
  auto it = models_.find(product_id);
  if (it == models_.end()) it = models_.emplace(product_id, GetProduct(product_id).model).first;
  return it->second;
}

void Registry::StoreProperties(const std::string& device_id, const nlohmann::json& report) {
  Statement dev = db_.Prepare("SELECT product_id FROM devices WHERE device_id = ?");
  dev.Bind(1, device_id);
  if (!dev.Step()) throw ApiError(404, "no device " + device_id);
  const nlohmann::json& model = Model(dev.Text(0));
  if (!report.is_object() || !report.contains("services") || !report["services"].is_array()) {
    throw ApiError(400, "properties report: expected {\"services\": [...]}");
  }
  struct Row {
    std::string service, name, value, time;
  };
  std::vector<Row> rows;
  std::vector<std::string> services;
  int64_t replaced_times = 0;
  for (const auto& svc : report["services"]) {
    if (!svc.is_object() || !svc.contains("service_id") || !svc["service_id"].is_string() ||
        !svc.contains("properties") || !svc["properties"].is_object()) {
      throw ApiError(400, "properties report: a service needs service_id and properties");
    }
    const std::string service = svc["service_id"];
    const nlohmann::json* model_service = nullptr;
    for (const auto& ms : model["services"]) {
      if (ms["service_id"] == service) model_service = &ms;
    }
    if (model_service == nullptr) {
      throw ApiError(400, "properties report: service " + service + " is not in the model");
    }
    // Missing, null or malformed (the SDKs send all three) never refuses a report.
    const int64_t received = Now();
    const nlohmann::json given =
        svc.contains("event_time") ? svc["event_time"] : nlohmann::json(nullptr);
    const int64_t sent = ParseEventTime(given).value_or(-1);
    const bool usable = sent >= 0 && sent <= received + kEventTimeFutureSeconds;
    if (!given.is_null() && !usable) ++replaced_times;
    const std::string time = FormatEventTime(usable ? sent : received);
    for (const auto& [name, value] : svc["properties"].items()) {
      std::string type;
      for (const auto& p : (*model_service)["properties"]) {
        if (p["name"] == name) type = p["type"];
      }
      if (type.empty()) {
        throw ApiError(400, "properties report: " + service + "." + name + " is not in the model");
      }
      if (!TypeMatches(type, value)) {
        throw ApiError(400, "properties report: " + service + "." + name + " must be " + type);
      }
      rows.push_back({service, name, value.dump(), time});
    }
    services.push_back(service);
  }
  Transaction tx(db_);
  for (const Row& r : rows) {
    db_.Prepare(
           "INSERT INTO properties (device_id, service_id, name, value, event_time, received_at) "
           "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(device_id, service_id, name) DO UPDATE SET "
           "value = excluded.value, event_time = excluded.event_time, "
           "received_at = excluded.received_at")
        .Bind(1, device_id)
        .Bind(2, r.service)
        .Bind(3, r.name)
        .Bind(4, r.value)
        .Bind(5, r.time)
        .Bind(6, Now())
        .Run();
  }
  // The shadow's version: one more for each report that names the service.
  for (const std::string& service : services) {
    db_.Prepare(
           "INSERT INTO shadow_versions (device_id, service_id, version) VALUES (?, ?, 1) "
           "ON CONFLICT(device_id, service_id) DO UPDATE SET version = version + 1")
        .Bind(1, device_id)
        .Bind(2, service)
        .Run();
  }
  if (replaced_times > 0) Count("property_event_time_replaced", replaced_times);
  tx.Commit();
}

nlohmann::json Registry::Properties(const std::string& device_id) {
  GetDevice(device_id);
  nlohmann::json out = nlohmann::json::object();
  Statement st = db_.Prepare(
      "SELECT service_id, name, value, event_time FROM properties WHERE device_id = ? "
      "ORDER BY service_id, name");
  st.Bind(1, device_id);
  while (st.Step()) {
    out[st.Text(0)][st.Text(1)] = nlohmann::json::parse(st.Text(2));
  }
  return out;
}

nlohmann::json Registry::Shadow(const std::string& device_id, const std::string& service_id) {
  nlohmann::json out = nlohmann::json::array();
  Statement st = db_.Prepare(
      "SELECT p.service_id, p.name, p.value, p.event_time, v.version FROM properties p "
      "LEFT JOIN shadow_versions v ON v.device_id = p.device_id AND v.service_id = p.service_id "
      "WHERE p.device_id = ?1 AND (?2 = '' OR p.service_id = ?2) ORDER BY p.service_id, p.name");
  st.Bind(1, device_id).Bind(2, service_id);
  while (st.Step()) {
    if (out.empty() || out.back()["service_id"] != st.Text(0)) {
      out.push_back({{"service_id", st.Text(0)},
                     {"reported", {{"properties", nlohmann::json::object()}, {"event_time", ""}}},
                     {"version", st.IsNull(4) ? 0 : st.Int(4)}});
    }
    nlohmann::json& reported = out.back()["reported"];
    reported["properties"][st.Text(1)] = nlohmann::json::parse(st.Text(2));
    // The service's time is its newest property's (all in one form, so they sort as text).
    if (st.Text(3) > reported["event_time"].get<std::string>()) reported["event_time"] = st.Text(3);
  }
  return out;
}

void Registry::SetSdkInfo(const std::string& device_id, const nlohmann::json& info) {
  db_.Prepare("UPDATE devices SET sdk_info = ? WHERE device_id = ?")
      .Bind(1, info.dump())
      .Bind(2, device_id)
      .Run();
}

nlohmann::json Registry::SdkInfo(const std::string& device_id) {
  Statement st = db_.Prepare("SELECT sdk_info FROM devices WHERE device_id = ?");
  st.Bind(1, device_id);
  if (!st.Step()) throw ApiError(404, "no device " + device_id);
  if (st.IsNull(0)) return nullptr;
  return nlohmann::json::parse(st.Text(0), nullptr, false);
}

void Registry::AddDeviceLogs(const std::string& device_id, const std::vector<LogLine>& lines) {
  if (lines.empty()) return;
  // Only the newest kMaxDeviceLogs could be kept: a message full of lines writes no more.
  const size_t skip =
      lines.size() > static_cast<size_t>(kMaxDeviceLogs) ? lines.size() - kMaxDeviceLogs : 0;
  for (size_t i = skip; i < lines.size(); ++i) {
    db_.Prepare(
           "INSERT INTO device_logs (device_id, type, content, device_time, received_at) "
           "VALUES (?, ?, ?, ?, ?)")
        .Bind(1, device_id)
        .Bind(2, lines[i].type)
        .Bind(3, lines[i].content)
        .Bind(4, lines[i].timestamp)
        .Bind(5, Now())
        .Run();
  }
  db_.Prepare(
         "DELETE FROM device_logs WHERE device_id = ?1 AND log_id <= (SELECT log_id FROM "
         "device_logs WHERE device_id = ?1 ORDER BY log_id DESC LIMIT 1 OFFSET ?2)")
      .Bind(1, device_id)
      .Bind(2, kMaxDeviceLogs)
      .Run();
}

nlohmann::json Registry::DeviceLogs(const std::string& device_id) {
  GetDevice(device_id);
  nlohmann::json out = nlohmann::json::array();
  Statement st = db_.Prepare(
      "SELECT type, content, device_time, received_at FROM device_logs WHERE device_id = ? "
      "ORDER BY log_id");
  st.Bind(1, device_id);
  while (st.Step()) {
    out.push_back({{"type", st.Text(0)},
                   {"content", st.Text(1)},
                   {"timestamp", st.Text(2)},
                   {"received_at", st.Int(3)}});
  }
  return out;
}

std::optional<broker::DeviceCredential> Registry::Credential(const std::string& device_id) {
  Statement st =
      db_.Prepare("SELECT secret_sealed, enabled FROM broker_credentials WHERE device_id = ?");
  st.Bind(1, device_id);
  if (!st.Step()) return std::nullopt;
  std::optional<std::string> secret = box_.Open(st.Blob(0));
  if (!secret) return std::nullopt;
  return broker::DeviceCredential{std::move(*secret), st.Int(1) != 0};
}

int64_t Registry::Generation(const std::string& device_id) {
  Statement st = db_.Prepare("SELECT generation FROM devices WHERE device_id = ?");
  st.Bind(1, device_id);
  if (!st.Step()) throw ApiError(404, "no device " + device_id);
  return st.Int(0);
}

int64_t Registry::NextGeneration() {
  Count("device_generation");
  return Counter("device_generation");
}

void Registry::QueueDisconnect(const std::string& device_id) {
  Outbox(db_).Add({std::string(broker::kDisconnectTopic), device_id}, Now());
}

void Registry::Count(const std::string& counter, int64_t by) {
  db_.Prepare(
         "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
         "value = value + excluded.value")
      .Bind(1, counter)
      .Bind(2, by)
      .Run();
}

int64_t Registry::Counter(const std::string& counter) {
  Statement st = db_.Prepare("SELECT value FROM counters WHERE name = ?");
  st.Bind(1, counter);
  return st.Step() ? st.Int(0) : 0;
}

}  // namespace ota::server
