// The OpenAPI 3.1 document of every route the server serves (docs/server.md, "REST API"),
// built from reusable pieces: components/schemas for what the handlers emit, and an Op builder
// per operation. openapi_test.cpp checks that its paths are exactly the routes HttpApi
// registers and that real answers match the schemas here. To document a new route: add an Op in
// Paths() (its parameters, body and every status it can answer), and a sample call in the test.
#include <string>

#include <nlohmann/json.hpp>

#include "ota/server/http_api.hpp"

namespace ota::server {
namespace {

using nlohmann::json;

json Ref(const std::string& name) {
  return {{"$ref", "#/components/schemas/" + name}};
}
json Type(const char* type, const char* description = nullptr) {
  json j = {{"type", type}};
  if (description != nullptr) j["description"] = description;
  return j;
}
json Str(const char* description = nullptr) {
  return Type("string", description);
}
json Int(const char* description = nullptr) {
  return Type("integer", description);
}
json Bool(const char* description = nullptr) {
  return Type("boolean", description);
}
json OrNull(const char* type, const char* description = nullptr) {
  json j = {{"type", {type, "null"}}};
  if (description != nullptr) j["description"] = description;
  return j;
}
json Enum(std::initializer_list<const char*> values, const char* description = nullptr) {
  json j = {{"type", "string"}, {"enum", json::array()}};
  for (const char* v : values)
    j["enum"].push_back(v);
  if (description != nullptr) j["description"] = description;
  return j;
}
json Array(json items) {
  return {{"type", "array"}, {"items", std::move(items)}};
}

// An object with these properties; `required` are always present; `closed`: nothing else is.
json Object(json properties, std::initializer_list<const char*> required = {},
            bool closed = false) {
  json j = {{"type", "object"}, {"properties", std::move(properties)}};
  if (required.size() > 0) {
    j["required"] = json::array();
    for (const char* r : required)
      j["required"].push_back(r);
  }
  if (closed) j["additionalProperties"] = false;
  return j;
}
// An answer object: every property listed is always emitted, and nothing else.
json Emitted(json properties) {
  json j = Object(std::move(properties), {}, true);
  j["required"] = json::array();
  for (const auto& [name, schema] : j["properties"].items())
    j["required"].push_back(name);
  return j;
}

const char* const kDeviceStates[] = {"Waiting", "Processing",    "Success",
                                     "Fail",    "FailWaitRetry", "Stopped"};

json Schemas() {
  json s;
  s["Error"] = Emitted({{"error", Str("what went wrong")}});
  s["ProductKey"] = Emitted({{"key_id", Str("the key's ID")}, {"may_downgrade", Bool()}});
  s["Model"] = Object(
      {{"services",
        Array(Object(
            {{"service_id", Str()},
             {"properties",
              Array(Object({{"name", Str()}, {"type", Enum({"int", "decimal", "string", "bool"})}},
                           {"name", "type"}))},
             {"commands", Array(Type("object"))}},
            {"service_id", "properties"}))}},
      {"services"});
  s["Product"] = Emitted({{"product_id", Str()},
                          {"name", Str()},
                          {"manufacturer", Str()},
                          {"protocol", Enum({"MQTT"})},
                          {"model", Ref("Model")},
                          {"keys", Array(Ref("ProductKey"))}});
  json device = Emitted({{"device_id", Str()},
                         {"product_id", Str()},
                         {"node_id", Str()},
                         {"enabled", Bool()},
                         {"online", Bool()},
                         {"last_seen", Int("epoch seconds; 0: never")},
                         {"fw_version", Str()},
                         {"sw_version", Str()},
                         {"groups", Array(Str())},
                         {"gateway_id", OrNull("string", "a sub-device's gateway")}});
  device["properties"]["sdk_info"] =
      OrNull("object",
             "only in GET /devices/{device_id}: the last $sdk_info report of a Huawei SDK "
             "(device_sdk_version, sw_version, fw_version, device_ip)");
  device["properties"]["secret"] =
      Str("only in the answer to POST /devices, never for a sub-device: shown once");
  s["Device"] = device;
  s["Package"] = Emitted({{"package_id", Int()},
                          {"product_id", Str()},
                          {"sha256", Str()},
                          {"size", Int()},
                          {"kind", Enum({"full", "diff"})},
                          {"version", Str()},
                          {"source_version", OrNull("string", "a diff's source version")},
                          {"key_id", Str()},
                          {"file_name", Str()},
                          {"description", Str()},
                          {"category", Enum({"firmware", "software"})}});
  s["DownloadGrant"] = Emitted({{"version", Str()},
                                {"url", Str("where the device downloads (the download listener)")},
                                {"access_token", Str("the bearer token for url")},
                                {"expires", Int("seconds from now")},
                                {"file_size", Int()},
                                {"file_name", Str()},
                                {"sign", Str("SHA-256 of the file, hex")}});
  json device_states = Enum({});
  for (const char* st : kDeviceStates)
    device_states["enum"].push_back(st);
  s["DeviceState"] = device_states;
  s["StateCounts"] = {{"type", "object"},
                      {"propertyNames", Ref("DeviceState")},
                      {"additionalProperties", Int()},
                      {"description", "devices per state; states with none are left out"}};
  s["Wave"] = Emitted({{"wave", Int("0-based")},
                       {"name", Str()},
                       {"failure_threshold_percent", Int()},
                       {"threshold_waived", Bool("resumed past its threshold")},
                       {"size", Int()},
                       {"counts", Ref("StateCounts")},
                       {"state", Enum({"pending", "active", "done"})}});
  s["TaskDevice"] = Emitted({{"device_id", Str()},
                             {"status", Ref("DeviceState")},
                             {"attempts", Int()},
                             {"progress", Int("percent")},
                             {"description", Str()},
                             {"wave", Int()},
                             {"commands", Int("firmware_upgrade commands sent")},
                             {"package_id", OrNull("integer")},
                             {"result_code", OrNull("integer", "the device's, when it reported")}});
  json task = Emitted(
      {{"task_id", Int()},
       {"product_id", Str()},
       {"name", Str()},
       {"kind", Enum({"firmware", "software"})},
       {"target_version", Str()},
       {"package_id", OrNull("integer", "null once the package was deleted")},
       {"start_at", Int()},
       {"deadline", Int()},
       {"retry_count", Int()},
       {"retry_interval", Int()},
       {"resend_interval", Int()},
       {"rate_per_minute", Int("0: no limit")},
       {"pause_reason", Str()},
       {"status", Enum({"Waiting", "Processing", "Success", "Fail", "PartialSuccess", "Stopped"})},
       {"state", Enum({"scheduled", "running", "paused", "finished", "cancelled"})},
       {"waves", Array(Ref("Wave"))},
       {"counts", Ref("StateCounts")}});
  task["properties"]["devices"] = Array(Ref("TaskDevice"));
  task["properties"]["devices"]["description"] =
      "only in GET /tasks/{task_id} without ?devices=false";
  s["Task"] = task;
  const json role = Enum({"admin", "operator", "viewer"});
  s["Session"] = Emitted({{"username", Str()},
                          {"role", role},
                          {"csrf_token", Str("send as X-CSRF-Token with every change")},
                          {"expires_at", Int("Unix seconds, as of now (idle or absolute)")}});
  s["User"] = Emitted({{"username", Str()},
                       {"role", role},
                       {"disabled", Bool()},
                       {"created_at", Int()},
                       {"last_login_at", OrNull("integer")}});
  const json bytes_of = Emitted({{"devices", Int()}, {"bytes", Int()}});
  s["TaskPreview"] = Emitted(
      {{"devices", Int("targets")},
       {"diff", bytes_of},
       {"full", bytes_of},
       {"up_to_date", Int("targets already on the version")},
       {"no_package", Int("targets with no package that fits")},
       {"in_open_tasks", Int("targets in another open task (POST /tasks: 409 unless supersede)")},
       {"waves", Array(Emitted({{"name", Str()}, {"devices", Int()}}))}});
  s["Overview"] = Emitted(
      {{"devices", Emitted({{"total", Int()}, {"online", Int()}})},
       {"versions", Array(Emitted({{"version", Str("\"\": never reported; \"(other)\": the rest "
                                                   "past the 20 largest")},
                                   {"devices", Int()}}))},
       {"products", Int()},
       {"packages", Int()},
       {"tasks", Emitted({{"open", Int()},
                          {"by_state", {{"type", "object"}, {"additionalProperties", Int()}}}})}});
  s["HistoryEntry"] = Object(
      {{"task_id", Int()},
       {"task_name", Str()},
       {"kind", Enum({"firmware", "software"})},
       {"target_version", Str()},
       {"state", Str()},
       {"result_code", Int()},
       {"result", Str()},
       {"package_id", Int()},
       {"diff", Bool()},
       {"updated_at", Int()},
       {"created_at", Int()}},
      {"task_id", "task_name", "kind", "target_version", "state", "updated_at", "created_at"},
      true);
  json request =
      Emitted({{"request_id", Str()},
               {"device_id", Str()},
               {"kind", Enum({"command", "properties_set", "properties_get", "message"})},
               {"status", Enum({"pending", "succeeded", "timeout", "late", "device_offline",
                                "not_sent", "delivered", "expired"})},
               {"request", Type("object", "the payload sent, without object_device_id")},
               {"response", OrNull("object", "the device's answer")},
               {"created_at", Int()},
               {"deadline", Int()},
               {"answered_at", OrNull("integer")}});
  request["properties"]["command_id"] = Str("commands: the request_id");
  request["properties"]["message_id"] = Str("messages: the request_id");
  s["DeviceRequest"] = request;
  const auto page = [](const char* item) {
    return Emitted(
        {{"total", Int()}, {"limit", Int()}, {"offset", Int()}, {"items", Array(Ref(item))}});
  };
  s["DeviceRequestPage"] = page("DeviceRequest");
  s["AuditEntry"] = Emitted({{"seq", Int()},
                             {"at", Int()},
                             {"actor", Str("token:HEX12, anonymous or cli")},
                             {"method", Str()},
                             {"route", Str("the route template, or the path if none")},
                             {"object_ids", Type("object")},
                             {"summary", Type("object", "body and query, secrets redacted")},
                             {"remote_addr", Str()},
                             {"status", Int()}});
  s["AuditPage"] = page("AuditEntry");
  const json scope = Enum({"read", "write", "admin", "broker"});
  s["Token"] = Emitted({{"id", Int()},
                        {"name", Str()},
                        {"scope", scope},
                        {"created", Int()},
                        {"expires", OrNull("integer")},
                        {"last_used", OrNull("integer", "to the minute")}});
  s["TokenCreated"] = Emitted({{"id", Int()},
                               {"name", Str()},
                               {"scope", scope},
                               {"created", Int()},
                               {"expires", OrNull("integer")},
                               {"token", Str("shown once; only its SHA-256 is stored")}});
  s["LogLine"] = Emitted({{"type", Str()},
                          {"content", Str()},
                          {"timestamp", Str("the device's")},
                          {"received_at", Int()}});
  s["BrokerVerdict"] = Object({{"result", Enum({"allow", "deny"})},
                               {"reason", Str("auth only: why (accepted, bad-password, ...)")}},
                              {"result"}, true);
  // Request bodies.
  s["ProductCreate"] = Object({{"product_id", Str("default: generated")},
                               {"name", Str()},
                               {"manufacturer", Str()},
                               {"protocol", Enum({"MQTT"})},
                               {"model", Ref("Model")}},
                              {"name"});
  s["DeviceCreate"] = Object({{"product_id", Str()},
                              {"node_id", Str()},
                              {"device_id", Str("default: {product_id}_{node_id}")},
                              {"secret", Str("default: generated; not for a sub-device")},
                              {"gateway_id", Str("makes it a sub-device (no secret)")}},
                             {"product_id", "node_id"});
  s["TaskCreate"] =
      Object({{"product_id", Str()},
              {"kind", Enum({"firmware", "software"})},
              {"name", Str()},
              {"target_version", Str()},
              {"package_id", Int()},
              {"devices", Array(Str())},
              {"groups", Array(Str())},
              {"whole_product", Bool()},
              {"start_at", Int()},
              {"deadline", Int()},
              {"retry_count", Int("0..5")},
              {"retry_interval", Int("seconds")},
              {"resend_interval", Int("seconds, >= 5 (60)")},
              {"supersede", Bool("take devices out of other open tasks")},
              {"rollout", Object({{"waves", Array(Object({{"name", Str()},
                                                          {"group", Str()},
                                                          {"percent", Int()},
                                                          {"devices", Array(Str())},
                                                          {"failure_threshold_percent", Int()}}))},
                                  {"failure_threshold_percent", Int()},
                                  {"rate_per_minute", Int()}})}},
             {"product_id"});
  return s;
}

// One operation. Operator-API operations take the operator token and may answer 401 and 500
// (and 403 when they change something: a read token's scope is too small); those and the 400
// of a body that is not JSON are added by Paths().
class Op {
 public:
  explicit Op(const char* summary) { j_["summary"] = summary; }
  Op& Query(const char* name, json schema, const char* description = nullptr) {
    json p = {{"name", name}, {"in", "query"}, {"schema", std::move(schema)}};
    if (description != nullptr) p["description"] = description;
    j_["parameters"].push_back(std::move(p));
    return *this;
  }
  Op& Body(json schema, bool required = true) {
    j_["requestBody"] = {{"required", required},
                         {"content", {{"application/json", {{"schema", std::move(schema)}}}}}};
    json_body_ = true;
    return *this;
  }
  Op& RawBody(const char* content_type, const char* description) {
    j_["requestBody"] = {{"required", true},
                         {"description", description},
                         {"content", {{content_type, json::object()}}}};
    return *this;
  }
  // A JSON answer.
  Op& Answer(int status, const char* description, json schema) {
    j_["responses"][std::to_string(status)] = {
        {"description", description},
        {"content", {{"application/json", {{"schema", std::move(schema)}}}}}};
    return *this;
  }
  Op& Answer(int status, const char* description, const char* schema) {
    return Answer(status, description, Ref(schema));
  }
  // An answer of another content type (checked by type, not by schema).
  Op& RawAnswer(int status, const char* description, const char* content_type) {
    return RawAnswers(status, description, {content_type});
  }
  Op& RawAnswers(int status, const char* description,
                 std::initializer_list<const char*> content_types) {
    json content = json::object();
    for (const char* type : content_types)
      content[type] = json::object();
    j_["responses"][std::to_string(status)] = {{"description", description},
                                               {"content", std::move(content)}};
    return *this;
  }
  // An answer without a body (204).
  Op& NoContent(int status, const char* description) {
    j_["responses"][std::to_string(status)] = {{"description", description}};
    return *this;
  }
  Op& Fails(int status, const char* description) { return Answer(status, description, "Error"); }
  Op& Security(json security) {
    j_["security"] = std::move(security);
    operator_token_ = false;
    return *this;
  }
  // Needs the admin scope (tokens): a read or write token gets 403 even for a GET.
  Op& Admin() {
    admin_ = true;
    return *this;
  }
  json Build(const std::string& method) && {
    if (operator_token_) {
      Fails(401, "Missing, unknown, expired or revoked operator token");
      if (method != "get" || admin_) Fails(403, "The token's scope is too small");
      Fails(500, "Internal error");
    }
    if (json_body_ && !j_["responses"].contains("400")) Fails(400, "The body is not a JSON object");
    return std::move(j_);
  }

