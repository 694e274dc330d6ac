// The OpenAPI document against the server itself (docs/server.md, "The OpenAPI document"):
// every route HttpApi registers is documented with its method and every documented operation is
// served; and real answers of a real server (TLS on loopback, SQLite), driven through every route
// to a success and to its typical refusals, match the document's schemas, checked by
// scripts/check-openapi.py with Debian's python3-jsonschema.
//
// A new route: document it in server/src/openapi.cpp and add its calls to Drive() below.
#include <gtest/gtest.h>
#include <httplib.h>

#include <sys/wait.h>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "console_assets.hpp"
#include "ota/host/keys.hpp"
#include "ota/server/device_requests.hpp"
#include "ota/server/http_api.hpp"
#include "ota/server/platform.hpp"
#include "ota/server/upgrade_tasks.hpp"
#include "temp_dir.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;

// (METHOD, full path template), e.g. ("GET", "/api/v1/devices/{device_id}").
using Operation = std::pair<std::string, std::string>;

// The document's operations by full template: a path's own servers[0] replaces the document's.
std::map<Operation, json> DocumentedOperations(const json& doc) {
  std::map<Operation, json> out;
  const std::string base = doc["servers"][0]["url"];
  for (const auto& [path, item] : doc["paths"].items()) {
    std::string prefix =
        item.contains("servers") ? item["servers"][0]["url"].get<std::string>() : base;
    while (!prefix.empty() && prefix.back() == '/')
      prefix.pop_back();
    for (const auto& [method, op] : item.items()) {
      if (method == "servers" || method == "parameters" || method.rfind("x-", 0) == 0) continue;
      std::string upper = method;
      for (char& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      json entry = op;
      entry["x-path-item"] = item;
      out[{upper, prefix + path}] = entry;
    }
  }
  return out;
}

constexpr char kParam = '\x01';

// A route pattern without its capture groups (each becomes kParam), and the groups in order.
// Outside groups, "\x" is x and anything else stands for itself, except the regex operators
// below: a pattern with one of those cannot be mapped exactly, and is an error.
bool Skeleton(const std::string& pattern, std::string* skeleton, std::vector<std::string>* groups,
              std::string* error) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      *skeleton += pattern[++i];
    } else if (c == '(') {
      size_t depth = 1, j = i + 1;
      for (; j < pattern.size() && depth > 0; ++j) {
        if (pattern[j] == '\\') {
          ++j;
        } else if (pattern[j] == '(') {
          ++depth;
        } else if (pattern[j] == ')') {
          --depth;
        }
      }
      if (depth != 0) {
        *error = "unbalanced group";
        return false;
      }
      groups->push_back(pattern.substr(i + 1, j - i - 2));
      *skeleton += kParam;
      i = j - 1;
    } else if (std::string("*+?[]{}|^$").find(c) != std::string::npos) {
      *error = std::string("a regex operator outside a group: '") + c + "'";
      return false;
    } else {
      *skeleton += c;
    }
  }
  return true;
}

// A template without its {names} (each becomes kParam), and the names in order.
std::string TemplateSkeleton(const std::string& tmpl, std::vector<std::string>* names) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '{') {
      const size_t close = tmpl.find('}', i);
      names->push_back(tmpl.substr(i + 1, close - i - 1));
      out += kParam;
      i = close;
    } else {
      out += tmpl[i];
    }
  }
  return out;
}

// The document's template for a route pattern: the one whose text outside its {parameters} is
// the pattern's outside its groups, the i-th group being the i-th parameter; an integer
// parameter is exactly a (\d+) group and the other way round. "" and `error` if none.
std::string TemplateOf(const RouteInfo& route, const std::map<Operation, json>& documented,
                       std::string* error) {
  std::string skeleton;
  std::vector<std::string> groups;
  if (!Skeleton(route.pattern, &skeleton, &groups, error)) return "";
  std::set<std::string> seen;
  for (const auto& [op, entry] : documented) {
    const std::string& tmpl = op.second;
    std::vector<std::string> names;
    if (!seen.insert(tmpl).second || TemplateSkeleton(tmpl, &names) != skeleton) continue;
    for (size_t i = 0; i < names.size(); ++i) {
      bool integer = false;
      for (const json& p : entry["x-path-item"].value("parameters", json::array())) {
        if (p["in"] == "path" && p["name"] == names[i]) integer = p["schema"]["type"] == "integer";
      }
      if (integer != (groups[i] == R"(\d+)")) {
        *error = "group " + std::to_string(i + 1) + " (" + groups[i] + ") against {" + names[i] +
                 "}: an integer parameter must be (\\d+) and the other way round";
        return "";
      }
    }
    return tmpl;
  }
  *error = "no documented path has this shape";
  return "";
}

