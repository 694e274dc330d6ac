#include "ota/server/device_requests.hpp"

#include <openssl/rand.h>

#include <chrono>
#include <ctime>

#include "ota/server/hex.hpp"

namespace ota::server {

namespace {

using nlohmann::json;

int64_t Now() {
  return static_cast<int64_t>(std::time(nullptr));
}

// How long a message may wait in the outbox (Service's kOutboxKeepSeconds): its "deadline".
constexpr int64_t kMessageKeepSeconds = 600;
constexpr size_t kMaxNameLength = 128;

const char* KindName(DownKind kind) {
  switch (kind) {
    case DownKind::kCommand:
      return "command";
    case DownKind::kPropertiesSet:
      return "properties_set";
    case DownKind::kPropertiesGet:
      return "properties_get";
    case DownKind::kMessage:
      break;
  }
  return "message";
}

std::string NewRequestId() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof(raw)) != 1) throw ApiError(500, "no random bytes");
  return ToHex(raw);
}

bool TypeMatches(const std::string& type, const json& v) {
  if (type == "int") return v.is_number_integer();
  if (type == "decimal") return v.is_number();
  if (type == "string") return v.is_string();
  if (type == "bool") return v.is_boolean();
  return false;
}

std::string Name(const json& b, const char* key, bool required) {
  if (!b.contains(key) || b[key].is_null()) {
    if (required) throw ApiError(400, std::string(key) + " is required");
    return {};
  }
  if (!b[key].is_string() || b[key].get<std::string>().empty() ||
      b[key].get<std::string>().size() > kMaxNameLength) {
    throw ApiError(400, std::string(key) + ": a string of 1-128 characters");
  }
  return b[key];
}

json Object(const json& b, const char* key) {
  if (!b.contains(key) || b[key].is_null()) return json::object();
  if (!b[key].is_object()) throw ApiError(400, std::string(key) + " must be an object");
  return b[key];
}

int Timeout(const json& b) {
  if (!b.contains("timeout_s") || b["timeout_s"].is_null()) return kDefaultRequestTimeout;
  const json& t = b["timeout_s"];
  if (!t.is_number_integer() || t.get<int64_t>() < 1 || t.get<int64_t>() > kMaxRequestTimeout) {
    throw ApiError(400, "timeout_s: 1.." + std::to_string(kMaxRequestTimeout));
  }
  return t.get<int>();
}

const json* ModelService(const json& model, const std::string& service_id) {
  for (const json& s : model["services"]) {
    if (s["service_id"] == service_id) return &s;
  }
  return nullptr;
}

// `values` (name -> value) against `declared` ([{name, type, required?}]).
void CheckValues(const std::string& what, const json& declared, const json& values,
                 bool check_required) {
  for (const auto& [name, value] : values.items()) {
    const json* decl = nullptr;
    for (const json& d : declared) {
      if (d.is_object() && d.contains("name") && d["name"] == name) decl = &d;
    }
    if (decl == nullptr) throw ApiError(400, what + "." + name + " is not in the model");
    const std::string type = decl->contains("type") && (*decl)["type"].is_string()
                                 ? (*decl)["type"].get<std::string>()
                                 : std::string();
    if (!TypeMatches(type, value)) throw ApiError(400, what + "." + name + " must be " + type);
  }
  if (!check_required) return;
  for (const json& d : declared) {
    if (d.is_object() && d.contains("required") && d["required"] == true && d.contains("name") &&
        d["name"].is_string() && !values.contains(d["name"].get<std::string>())) {
      throw ApiError(400, what + "." + d["name"].get<std::string>() + " is required");
    }
  }
}

// A model "declares commands" when any service has a "commands" array
// ([{command_name, paras?: [{name, type, required?}]}]); then only those may be sent.
void CheckCommand(const json& model, const std::string& service_id, const std::string& command_name,
                  const json& paras) {
  bool declared = false;
  for (const json& s : model["services"]) {
    declared = declared || (s.contains("commands") && s["commands"].is_array());
  }
  if (!declared) return;
  const json* service = ModelService(model, service_id);
  if (service == nullptr || !service->contains("commands") || !(*service)["commands"].is_array()) {
    throw ApiError(400, "service " + service_id + " has no commands in the model");
  }
  for (const json& c : (*service)["commands"]) {
    if (!c.is_object() || !c.contains("command_name") || c["command_name"] != command_name) {
      continue;
    }
    if (c.contains("paras") && c["paras"].is_array()) {
      CheckValues(service_id + "." + command_name, c["paras"], paras, true);
    }
    return;
  }
  throw ApiError(400, "command " + service_id + "." + command_name + " is not in the model");
}

json ParseStored(const std::string& text) {
  return json::parse(text, nullptr, false);
}

}  // namespace