 private:
  json j_ = {{"parameters", json::array()}, {"responses", json::object()}};
  bool json_body_ = false;
  bool operator_token_ = true;
  bool admin_ = false;
};

class Paths {
 public:
  // Path parameters come from the template: *_id of packages, tasks and tokens are integers.
  Paths& Add(const std::string& path, const std::string& method, Op op,
             const json& item_extra = json::object()) {
    json& item = paths_[path];
    if (!item.contains("parameters")) {
      item["parameters"] = json::array();
      for (size_t open = path.find('{'); open != std::string::npos;
           open = path.find('{', open + 1)) {
        const std::string name = path.substr(open + 1, path.find('}', open) - open - 1);
        const bool integer = name == "package_id" || name == "task_id" || name == "token_id";
        item["parameters"].push_back({{"name", name},
                                      {"in", "path"},
                                      {"required", true},
                                      {"schema", integer ? Int() : Str()}});
      }
    }
    item.update(item_extra);
    item[method] = std::move(op).Build(method);
    return *this;
  }
  json Take() && { return std::move(paths_); }

 private:
  json paths_ = json::object();
};

// A path served from the root, not under /api/v1.
json AtRoot(const char* description) {
  return {{"servers", {{{"url", "/"}, {"description", description}}}}};
}

json PathsJson() {
  Paths p;
  p.Add("/openapi.json", "get",
        std::move(Op("This document (OpenAPI 3.1)")
                      .Security(json::array())
                      .Answer(200, "The document",
                              Object({{"openapi", Str()}, {"paths", Type("object")}},
                                     {"openapi", "info", "paths"}))));
  // The web console's files (docs/server.md, "Web console"): no token; the page's API calls
  // carry the session.
  const json console = AtRoot("the operator API's listener: the web console");
  for (const char* page : {"/", "/index.html"}) {
    p.Add(page, "get",
          std::move(Op("The web console's page (a text page when the server was built without "
                       "it). gzip when accepted; ETag, If-None-Match: 304")
                        .Security(json::array())
                        .RawAnswers(200, "The page", {"text/html", "text/plain"})
                        .RawAnswer(304, "Not modified", "text/html")),
          console);
  }
  p.Add("/assets/{name}", "get",
        std::move(Op("A file of the web console ([A-Za-z0-9._-], 1-100 characters)")
                      .Security(json::array())
                      .RawAnswers(200, "The file", {"text/javascript", "text/css", "image/svg+xml"})
                      .RawAnswer(304, "Not modified", "text/javascript")
                      .Fails(404, "No such file")),
        console);
  p.Add("/metrics", "get",
        std::move(Op("Prometheus metrics (text exposition format 0.0.4; docs/server.md, "
                     "Metrics); the operator token unless serve --metrics-public")
                      .RawAnswer(200, "Metrics", "text/plain")),
        AtRoot("the operator API's listener"));
  p.Add("/audit", "get",
        std::move(Op("The audit log, latest first: operator actions that change something, "
                     "accepted or refused; the newest 100000 rows are kept")
                      .Query("limit", Int(), "1..1000 (100)")
                      .Query("offset", Int())
                      .Query("actor", Str(), "token:HEX12, anonymous or cli")
                      .Query("since", Int(), "epoch seconds")
                      .Answer(200, "A page of rows", "AuditPage")
                      .Fails(400, "Bad limit, offset or since")));

  // Products and their signing keys.
  p.Add("/products", "get",
        std::move(Op("List products").Answer(200, "Products", Array(Ref("Product")))));
  p.Add("/products", "post",
        std::move(Op("Create a product")
                      .Body(Ref("ProductCreate"))
                      .Answer(201, "Created", "Product")
                      .Fails(400, "Invalid (no name, a bad model)")
                      .Fails(409, "Exists")));
  p.Add("/products/{product_id}", "get",
        std::move(Op("One product").Answer(200, "The product", "Product").Fails(404, "Unknown")));
  p.Add("/products/{product_id}/keys", "post",
        std::move(
            Op("Register a P-256 public key (PEM) that may sign the product's packages")
                .Body(Object({{"public_pem", Str()}, {"may_downgrade", Bool()}}, {"public_pem"}))
                .Answer(201, "Registered", "ProductKey")
                .Fails(400, "Not a P-256 key")
                .Fails(404, "Unknown product")
                .Fails(409, "Already registered")));
  p.Add("/products/{product_id}/keys/{key_id}", "delete",
        std::move(Op("The key no longer signs the product's packages (stored packages stay)")
                      .Answer(200, "The product", "Product")
                      .Fails(404, "Unknown product or key")));
  p.Add("/products/{product_id}/packages", "post",
        std::move(
            Op("Upload a signed package. With ?category=software&version=V&signature=HEX: a "
               "software (SOTA) package, any file, with a detached DER ECDSA-SHA256 signature by "
               "a product key")
                .Query("file_name", Str())
                .Query("category", Enum({"firmware", "software"}), "default: firmware")
                .Query("version", Str(), "software only")
                .Query("signature", Str(), "software only: hex of a DER ECDSA signature")
                .RawBody("application/octet-stream", "the package file")
                .Answer(201, "Stored", "Package")
                .Fails(400, "Bad category, version or signature parameter")
                .Fails(404, "Unknown product")
                .Fails(409, "Duplicate")
                .Fails(413, "Over the size limit")
                .Fails(422, "Not a package, unsigned, or not signed by a key of the product")));

  // Devices.
  p.Add("/devices", "get",
        std::move(Op("List devices, sorted by device_id; header X-Total-Count: the matches before "
                     "paging")
                      .Query("q", Str("substring of device_id or node_id, any case"))
                      .Query("product_id", Str())
                      .Query("group", Str())
                      .Query("version", Str("exact firmware version; empty: never reported"))
                      .Query("online", Enum({"true", "false"}))
                      .Query("limit", Int(), "1..1000 (absent: all)")
                      .Query("offset", Int(), ">= 0")
                      .Answer(200, "Devices", Array(Ref("Device")))
                      .Fails(400, "A bad filter or paging value")));
  p.Add("/devices/{device_id}/history", "get",
        std::move(Op("The device's upgrade history, newest task first (at most 500)")
                      .Answer(200, "History", Array(Ref("HistoryEntry")))
                      .Fails(404, "Unknown")));
  p.Add("/overview", "get",
        std::move(Op("The fleet at a glance: devices, versions in the field, open tasks")
                      .Answer(200, "Overview", "Overview")));
  p.Add("/events", "get",
        std::move(Op("Server-Sent Events: `overview`, `task` (as GET /tasks/{task_id}?devices="
                     "false) and, with devices=1 or task=ID, `device`; `: ping` after 15 s "
                     "without an event (docs/server.md, Event stream)")
                      .Query("devices", Enum({"1"}), "also every device's changes")
                      .Query("task", Int(), "also this task's devices' changes")
                      .RawAnswer(200, "The stream", "text/event-stream")
                      .Fails(400, "A bad devices value")
                      .Fails(404, "Unknown task")
                      .Fails(429, "This token or user has 4 streams open (Retry-After)")
                      .Fails(503, "Too many open streams (Retry-After)")));
  p.Add("/devices", "post",
        std::move(Op("Register a device; the answer carries its secret, once; with gateway_id a "
                     "sub-device (no secret)")
                      .Body(Ref("DeviceCreate"))
                      .Answer(201, "Created", "Device")
                      .Fails(400,
                             "Invalid (a secret for a sub-device, a gateway that is a "
                             "sub-device)")
                      .Fails(404, "Unknown product or gateway")
                      .Fails(409, "Exists")));
  p.Add("/devices/{device_id}", "get",
        std::move(Op("One device, with sdk_info")
                      .Answer(200, "The device", "Device")
                      .Fails(404, "Unknown")));
  p.Add("/devices/{device_id}", "patch",
        std::move(Op("Enable or disable")
                      .Body(Object({{"enabled", Bool()}}, {"enabled"}))
                      .Answer(200, "The device", "Device")
                      .Fails(400, "No enabled")
                      .Fails(404, "Unknown")));
  p.Add(
      "/devices/{device_id}", "delete",
      std::move(Op("Delete a device: its broker credential goes at once, its download tokens "
                   "stop working; its groups, properties, logs, requests and rows of ended "
                   "tasks go with it")
                    .Answer(200, "Deleted", Emitted({{"deleted", Emitted({{"device_id", Str()}})}}))
                    .Fails(404, "Unknown")
                    .Fails(409, "In an open task, or a gateway with sub-devices")));
  p.Add("/devices/{device_id}/sub-devices", "get",
        std::move(Op("A gateway's sub-devices")
                      .Answer(200, "Devices", Array(Ref("Device")))
                      .Fails(404, "Unknown")));
  p.Add(
      "/devices/{device_id}/sub-devices", "post",
      std::move(Op("Register a sub-device of this gateway; it has no secret and never logs in")
                    .Body(Object({{"product_id", Str()}, {"node_id", Str()}, {"device_id", Str()}},
                                 {"product_id", "node_id"}))
                    .Answer(201, "Created", "Device")
                    .Fails(400, "Invalid")
                    .Fails(404, "Unknown gateway or product")
                    .Fails(409, "Exists")));
  p.Add("/devices/{device_id}/groups", "post",
        std::move(Op("Add to a group")
                      .Body(Object({{"group", Str()}}, {"group"}))
                      .Answer(200, "The device", "Device")
                      .Fails(400, "No group")
                      .Fails(404, "Unknown")));
  p.Add("/devices/{device_id}/groups/{group}", "delete",
        std::move(Op("Remove the device from a group")
                      .Answer(200, "The device", "Device")
                      .Fails(404, "Unknown device, or not in the group")));
  p.Add(
      "/devices/{device_id}/secret", "post",
      std::move(Op("Rotate the device secret: the broker accepts only the new one from then on "
                   "(connected sessions stay until they log in again)")
                    .Body(Object({{"secret", Str("8-128 characters; default: generated")}}), false)
                    .Answer(200, "The new secret, shown once",
                            Emitted({{"device_id", Str()}, {"secret", Str()}}))
                    .Fails(400, "A sub-device (no secret), or a secret outside 8-128 characters")
                    .Fails(404, "Unknown")));
  p.Add("/devices/{device_id}/logs", "get",
        std::move(Op("The device's newest $log lines (at most 100), oldest first")
                      .Answer(200, "Log lines", Array(Ref("LogLine")))
                      .Fails(404, "Unknown")));
  p.Add("/devices/{device_id}/properties", "get",
        std::move(Op("Latest reported properties by service")
                      .Answer(200, "{service_id: {name: value}}",
                              {{"type", "object"}, {"additionalProperties", Type("object")}})
                      .Fails(404, "Unknown")));
  const char* request_answer = "The stored request with its outcome";
  p.Add("/devices/{device_id}/properties", "put",
        std::move(Op("Set properties on the device and wait for its answer; checked against the "
                     "product model before anything is sent (sys/properties/set)")
                      .Body(Object({{"services", Array(Object({{"service_id", Str()},
                                                               {"properties", Type("object")}},
                                                              {"service_id", "properties"}))},
                                    {"timeout_s", Int("1..30 (20)")}},
                                   {"services"}))
                      .Answer(200, request_answer, "DeviceRequest")
                      .Fails(400, "Not in the model, wrong type")
                      .Fails(404, "Unknown device")
                      .Fails(413, "Too large")
                      .Fails(429, "Too many requests waiting")
                      .Fails(503, "No broker connection")));
  p.Add("/devices/{device_id}/properties/get", "post",
        std::move(Op("Ask the device for its properties now and wait; the answer is also stored "
                     "as a property report (sys/properties/get)")
                      .Body(Object({{"service_id", Str()}, {"timeout_s", Int("1..30 (20)")}}))
                      .Answer(200, request_answer, "DeviceRequest")
                      .Fails(400, "Service not in the model")
                      .Fails(404, "Unknown device")
                      .Fails(429, "Too many requests waiting")
                      .Fails(503, "No broker connection")));
  p.Add("/devices/{device_id}/commands", "post",
        std::move(Op("Send a command and wait for the device's answer; when the product model "
                     "declares commands, only those (and their typed paras) are allowed "
                     "(sys/commands)")
                      .Body(Object({{"service_id", Str()},
                                    {"command_name", Str()},
                                    {"paras", Type("object")},
                                    {"timeout_s", Int("1..30 (20)")}},
                                   {"service_id", "command_name"}))
                      .Answer(200,
                              "succeeded (response: the device's answer), timeout, or "
                              "device_offline at once",
                              "DeviceRequest")
                      .Fails(400, "Invalid or not in the model")
                      .Fails(404, "Unknown device")
                      .Fails(413, "Too large")
                      .Fails(429, "Too many requests waiting")
                      .Fails(503, "No broker connection")));
  const auto listing = [](const char* summary) {
    return std::move(Op(summary)
                         .Query("limit", Int(), "1..500 (50)")
                         .Query("offset", Int())
                         .Answer(200, "A page, latest first", "DeviceRequestPage")
                         .Fails(400, "Bad limit or offset")
                         .Fails(404, "Unknown device"));
  };
  p.Add("/devices/{device_id}/commands", "get",
        listing("Commands sent to the device and their results"));
  p.Add("/devices/{device_id}/messages", "post",
        std::move(
            Op("Send a message down; asynchronous: stored and queued (pending), delivered "
               "once the broker acknowledged it (expired if it never did within 10 min); "
               "device_offline when the device is not connected (sys/messages/down)")
                .Body(Object({{"content", {{"description", "any JSON but null"}}}, {"name", Str()}},
                             {"content"}))
                .Answer(202, "The stored message", "DeviceRequest")
                .Fails(400, "No content")
                .Fails(404, "Unknown device")
                .Fails(413, "Over 64 KB")));
  p.Add("/devices/{device_id}/messages", "get", listing("Messages sent down and their status"));
  p.Add("/devices/{device_id}/requests", "get",
        std::move(
            listing("Every request sent to the device")
                .Query("kind", Enum({"command", "properties_set", "properties_get", "message"}))));
  p.Add("/devices/{device_id}/requests/{request_id}", "get",
        std::move(Op("One request and its result")
                      .Answer(200, "The request", "DeviceRequest")
                      .Fails(404, "Unknown")));

  // Packages.
  p.Add("/packages", "get",
        std::move(Op("List packages")
                      .Query("product_id", Str())
                      .Answer(200, "Packages", Array(Ref("Package")))));
  p.Add("/packages/{package_id}", "get",
        std::move(Op("One package").Answer(200, "The package", "Package").Fails(404, "Unknown")));
  p.Add("/packages/{package_id}", "delete",
        std::move(
            Op("Delete a package: the row, then its file; ended tasks that named it keep "
               "package_id null")
                .Answer(200, "Deleted", Emitted({{"deleted", Emitted({{"package_id", Int()}})}}))
                .Fails(404, "Unknown")
                .Fails(409, "Used by an open task")));
  p.Add("/packages/{package_id}/download-tokens", "post",
        std::move(Op("Grant a device a download (what a firmware_upgrade command carries)")
                      .Body(Object({{"device_id", Str()}, {"expires", Int("seconds, 1..604800")}},
                                   {"device_id"}))
                      .Answer(201, "The grant", "DownloadGrant")
                      .Fails(400, "Another product's device, or a bad expiry")
                      .Fails(404, "Unknown package or device")));

  // Upgrade tasks.
  p.Add("/tasks", "get",
        std::move(Op("List upgrade tasks with their status, state, waves and per-state device "
                     "counts (no device lists)")
                      .Answer(200, "Tasks", Array(Ref("Task")))));
  p.Add("/tasks/preview", "post",
        std::move(Op("What POST /tasks with this body would send, changing nothing (write "
                     "scope, not audited)")
                      .Body(Ref("TaskCreate"))
                      .Answer(200, "The plan", "TaskPreview")
                      .Fails(400, "Invalid, no targets, or no package for the version")
                      .Fails(404, "Unknown product, package, device or group")));
  p.Add("/tasks", "post",
        std::move(Op("Create an upgrade task; answers the task without its device list")
                      .Body(Ref("TaskCreate"))
                      .Answer(201, "Created", "Task")
                      .Fails(400, "Invalid, no targets, or no package for the version")
                      .Fails(404, "Unknown product, package, device or group")
                      .Fails(409, "A target is in another open task (set supersede)")));
  p.Add("/tasks/{task_id}", "get",
        std::move(Op("One task, with every device's state unless ?devices=false")
                      .Query("devices", Bool(), "false: without the device list")
                      .Answer(200, "The task", "Task")
                      .Fails(404, "Unknown")));
  for (const char* verb : {"stop", "cancel"}) {
    p.Add(std::string("/tasks/{task_id}/") + verb, "post",
          std::move(Op("Cancel a task (stop and cancel are the same): devices not yet finished "
                       "become Stopped, their download tokens stop working")
                        .Answer(200, "The task", "Task")
                        .Fails(404, "Unknown")
                        .Fails(409, "Already cancelled")));
  }
  p.Add("/tasks/{task_id}/pause", "post",
        std::move(Op("Pause: no new firmware_upgrade commands; devices already upgrading finish")
                      .Body(Object({{"reason", Str()}}), false)
                      .Answer(200, "The task", "Task")
                      .Fails(404, "Unknown")
                      .Fails(409, "Ended")));
  p.Add("/tasks/{task_id}/resume", "post",
        std::move(Op("Resume a paused task; the failure threshold of the waves up to the current "
                     "one no longer applies")
                      .Answer(200, "The task", "Task")
                      .Fails(404, "Unknown")
                      .Fails(409, "Ended")));

  // Operator tokens.
  p.Add("/tokens", "get",
        std::move(Op("Operator tokens (admin scope); never the token itself")
                      .Admin()
                      .Answer(200, "Tokens", Array(Ref("Token")))));
  // Users and sessions (docs/server.md, "Users, roles and sessions").
  p.Add("/session", "post",
        std::move(
            Op("Sign in: sets the HttpOnly session cookie ota_session")
                .Security(json::array())
                .Body(Object({{"username", Str()}, {"password", Str()}}, {"username", "password"}))
                .Answer(200, "Signed in", "Session")
                .Fails(401, "Wrong username or password (or a disabled user)")
                .Fails(403, "A cross-site Origin")
                .Fails(415, "Not application/json (a cross-site form)")
                .Fails(429, "Too many failed sign-ins (Retry-After)")
                .Fails(500, "Internal error")));
  p.Add("/session", "get",
        std::move(Op("The signed-in user (session cookie)").Answer(200, "The session", "Session")));
  p.Add(
      "/session", "delete",
      std::move(
          Op("Sign out: the session ends and the cookie is cleared").NoContent(204, "Signed out")));
  p.Add("/session/password", "post",
        std::move(Op("Change the signed-in user's password; the user's other sessions end")
                      .Body(Object({{"old_password", Str()}, {"new_password", Str("12-1024")}},
                                   {"old_password", "new_password"}))
                      .NoContent(204, "Changed")
                      .Fails(403, "old_password is wrong")
                      .Fails(409, "The password was changed meanwhile")
                      .Fails(429, "Too many failed attempts (Retry-After)")));
  p.Add("/users", "get",
        std::move(Op("List users (admin)").Admin().Answer(200, "Users", Array(Ref("User")))));
  p.Add("/users", "post",
        std::move(Op("Create a user (admin); the password (generated when not given) is in the "
                     "answer once")
                      .Admin()
                      .Body(Object({{"username", Str("1-64 of A-Z a-z 0-9 . _ @ -")},
                                    {"role", Enum({"admin", "operator", "viewer"})},
                                    {"password", Str("12-1024 characters")}},
                                   {"username", "role"}))
                      .Answer(201, "Created",
                              Emitted({{"username", Str()},
                                       {"role", Enum({"admin", "operator", "viewer"})},
                                       {"password", Str()}}))
                      .Fails(409, "Exists (names are unique whatever their case)")));
  p.Add("/users/{username}", "patch",
        std::move(Op("Change a user's role or disable it (admin); disabling ends its sessions")
                      .Admin()
                      .Body(Object(
                          {{"role", Enum({"admin", "operator", "viewer"})}, {"disabled", Bool()}}))
                      .Answer(200, "The user", "User")
                      .Fails(404, "Unknown")
                      .Fails(409, "The last enabled admin")));
  p.Add("/users/{username}", "delete",
        std::move(Op("Delete a user (admin); its sessions end")
                      .Admin()
                      .NoContent(204, "Deleted")
                      .Fails(404, "Unknown")
                      .Fails(409, "The last enabled admin")));
  p.Add("/tokens", "post",
        std::move(Op("Create an operator token (admin scope): read = GET only; write = read and "
                     "changes; admin = write and tokens; broker = only POST /broker/v1/*. The "
                     "token is in the answer once")
                      .Body(Object({{"name", Str("1-100 characters")},
                                    {"scope", Enum({"read", "write", "admin", "broker"})},
                                    {"expires_in_s",
                                     OrNull("integer", "1..315360000; 0, null or absent: never")}},
                                   {"name", "scope"}))
                      .Answer(201, "Created", "TokenCreated")
                      .Fails(400, "Invalid")));
  p.Add("/tokens/{token_id}", "delete",
        std::move(Op("Revoke a token at once (admin scope)")
                      .Answer(200, "Revoked", Emitted({{"revoked", Emitted({{"id", Int()}})}}))
                      .Fails(404, "Unknown")));

  // For brokers that authenticate over HTTP (EMQX, VerneMQ): a broker (or admin) token.
  const json broker = AtRoot("the operator API's listener");
  p.Add("/broker/v1/auth", "post",
        std::move(Op("May this client log in? The rules of the Mosquitto plugin, from the same "
                     "store (docs/spec/broker-auth.md). A broker or admin token")
                      .Body(Object({{"clientid", Str()}, {"username", Str()}, {"password", Str()}}))
                      .Answer(200, "The verdict", "BrokerVerdict")),
        broker);
  p.Add("/broker/v1/acl", "post",
        std::move(Op("May this device publish or subscribe to this topic?")
                      .Body(Object({{"username", Str()},
                                    {"topic", Str()},
                                    {"action", Enum({"publish", "subscribe"})}},
                                   {"username", "topic", "action"}))
                      .Answer(200, "The verdict", "BrokerVerdict")
                      .Fails(400, "Missing field or bad action")),
        broker);

  // Device downloads, on their own listener.
  json download = AtRoot("the download listener (serve --download-port), not the API's");
  download["x-listener"] = "download";
  p.Add("/download/devices/{device_id}/packages/{package_id}", "get",
        std::move(Op("Download a package (a download token of this device and package; Range "
                     "requests answered)")
                      .Security({{{"downloadToken", json::array()}}})
                      .RawAnswer(200, "The whole file (Content-Disposition: attachment)",
                                 "application/octet-stream")
                      .RawAnswer(206, "The range asked (Content-Range)", "application/octet-stream")
                      .Fails(401, "Missing, invalid or expired token")
                      .Fails(403,
                             "A token for another package or device, or revoked (task "
                             "cancelled, upgrade over, device disabled, deleted and re-created, or "
                             "its secret rotated)")
                      .Fails(404, "Unknown package")
                      .Fails(416,
                             "Range outside the file (Content-Range: bytes */SIZE), or a Range "
                             "header that cannot be parsed")
                      .Fails(429, "Too many downloads at once for this device")
                      .Fails(500, "Package file missing")),
        download);
  return std::move(p).Take();
}

std::string Build() {
  json doc = {
      {"openapi", "3.1.0"},
      {"info",
       {{"title", "ota-server API"},
        {"version", "1"},
        {"description",
         "Operator tokens carry a scope: read (GET only), write (read and every change), admin "
         "(write and /tokens). A missing, unknown, expired or revoked token: 401; a scope too "
         "small: 403. Errors are {\"error\": message}."}}},
      {"jsonSchemaDialect", "https://json-schema.org/draft/2020-12/schema"},
      {"servers", {{{"url", "/api/v1"}}}},
      {"security", {{{"apiToken", json::array()}}, {{"session", json::array()}}}},
      {"components",
       {{"securitySchemes",
         {{"apiToken", {{"type", "http"}, {"scheme", "bearer"}}},
          {"session",
           {{"type", "apiKey"},
            {"in", "cookie"},
            {"name", "ota_session"},
            {"description",
             "A signed-in user's session (POST /session); changes also need the header "
             "X-CSRF-Token: the session's csrf_token, and an Origin, when sent, of this API"}}},
          {"downloadToken", {{"type", "http"}, {"scheme", "bearer"}}}}},
        {"schemas", Schemas()}}},
      {"paths", PathsJson()}};
  return doc.dump(1);
}

}  // namespace

const char* OpenApiDocument() {
  static const std::string doc = Build();
  return doc.c_str();
}

}  // namespace ota::server