// The document's template a concrete path falls under: segment by segment, a literal segment
// beating a parameter (as Metrics::RouteOf). "" if none.
std::string TemplateOfPath(const std::string& path, const std::map<Operation, json>& documented) {
  const auto split = [](const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t slash = s.find('/', 1); start < s.size(); slash = s.find('/', start)) {
      out.push_back(
          s.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    return out;
  };
  const std::vector<std::string> segments = split(path);
  std::string best;
  size_t best_params = 0;
  for (const auto& [op, entry] : documented) {
    const std::vector<std::string> t = split(op.second);
    if (t.size() != segments.size()) continue;
    size_t params = 0;
    bool match = true;
    for (size_t i = 0; match && i < t.size(); ++i) {
      if (!t[i].empty() && t[i].front() == '{') {
        ++params;
      } else {
        match = t[i] == segments[i];
      }
    }
    if (match && (best.empty() || params < best_params)) {
      best = op.second;
      best_params = params;
    }
  }
  return best;
}

// Runs scripts/check-openapi.py on a document and samples: its exit status and output. Debian's
// python3-jsonschema: /usr/bin/python3, whatever python PATH finds first.
std::pair<int, std::string> CheckOpenApi(const std::filesystem::path& doc,
                                         const std::filesystem::path& samples) {
  const std::string command = std::string("/usr/bin/python3 ") + OTA_CHECK_OPENAPI + " " +
                              doc.string() + " " + samples.string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "cannot run " + command};
  std::string output = command + "\n";
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe))
    output.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// The server as `ota-server serve` wires it (tasks, requests to devices), without a broker:
// devices are offline, so requests to them are answered at once (device_offline).
class OpenApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    platform_ = std::make_unique<Platform>(dir_.path());
    tasks_ = std::make_unique<UpgradeTasks>(
        platform_->db(), platform_->registry(), platform_->packages(), platform_->outbox(),
        [this](const std::string& device, const PackageRecord& pkg, int64_t expires,
               int64_t task_id) {
          return DownloadGrant(*platform_, api_->download_base_url(), device, pkg, expires,
                               task_id);
        });
    api_ = std::make_unique<HttpApi>(*platform_, tasks_.get(), 4);
    requests_ = std::make_unique<DeviceRequests>(
        *platform_, [](const Outgoing&) { return false; },
        [](const std::vector<QueuedMessage>&) {});
    api_->DeviceRequestRoutes(*requests_);
    port_ = api_->Bind("127.0.0.1", 0);
    download_port_ = api_->BindDownloads("127.0.0.1", 0);
    ASSERT_GT(port_, 0);
    ASSERT_GT(download_port_, 0);
    serve_ = std::thread([this] { api_->Serve(); });
    serve_downloads_ = std::thread([this] { api_->ServeDownloads(); });
    std::ifstream(dir_ / "admin.token") >> admin_;
    documented_ = DocumentedOperations(json::parse(OpenApiDocument()));
  }
  void TearDown() override {
    requests_->StopWaiting();
    api_->Stop();
    if (serve_.joinable()) serve_.join();
    if (serve_downloads_.joinable()) serve_downloads_.join();
  }

  // One exchange with the operator API (or the download listener) as `token` ("admin": the
  // admin token; "": none), recorded as a sample; the status must be `expect`. The answer's
  // JSON, or null.
  json Send(int expect, httplib::Request req, const std::string& token = "admin",
            bool download = false) {
    httplib::SSLClient c("127.0.0.1", download ? download_port_ : port_);
    c.set_ca_cert_path(platform_->tls().ca_cert.c_str());
    c.enable_server_certificate_verification(true);
    if (!token.empty()) {
      req.headers.emplace("Authorization", "Bearer " + (token == "admin" ? admin_ : token));
    }
    const std::string path = req.path.substr(0, req.path.find('?'));
    const std::string what = req.method + " " + req.path;
    httplib::Result r = c.send(req);
    if (!r) {
      ADD_FAILURE() << what << ": no answer";
      return nullptr;
    }
    EXPECT_EQ(r->status, expect) << what << ": " << r->body.substr(0, 300);
    last_headers_ = r->headers;
    const std::string tmpl = TemplateOfPath(path, documented_);
    EXPECT_FALSE(tmpl.empty()) << what << ": no documented path";
    samples_.push_back({{"method", req.method},
                        {"template", tmpl},
                        {"status", r->status},
                        {"content_type", r->get_header_value("Content-Type")},
                        {"body", r->body},
                        {"request_content_type", req.get_header_value("Content-Type")},
                        {"request_body", req.body}});
    return json::parse(r->body, nullptr, false);
  }
  json Call(int expect, const std::string& method, const std::string& path,
            const json& body = nullptr, const std::string& token = "admin") {
    httplib::Request req;
    req.method = method;
    req.path = path;
    if (!body.is_null()) {
      req.body = body.dump();
      req.headers.emplace("Content-Type", "application/json");
    }
    return Send(expect, std::move(req), token);
  }
  // The event stream: its status and type from the headers, the body up to the first event
  // (it never ends by itself), recorded as a sample.
  void Stream(int expect, const std::string& path) {
    httplib::SSLClient c("127.0.0.1", port_);
    c.set_ca_cert_path(platform_->tls().ca_cert.c_str());
    c.enable_server_certificate_verification(true);
    int status = 0;
    std::string type, body;
    c.Get(
        path, {{"Authorization", "Bearer " + admin_}},
        [&](const httplib::Response& r) {
          status = r.status;
          type = r.get_header_value("Content-Type");
          return true;
        },
        [&](const char* data, size_t n) {
          body.append(data, n);
          return body.find("\n\n") == std::string::npos;  // one whole event is enough
        });
    EXPECT_EQ(status, expect) << path;
    EXPECT_NE(body.find("event: overview"), std::string::npos) << body;
    samples_.push_back({{"method", "GET"},
                        {"template", TemplateOfPath(path.substr(0, path.find('?')), documented_)},
                        {"status", status},
                        {"content_type", type},
                        {"body", body}});
  }
  // As a signed-in user: the session cookie and, for changes, its CSRF token; no bearer token.
  json AsUser(int expect, const std::string& method, const std::string& path, const json& body,
              const std::string& cookie, const std::string& csrf) {
    httplib::Request req;
    req.method = method;
    req.path = path;
    req.headers.emplace("Cookie", cookie);
    if (!csrf.empty()) req.headers.emplace("X-CSRF-Token", csrf);
    if (!body.is_null()) {
      req.body = body.dump();
      req.headers.emplace("Content-Type", "application/json");
    }
    return Send(expect, std::move(req), "");
  }
  json Upload(int expect, const std::string& path, const std::vector<uint8_t>& bytes) {
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body.assign(bytes.begin(), bytes.end());
    req.headers.emplace("Content-Type", "application/octet-stream");
    return Send(expect, std::move(req));
  }
  json Download(int expect, const std::string& path, const std::string& token,
                const std::string& range = "") {
    httplib::Request req;
    req.method = "GET";
    req.path = path;
    if (!range.empty()) req.headers.emplace("Range", range);
    return Send(expect, std::move(req), token, true);
  }

  std::vector<uint8_t> SignedFull(const char* version, uint32_t seed) {
    const BoardProfile& board = kStm32f429Fire;
    host::PackageSpec spec;
    spec.version = version;
    spec.image = testing::MakeTestImage(
        version, 20000, board.internal_base + board.partition(PartitionId::kRunning).offset, seed);
    return testing::MakePackage(spec, &key_);
  }

  void Drive();

  testing::TempDir dir_{"ota-server-openapi"};
  testing::TestKey key_, other_key_;
  std::unique_ptr<Platform> platform_;
  std::unique_ptr<UpgradeTasks> tasks_;
  std::unique_ptr<HttpApi> api_;
  std::unique_ptr<DeviceRequests> requests_;
  int port_ = -1, download_port_ = -1;
  std::thread serve_, serve_downloads_;
  std::string admin_;
  std::map<Operation, json> documented_;
  std::vector<json> samples_;
  httplib::Headers last_headers_;  // of the last answer
};