bool IsPlatformRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

DeviceRequests::DeviceRequests(Platform& platform, PublishFn publish, SendFn send)
    : platform_(platform), publish_(std::move(publish)), send_(std::move(send)) {}

json DeviceRequests::Command(const std::string& device_id, const json& body) {
  const std::string service_id = Name(body, "service_id", true);
  const std::string command_name = Name(body, "command_name", true);
  const json paras = Object(body, "paras");
  return Execute(DownKind::kCommand, device_id,
                 {{"service_id", service_id}, {"command_name", command_name}, {"paras", paras}},
                 Timeout(body),
                 [&](const json& model) { CheckCommand(model, service_id, command_name, paras); });
}

json DeviceRequests::SetProperties(const std::string& device_id, const json& body) {
  if (!body.contains("services") || !body["services"].is_array() || body["services"].empty()) {
    throw ApiError(400, "services: [{service_id, properties: {...}}] is required");
  }
  json services = json::array();
  for (const json& s : body["services"]) {
    if (!s.is_object()) throw ApiError(400, "services: each must be an object");
    const json props = Object(s, "properties");
    if (props.empty()) throw ApiError(400, "services: each needs properties to set");
    services.push_back({{"service_id", Name(s, "service_id", true)}, {"properties", props}});
  }
  return Execute(DownKind::kPropertiesSet, device_id, {{"services", services}}, Timeout(body),
                 [&](const json& model) {
                   for (const json& s : services) {
                     const std::string id = s["service_id"];
                     const json* ms = ModelService(model, id);
                     if (ms == nullptr)
                       throw ApiError(400, "service " + id + " is not in the model");
                     CheckValues(id, (*ms)["properties"], s["properties"], false);
                   }
                 });
}

json DeviceRequests::GetProperties(const std::string& device_id, const json& body) {
  const std::string service_id = Name(body, "service_id", false);
  json out = json::object();
  if (!service_id.empty()) out["service_id"] = service_id;
  return Execute(DownKind::kPropertiesGet, device_id, out, Timeout(body), [&](const json& model) {
    if (!service_id.empty() && ModelService(model, service_id) == nullptr) {
      throw ApiError(400, "service " + service_id + " is not in the model");
    }
  });
}

json DeviceRequests::Execute(DownKind kind, const std::string& device_id, const json& body,
                             int timeout_s, const Validator& validate) {
  const std::string id = NewRequestId();
  const Outgoing out = DeviceRequest(kind, device_id, id, body);
  if (out.payload.size() > kMaxDevicePayload) {
    throw ApiError(413, "the request is over " + std::to_string(kMaxDevicePayload) + " bytes");
  }
  const int64_t now = Now();
  bool online = false;
  {
    std::lock_guard<std::mutex> guard(platform_.lock());
    const Device d = platform_.registry().GetDevice(device_id);
    validate(platform_.registry().GetProduct(d.product_id).model);
    online = d.online;
    if (online) {
      std::lock_guard<std::mutex> w(wait_mutex_);
      if (waiting_.size() >= kMaxWaitingRequests) {
        throw ApiError(429, "too many requests waiting for devices; try again");
      }
      // Before the row exists: an answer that comes before the wait starts still wakes it.
      waiting_[id] = false;
    }
    try {
      Transaction tx(platform_.db());
      Insert(id, device_id, kind, out.payload, online ? "pending" : "device_offline", now,
             now + timeout_s, 0);
      tx.Commit();
    } catch (...) {
      Forget(id);
      throw;
    }
  }
  if (!online) {
    std::lock_guard<std::mutex> guard(platform_.lock());
    return Load(id);
  }
  if (!publish_(out)) {
    Forget(id);
    std::lock_guard<std::mutex> guard(platform_.lock());
    platform_.db()
        .Prepare(
            "UPDATE device_requests SET status = 'not_sent' WHERE request_id = ? AND "
            "status = 'pending'")
        .Bind(1, id)
        .Run();
    throw ApiError(503, "not connected to the broker: request " + id + " not sent");
  }
  {
    std::unique_lock<std::mutex> w(wait_mutex_);
    answered_cv_.wait_for(w, std::chrono::seconds(timeout_s),
                          [&] { return waiting_[id] || stopping_; });
    waiting_.erase(id);
  }
  std::lock_guard<std::mutex> guard(platform_.lock());
  // Unanswered: it times out now; an answer after this is stored as late.
  platform_.db()
      .Prepare(
          "UPDATE device_requests SET status = 'timeout' WHERE request_id = ? AND status = "
          "'pending'")
      .Bind(1, id)
      .Run();
  return Load(id);
}