// Every route, to a success and to its typical refusals (400 invalid, 401 no token, 403 scope,
// 404 unknown, 409 conflict, 422 not a package). The one place for the sample calls.
void OpenApiTest::Drive() {
  Call(200, "GET", "/api/v1/openapi.json", nullptr, "");
  Call(200, "GET", "/", nullptr, "");
  Call(200, "GET", "/index.html", nullptr, "");
  Call(404, "GET", "/assets/none.js", nullptr, "");
  // Built with OTA_CONSOLE=OFF there is no file to ask for (then that route has no sample).
  for (size_t i = 0; i < kConsoleAssetCount; ++i) {
    if (std::string(kConsoleAssets[i].path).rfind("/assets/", 0) != 0) continue;
    Call(200, "GET", kConsoleAssets[i].path, nullptr, "");
    break;
  }
  Call(200, "GET", "/metrics");
  Call(401, "GET", "/metrics", nullptr, "");

  // Tokens (a read token for the 403s).
  const json reader = Call(201, "POST", "/api/v1/tokens", {{"name", "reader"}, {"scope", "read"}});
  const std::string read_token = reader.value("token", "");
  Call(400, "POST", "/api/v1/tokens", {{"name", "x"}, {"scope", "root"}});
  Call(200, "GET", "/api/v1/tokens");
  Call(403, "GET", "/api/v1/tokens", nullptr, read_token);

  // Products and keys.
  const json model = {{"services",
                       {{{"service_id", "DeviceStatus"},
                         {"properties", {{{"name", "radioValue"}, {"type", "int"}}}}}}}};
  const json product = {
      {"product_id", "fire"}, {"name", "FIRE"}, {"manufacturer", "embedfire"}, {"model", model}};
  Call(201, "POST", "/api/v1/products", product);
  Call(409, "POST", "/api/v1/products", product);
  Call(400, "POST", "/api/v1/products", {{"product_id", "nameless"}});
  Call(401, "POST", "/api/v1/products", product, "");
  Call(403, "POST", "/api/v1/products", product, read_token);
  Call(200, "GET", "/api/v1/products");
  Call(200, "GET", "/api/v1/products/fire", nullptr, read_token);
  Call(404, "GET", "/api/v1/products/nope");
  const json key = {{"public_pem", host::PublicKeyPem(key_.pkey())}};
  Call(201, "POST", "/api/v1/products/fire/keys", key);
  Call(409, "POST", "/api/v1/products/fire/keys", key);
  Call(400, "POST", "/api/v1/products/fire/keys", {{"public_pem", "not a key"}});
  const json other =
      Call(201, "POST", "/api/v1/products/fire/keys",
           {{"public_pem", host::PublicKeyPem(other_key_.pkey())}, {"may_downgrade", true}});
  const std::string other_key = "/api/v1/products/fire/keys/" + other.value("key_id", "");
  Call(200, "DELETE", other_key);
  Call(404, "DELETE", other_key);

  // Packages.
  const auto v2 = SignedFull("FOTAV2", 2);
  const json pkg = Upload(201, "/api/v1/products/fire/packages?file_name=v2.bin", v2);
  const std::string pkg_id = std::to_string(pkg.value("package_id", 0));
  Upload(409, "/api/v1/products/fire/packages", v2);
  Upload(422, "/api/v1/products/fire/packages", std::vector<uint8_t>(100, 7));
  Upload(404, "/api/v1/products/nope/packages", v2);
  Upload(400, "/api/v1/products/fire/packages?category=other", v2);
  const json v3 = Upload(201, "/api/v1/products/fire/packages", SignedFull("FOTAV3", 3));
  const std::string v3_path = "/api/v1/packages/" + std::to_string(v3.value("package_id", 0));
  Call(200, "GET", "/api/v1/packages?product_id=fire");
  Call(200, "GET", "/api/v1/packages/" + pkg_id);
  Call(404, "GET", "/api/v1/packages/999");

  // Devices, a gateway and its sub-device, groups, secrets.
  const json n1 = {{"product_id", "fire"}, {"node_id", "n1"}};
  Call(201, "POST", "/api/v1/devices", n1);
  Call(409, "POST", "/api/v1/devices", n1);
  Call(400, "POST", "/api/v1/devices", {{"product_id", "fire"}});
  Call(201, "POST", "/api/v1/devices", {{"product_id", "fire"}, {"node_id", "gw"}});
  Call(201, "POST", "/api/v1/devices/fire_gw/sub-devices",
       {{"product_id", "fire"}, {"node_id", "s1"}});
  Call(200, "GET", "/api/v1/devices/fire_gw/sub-devices");
  Call(404, "GET", "/api/v1/devices/nope/sub-devices");
  Call(200, "GET", "/api/v1/devices?product_id=fire");
  Call(200, "GET", "/api/v1/devices?q=N1&online=false&version=&limit=10&offset=0");
  Call(400, "GET", "/api/v1/devices?limit=0");
  Call(400, "GET", "/api/v1/devices?online=maybe");
  Call(200, "GET", "/api/v1/devices/fire_n1/history");
  Call(404, "GET", "/api/v1/devices/nope/history");
  Call(200, "GET", "/api/v1/overview");
  Stream(200, "/api/v1/events?devices=1");
  Call(400, "GET", "/api/v1/events?devices=yes");
  Call(404, "GET", "/api/v1/events?task=999");
  Call(200, "GET", "/api/v1/devices/fire_n1");
  Call(404, "GET", "/api/v1/devices/nope");
  Call(200, "PATCH", "/api/v1/devices/fire_n1", {{"enabled", true}});
  Call(400, "PATCH", "/api/v1/devices/fire_n1", json::object());
  Call(200, "POST", "/api/v1/devices/fire_n1/groups", {{"group", "g1"}});
  Call(200, "DELETE", "/api/v1/devices/fire_n1/groups/g1");
  Call(404, "DELETE", "/api/v1/devices/fire_n1/groups/g1");
  Call(200, "POST", "/api/v1/devices/fire_n1/groups", {{"group", "g1"}});
  Call(200, "POST", "/api/v1/devices/fire_n1/secret", {{"secret", "a-new-secret-1"}});
  Call(400, "POST", "/api/v1/devices/fire_n1/secret", {{"secret", "short"}});
  Call(200, "GET", "/api/v1/devices/fire_n1/logs");
  Call(200, "GET", "/api/v1/devices/fire_n1/properties");

  // Requests to devices (offline here: answered at once).
  const json command = Call(200, "POST", "/api/v1/devices/fire_n1/commands",
                            {{"service_id", "DeviceStatus"}, {"command_name", "reboot"}});
  Call(400, "POST", "/api/v1/devices/fire_n1/commands", {{"service_id", "DeviceStatus"}});
  Call(404, "POST", "/api/v1/devices/nope/commands",
       {{"service_id", "DeviceStatus"}, {"command_name", "reboot"}});
  const json set = {
      {"services", {{{"service_id", "DeviceStatus"}, {"properties", {{"radioValue", 1}}}}}},
      {"timeout_s", 5}};
  Call(200, "PUT", "/api/v1/devices/fire_n1/properties", set);
  Call(400, "PUT", "/api/v1/devices/fire_n1/properties",
       {{"services", {{{"service_id", "DeviceStatus"}, {"properties", {{"radioValue", "x"}}}}}}});
  Call(200, "POST", "/api/v1/devices/fire_n1/properties/get", {{"service_id", "DeviceStatus"}});
  Call(400, "POST", "/api/v1/devices/fire_n1/properties/get", {{"service_id", "Nope"}});
  Call(202, "POST", "/api/v1/devices/fire_n1/messages", {{"content", "hello"}, {"name", "greet"}});
  Call(400, "POST", "/api/v1/devices/fire_n1/messages", json::object());
  Call(200, "GET", "/api/v1/devices/fire_n1/commands");
  Call(200, "GET", "/api/v1/devices/fire_n1/messages?limit=10");
  Call(200, "GET", "/api/v1/devices/fire_n1/requests?kind=properties_set");
  Call(400, "GET", "/api/v1/devices/fire_n1/requests?limit=0");
  Call(404, "GET", "/api/v1/devices/nope/requests");
  Call(200, "GET", "/api/v1/devices/fire_n1/requests/" + command.value("request_id", ""));
  Call(404, "GET", "/api/v1/devices/fire_n1/requests/nope");

  // Download grants and the download listener.
  const json grant = Call(201, "POST", "/api/v1/packages/" + pkg_id + "/download-tokens",
                          {{"device_id", "fire_n1"}, {"expires", 60}});
  Call(404, "POST", "/api/v1/packages/" + pkg_id + "/download-tokens", {{"device_id", "nope"}});
  Call(400, "POST", "/api/v1/packages/" + pkg_id + "/download-tokens",
       {{"device_id", "fire_n1"}, {"expires", 0}});
  const std::string token = grant.value("access_token", "");
  const std::string download = "/download/devices/fire_n1/packages/" + pkg_id;
  Download(200, download, token);
  Download(206, download, token, "bytes=0-99");
  Download(401, download, "");
  // Refusals of Range requests carry their whole JSON error too.
  Download(401, download, "", "bytes=10-");
  Download(416, download, token, "bytes=10000000-");
  Download(416, download, token, "lines=1-2");
  const std::string other_package =
      "/download/devices/fire_n1/packages/" + std::to_string(pkg.value("package_id", 0) + 1000);
  Download(403, other_package, token);
  Download(403, other_package, token, "bytes=0-99");

  // Upgrade tasks: one paused, resumed and stopped; one with waves, cancelled.
  const json spec = {
      {"product_id", "fire"}, {"devices", {"fire_n1"}}, {"package_id", pkg.value("package_id", 0)}};
  Call(200, "POST", "/api/v1/tasks/preview", spec);
  Call(400, "POST", "/api/v1/tasks/preview", {{"devices", {"fire_n1"}}});
  Call(404, "POST", "/api/v1/tasks/preview", {{"product_id", "nope"}, {"devices", {"fire_n1"}}});
  const json task = Call(201, "POST", "/api/v1/tasks", spec);
  const std::string task_path = "/api/v1/tasks/" + std::to_string(task.value("task_id", 0));
  Call(409, "POST", "/api/v1/tasks", spec);
  Call(400, "POST", "/api/v1/tasks", {{"devices", {"fire_n1"}}});
  Call(409, "DELETE", "/api/v1/devices/fire_n1");
  Call(409, "DELETE", "/api/v1/packages/" + pkg_id);
  Call(200, "GET", "/api/v1/tasks");
  Call(200, "GET", task_path);
  Call(200, "GET", task_path + "?devices=false");
  Call(404, "GET", "/api/v1/tasks/999");
  Call(200, "POST", task_path + "/pause", {{"reason", "looking"}});
  Call(200, "POST", task_path + "/resume");
  Call(200, "POST", task_path + "/stop");
  Call(409, "POST", task_path + "/cancel");
  Call(404, "POST", "/api/v1/tasks/999/pause", json::object());
  json waves = spec;
  waves["rollout"] = {{"waves", {{{"name", "canary"}, {"group", "g1"}}}},
                      {"failure_threshold_percent", 50},
                      {"rate_per_minute", 10}};
  const json task2 = Call(201, "POST", "/api/v1/tasks", waves);
  const std::string task2_path = "/api/v1/tasks/" + std::to_string(task2.value("task_id", 0));
  Call(200, "GET", task2_path);
  Call(200, "POST", task2_path + "/cancel");
  Call(409, "POST", task2_path + "/stop");

  // Users and sessions.
  const json ann = {{"username", "ann"}, {"role", "operator"}, {"password", "correct horse 42"}};
  Call(201, "POST", "/api/v1/users", ann);
  Call(409, "POST", "/api/v1/users", ann);
  Call(400, "POST", "/api/v1/users", {{"username", "bob"}, {"role", "root"}});
  Call(403, "POST", "/api/v1/users", {{"username", "bob"}, {"role", "viewer"}}, read_token);
  Call(201, "POST", "/api/v1/users", {{"username", "bob"}, {"role", "viewer"}});
  Call(200, "GET", "/api/v1/users");
  Call(403, "GET", "/api/v1/users", nullptr, read_token);
  Call(200, "PATCH", "/api/v1/users/bob", {{"disabled", true}});
  Call(404, "PATCH", "/api/v1/users/nobody", {{"role", "viewer"}});
  Call(401, "POST", "/api/v1/session", {{"username", "ann"}, {"password", "wrong"}}, "");
  {
    httplib::Request form;  // a cross-site form cannot send application/json
    form.method = "POST";
    form.path = "/api/v1/session";
    form.body = R"({"username":"ann","password":"correct horse 42"})";
    form.headers.emplace("Content-Type", "text/plain");
    Send(415, std::move(form), "");
  }
  const json session = Call(200, "POST", "/api/v1/session",
                            {{"username", "ann"}, {"password", "correct horse 42"}}, "");
  const std::string set_cookie =
      httplib::detail::get_header_value(last_headers_, "Set-Cookie", 0, "");
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  const std::string csrf = session.value("csrf_token", "");
  AsUser(200, "GET", "/api/v1/session", nullptr, cookie, "");
  AsUser(403, "POST", "/api/v1/session/password",
         {{"old_password", "correct horse 42"}, {"new_password", "a longer passphrase"}}, cookie,
         "");
  AsUser(204, "POST", "/api/v1/session/password",
         {{"old_password", "correct horse 42"}, {"new_password", "a longer passphrase"}}, cookie,
         csrf);
  AsUser(204, "DELETE", "/api/v1/session", nullptr, cookie, csrf);
  AsUser(401, "GET", "/api/v1/session", nullptr, cookie, "");
  Call(204, "DELETE", "/api/v1/users/bob");
  Call(404, "DELETE", "/api/v1/users/bob");

  // The audit log; brokers' questions.
  Call(200, "GET", "/api/v1/audit?limit=5");
  Call(400, "GET", "/api/v1/audit?limit=0");
  Call(200, "POST", "/broker/v1/auth",
       {{"clientid", "fire_n1_0_0_2024010100"}, {"username", "fire_n1"}, {"password", "wrong"}});
  Call(200, "POST", "/broker/v1/acl",
       {{"username", "fire_n1"},
        {"topic", "$oc/devices/fire_n1/sys/messages/up"},
        {"action", "publish"}});
  Call(400, "POST", "/broker/v1/acl", {{"username", "fire_n1"}, {"topic", "t"}, {"action", "x"}});

  // Deletions, last.
  Call(200, "DELETE", v3_path);
  Call(404, "DELETE", v3_path);
  Call(200, "DELETE", "/api/v1/devices/fire_n1");
  Call(404, "DELETE", "/api/v1/devices/fire_n1");
  const std::string reader_path = "/api/v1/tokens/" + std::to_string(reader.value("id", 0));
  Call(200, "DELETE", reader_path);
  Call(404, "DELETE", reader_path);
}

// Both directions: every route served is documented with its method, every documented
// operation is served (on the listener the document says).
TEST_F(OpenApiTest, Routes_AreExactlyTheDocumentedOperations) {
  const std::vector<RouteInfo> routes = api_->Routes();
  ASSERT_FALSE(routes.empty());
  std::set<Operation> served;
  for (const RouteInfo& r : routes) {
    std::string error;
    const std::string tmpl = TemplateOf(r, documented_, &error);
    if (tmpl.empty()) {
      ADD_FAILURE() << r.method << " " << r.pattern << ": not in the document (" << error << ")";
      continue;
    }
    const auto it = documented_.find({r.method, tmpl});
    if (it == documented_.end()) {
      ADD_FAILURE() << r.method << " " << r.pattern << ": " << tmpl
                    << " is documented without this method";
      continue;
    }
    const bool download = it->second["x-path-item"].value("x-listener", "") == "download";
    EXPECT_EQ(download, r.listener == "download")
        << tmpl << " is served on the " << r.listener << " listener";
    EXPECT_TRUE(served.insert({r.method, tmpl}).second) << r.method << " " << tmpl << " twice";
  }
  for (const auto& [op, entry] : documented_) {
    EXPECT_TRUE(served.count(op)) << op.first << " " << op.second << " is documented, not served";
  }
  // The document served is the one built in.
  httplib::SSLClient c("127.0.0.1", port_);
  c.set_ca_cert_path(platform_->tls().ca_cert.c_str());
  c.enable_server_certificate_verification(true);
  auto r = c.Get("/api/v1/openapi.json");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body), json::parse(OpenApiDocument()));
  EXPECT_EQ(json::parse(r->body)["openapi"], "3.1.0");
}