json DeviceRequests::Message(const std::string& device_id, const json& body) {
  if (!body.contains("content") || body["content"].is_null()) {
    throw ApiError(400, "content is required");
  }
  const std::string id = NewRequestId();
  json msg = {{"id", id}, {"content", body["content"]}};
  const std::string name = Name(body, "name", false);
  if (!name.empty()) msg["name"] = name;
  const Outgoing out = DeviceRequest(DownKind::kMessage, device_id, id, msg);
  if (out.payload.size() > kMaxDevicePayload) {
    throw ApiError(413, "the message is over " + std::to_string(kMaxDevicePayload) + " bytes");
  }
  const int64_t now = Now();
  std::vector<QueuedMessage> queued;
  json row;
  {
    std::lock_guard<std::mutex> guard(platform_.lock());
    const Device d = platform_.registry().GetDevice(device_id);
    Transaction tx(platform_.db());
    if (d.online) {
      // Row and outbox message commit together: the message is sent, or neither exists.
      queued.push_back(platform_.outbox().Add(out, now));
      Insert(id, device_id, DownKind::kMessage, out.payload, "pending", now,
             now + kMessageKeepSeconds, queued.back().id);
    } else {
      Insert(id, device_id, DownKind::kMessage, out.payload, "device_offline", now, now, 0);
    }
    tx.Commit();
    row = Load(id);
  }
  send_(queued);
  return row;
}