TEST(OpenApiMapping, PatternToTemplate_ExactByPosition) {
  const json doc = {{"servers", {{{"url", "/api/v1"}}}},
                    {"paths",
                     {{"/things/{thing_id}/parts/{n}",
                       {{"parameters",
                         {{{"name", "thing_id"}, {"in", "path"}, {"schema", {{"type", "string"}}}},
                          {{"name", "n"}, {"in", "path"}, {"schema", {{"type", "integer"}}}}}},
                        {"get", json::object()}}},
                      {"/things/{thing_id}", {{"get", json::object()}}},
                      {"/m.json", {{"servers", {{{"url", "/"}}}}, {"get", json::object()}}}}}};
  const auto documented = DocumentedOperations(doc);
  std::string error;
  EXPECT_EQ(TemplateOf({"GET", R"(/api/v1/things/([^/]+)/parts/(\d+))", "api"}, documented, &error),
            "/api/v1/things/{thing_id}/parts/{n}");
  EXPECT_EQ(TemplateOf({"GET", R"(/api/v1/things/([^/]+))", "api"}, documented, &error),
            "/api/v1/things/{thing_id}");
  EXPECT_EQ(TemplateOf({"GET", "/m.json", "api"}, documented, &error), "/m.json");
  // A string group against an integer parameter, another shape, an operator outside a group.
  EXPECT_EQ(
      TemplateOf({"GET", R"(/api/v1/things/([^/]+)/parts/([^/]+))", "api"}, documented, &error),
      "");
  EXPECT_NE(error.find("integer"), std::string::npos) << error;
  EXPECT_EQ(TemplateOf({"GET", R"(/api/v1/things/([^/]+)/bits)", "api"}, documented, &error), "");
  EXPECT_EQ(TemplateOf({"GET", R"(/api/v1/things/.*)", "api"}, documented, &error), "");
  EXPECT_NE(error.find("operator"), std::string::npos) << error;
}

// Every route driven to a success (and its refusals); each answer is checked against the
// document's schema for its path, method and status by scripts/check-openapi.py.
TEST_F(OpenApiTest, Responses_MatchTheirSchemas) {
  Drive();
  // Every route has a success sample: a new route without one fails here.
  std::set<Operation> succeeded;
  for (const json& s : samples_) {
    const int status = s["status"];
    if (status >= 200 && status < 300)
      succeeded.emplace(s["method"].get<std::string>(), s["template"].get<std::string>());
  }
  for (const RouteInfo& r : api_->Routes()) {
    std::string error;
    const std::string tmpl = TemplateOf(r, documented_, &error);
    if (kConsoleAssetCount == 0 && tmpl == "/assets/{name}") continue;  // OTA_CONSOLE=OFF
    EXPECT_TRUE(succeeded.count({r.method, tmpl}))
        << r.method << " " << (tmpl.empty() ? r.pattern : tmpl)
        << ": no successful sample call (add one to OpenApiTest::Drive)";
  }

  const std::filesystem::path doc = dir_ / "openapi.json", samples = dir_ / "samples.jsonl";
  std::ofstream(doc) << OpenApiDocument();
  {
    std::ofstream out(samples);
    for (const json& s : samples_)
      out << s.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  }
  const auto [status, output] = CheckOpenApi(doc, samples);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("check-openapi: " + std::to_string(samples_.size()) + " samples"),
            std::string::npos)
      << output;
}