void DeviceRequests::Insert(const std::string& request_id, const std::string& device_id,
                            DownKind kind, const std::string& payload, const std::string& status,
                            int64_t now, int64_t deadline, int64_t outbox_id) {
  Statement st = platform_.db().Prepare(
      "INSERT INTO device_requests (request_id, device_id, kind, request, status, created_at, "
      "deadline, outbox_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  st.Bind(1, request_id)
      .Bind(2, device_id)
      .Bind(3, KindName(kind))
      .Bind(4, payload)
      .Bind(5, status)
      .Bind(6, now)
      .Bind(7, deadline);
  if (outbox_id != 0) {
    st.Bind(8, outbox_id);
  } else {
    st.BindNull(8);
  }
  st.Run();
  // The device's history is bounded; requests still open are kept.
  platform_.db()
      .Prepare(
          "DELETE FROM device_requests WHERE device_id = ?1 AND status <> 'pending' AND seq <= "
          "(SELECT seq FROM device_requests WHERE device_id = ?1 ORDER BY seq DESC LIMIT 1 "
          "OFFSET ?2)")
      .Bind(1, device_id)
      .Bind(2, kRequestsKeptPerDevice)
      .Run();
}

namespace {

constexpr const char* kColumns =
    "SELECT request_id, device_id, kind, status, request, response, created_at, deadline, "
    "answered_at FROM device_requests ";

json RowJson(Statement& st) {
  json request = ParseStored(st.Text(4));
  if (request.is_object()) request.erase("object_device_id");
  json j = {{"request_id", st.Text(0)},
            {"device_id", st.Text(1)},
            {"kind", st.Text(2)},
            {"status", st.Text(3)},
            {"request", request},
            {"response", st.IsNull(5) ? json(nullptr) : ParseStored(st.Text(5))},
            {"created_at", st.Int(6)},
            {"deadline", st.Int(7)},
            {"answered_at", st.IsNull(8) ? json(nullptr) : json(st.Int(8))}};
  if (j["kind"] == "command") j["command_id"] = j["request_id"];
  if (j["kind"] == "message") j["message_id"] = j["request_id"];
  return j;
}

}  // namespace

json DeviceRequests::Load(const std::string& request_id) {
  Statement st = platform_.db().Prepare(std::string(kColumns) + "WHERE request_id = ?");
  st.Bind(1, request_id);
  if (!st.Step()) throw ApiError(404, "no request " + request_id);
  return RowJson(st);
}

json DeviceRequests::Get(const std::string& device_id, const std::string& request_id) {
  Statement st =
      platform_.db().Prepare(std::string(kColumns) + "WHERE request_id = ? AND device_id = ?");
  st.Bind(1, request_id).Bind(2, device_id);
  if (!st.Step()) throw ApiError(404, "no request " + request_id + " for " + device_id);
  return RowJson(st);
}

json DeviceRequests::List(const std::string& device_id, const std::string& kind, int64_t limit,
                          int64_t offset) {
  platform_.registry().GetDevice(device_id);  // 404 for an unknown device
  if (limit < 1 || limit > 500) throw ApiError(400, "limit: 1..500");
  if (offset < 0) throw ApiError(400, "offset: 0 or more");
  Statement count = platform_.db().Prepare(
      "SELECT COUNT(*) FROM device_requests WHERE device_id = ?1 AND (?2 = '' OR kind = ?2)");
  count.Bind(1, device_id).Bind(2, kind);
  const int64_t total = count.Step() ? count.Int(0) : 0;
  Statement st = platform_.db().Prepare(
      std::string(kColumns) +
      "WHERE device_id = ?1 AND (?2 = '' OR kind = ?2) ORDER BY seq DESC LIMIT ?3 OFFSET ?4");
  st.Bind(1, device_id).Bind(2, kind).Bind(3, limit).Bind(4, offset);
  json items = json::array();
  while (st.Step())
    items.push_back(RowJson(st));
  return {{"total", total}, {"limit", limit}, {"offset", offset}, {"items", items}};
}

void DeviceRequests::OnResponse(const UpTopic& up, const std::string& payload, int64_t now) {
  if (!IsPlatformRequestId(up.request_id)) {
    throw ApiError(400, "request_id: 1-64 characters of A-Z a-z 0-9 _ -");
  }
  const DownKind kind = up.kind == UpKind::kCommandResponse         ? DownKind::kCommand
                        : up.kind == UpKind::kPropertiesSetResponse ? DownKind::kPropertiesSet
                                                                    : DownKind::kPropertiesGet;
  json j;
  try {
    j = json::parse(payload);
  } catch (const json::parse_error&) {
    throw ApiError(400, "not JSON");
  }
  if (!j.is_object()) throw ApiError(400, "an answer must be a JSON object");
  if (j.contains("result_code") && !j["result_code"].is_number_integer()) {
    throw ApiError(400, "result_code must be an integer");
  }
  // Matched by ID, kind and the device the topic names: another device's ID finds nothing.
  Statement st = platform_.db().Prepare(
      "SELECT status FROM device_requests WHERE request_id = ? AND device_id = ? AND kind = ?");
  st.Bind(1, up.request_id).Bind(2, up.device_id).Bind(3, KindName(kind));
  if (!st.Step()) {
    throw ApiError(404, std::string("no ") + KindName(kind) + " request " + up.request_id);
  }
  const std::string status = st.Text(0);
  if (status == "succeeded" || status == "late") {
    platform_.registry().Count("duplicate_responses");
    return;
  }
  if (status != "pending" && status != "timeout") {
    throw ApiError(409, "request " + up.request_id + " is " + status);
  }
  // The answer to a property get is a report too: stored only if it fits the model (else the
  // whole answer is refused, and the request times out).
  if (kind == DownKind::kPropertiesGet) platform_.registry().StoreProperties(up.device_id, j);
  platform_.db()
      .Prepare(
          "UPDATE device_requests SET status = ?, response = ?, answered_at = ? WHERE "
          "request_id = ?")
      .Bind(1, status == "pending" ? "succeeded" : "late")
      .Bind(2, j.dump())
      .Bind(3, now)
      .Bind(4, up.request_id)
      .Run();
  platform_.registry().Count("responses");
  {
    std::lock_guard<std::mutex> w(wait_mutex_);
    auto it = waiting_.find(up.request_id);
    if (it != waiting_.end()) it->second = true;
  }
  answered_cv_.notify_all();
}

void DeviceRequests::Forget(const std::string& request_id) {
  std::lock_guard<std::mutex> w(wait_mutex_);
  waiting_.erase(request_id);
}

void DeviceRequests::StopWaiting() {
  {
    std::lock_guard<std::mutex> w(wait_mutex_);
    stopping_ = true;
  }
  answered_cv_.notify_all();
}

void DeviceRequests::Tick(int64_t now) {
  platform_.db()
      .Prepare(
          "UPDATE device_requests SET status = 'timeout' WHERE status = 'pending' AND kind <> "
          "'message' AND deadline < ?")
      .Bind(1, now)
      .Run();
}

void DeviceRequests::OnOutboxAcked(const std::vector<int64_t>& outbox_ids, int64_t now) {
  if (outbox_ids.empty()) return;
  Transaction tx(platform_.db());
  Statement st = platform_.db().Prepare(
      "UPDATE device_requests SET status = 'delivered', answered_at = ?, outbox_id = NULL "
      "WHERE outbox_id = ? AND status = 'pending'");
  for (int64_t id : outbox_ids)
    st.Reset().Bind(1, now).Bind(2, id).Run();
  tx.Commit();
}

void DeviceRequests::OnOutboxExpired(const std::vector<int64_t>& outbox_ids, int64_t now) {
  if (outbox_ids.empty()) return;
  Transaction tx(platform_.db());
  Statement st = platform_.db().Prepare(
      "UPDATE device_requests SET status = 'expired', answered_at = ?, outbox_id = NULL "
      "WHERE outbox_id = ? AND status = 'pending'");
  for (int64_t id : outbox_ids)
    st.Reset().Bind(1, now).Bind(2, id).Run();
  tx.Commit();
}

}  // namespace ota::server