// The checker fails, naming the route, the status and the error: an answer off its schema, an
// undocumented status, a wrong content type, a request off its requestBody schema.
TEST(CheckOpenApi, Mismatches_FailNamingRouteStatusAndError) {
  testing::TempDir dir("ota-check-openapi");
  const json doc = {
      {"openapi", "3.1.0"},
      {"servers", {{{"url", "/api/v1"}}}},
      {"components",
       {{"schemas",
         {{"Thing",
           {{"type", "object"},
            {"required", {"id"}},
            {"properties", {{"id", {{"type", "integer"}}}}}}}}}}},
      {"paths",
       {{"/things",
         {{"post",
           {{"requestBody",
             {{"required", true},
              {"content",
               {{"application/json",
                 {{"schema",
                   {{"type", "object"},
                    {"required", {"name"}},
                    {"properties", {{"name", {{"type", "string"}}}}}}}}}}}}},
            {"responses",
             {{"201",
               {{"description", "made"},
                {"content",
                 {{"application/json",
                   {{"schema", {{"$ref", "#/components/schemas/Thing"}}}}}}}}}}}}}}}}}};
  std::ofstream(dir / "doc.json") << doc.dump();
  const auto sample = [](int status, const std::string& type, const std::string& body,
                         const std::string& request) {
    return json{{"method", "POST"},       {"template", "/api/v1/things"},
                {"status", status},       {"content_type", type},
                {"body", body},           {"request_content_type", "application/json"},
                {"request_body", request}}
        .dump();
  };
  std::ofstream(dir / "good.jsonl")
      << sample(201, "application/json", R"({"id": 1})", R"({"name": "a"})") << "\n";
  auto [status, output] = CheckOpenApi(dir / "doc.json", dir / "good.jsonl");
  EXPECT_EQ(status, 0) << output;

  std::ofstream(dir / "bad.jsonl")
      << sample(201, "application/json", R"({"id": "one"})", R"({"name": "a"})") << "\n"
      << sample(200, "application/json", R"({"id": 1})", R"({"name": "a"})") << "\n"
      << sample(201, "text/plain", "1", R"({"name": "a"})") << "\n"
      << sample(201, "application/json", R"({"id": 1})", R"({"name": 5})") << "\n";
  std::tie(status, output) = CheckOpenApi(dir / "doc.json", dir / "bad.jsonl");
  EXPECT_EQ(status, 1) << output;
  EXPECT_NE(output.find("POST /api/v1/things -> 201: the answer does not match its schema at id: "
                        "'one' is not of type 'integer'"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("POST /api/v1/things -> 200: status not documented"), std::string::npos)
      << output;
  EXPECT_NE(output.find("content type text/plain is not documented"), std::string::npos) << output;
  EXPECT_NE(output.find("does not match the requestBody schema at name"), std::string::npos)
      << output;
  EXPECT_NE(output.find("4 samples, 4 failures"), std::string::npos) << output;
}

}  // namespace
}  // namespace ota::server
