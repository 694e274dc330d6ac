#include "ota/server/http_api.hpp"

#include <httplib.h>
#include <openssl/crypto.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <ctime>
#include <thread>

#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "http_api_internal.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/server/audit_log.hpp"
#include "ota/server/device_requests.hpp"
#include "ota/server/download_slots.hpp"
#include "ota/server/log.hpp"
#include "route_recorder.hpp"

#include "console_assets.hpp"

namespace ota::server {

namespace {

using nlohmann::json;

constexpr size_t kMaxBody = 2 * 1024 * 1024;  // a package (512 KB slot) with room to spare
constexpr int kDefaultTokenSeconds = 24 * 3600;
constexpr int64_t kMaxApiTokenSeconds = 10LL * 365 * 24 * 3600;  // operator tokens
constexpr auto kMaxResponseTime = std::chrono::seconds(60);

json ToJson(const Product& p) {
  json keys = json::array();
  for (const ProductKey& k : p.keys) {
    keys.push_back({{"key_id", k.key_id}, {"may_downgrade", k.may_downgrade}});
  }
  return {{"product_id", p.product_id}, {"name", p.name},   {"manufacturer", p.manufacturer},
          {"protocol", p.protocol},     {"model", p.model}, {"keys", keys}};
}

json ToJson(const Device& d) {
  json j = {{"device_id", d.device_id},   {"product_id", d.product_id}, {"node_id", d.node_id},
            {"enabled", d.enabled},       {"online", d.online},         {"last_seen", d.last_seen},
            {"fw_version", d.fw_version}, {"sw_version", d.sw_version}, {"groups", d.groups}};
  j["gateway_id"] = d.gateway_id.empty() ? json(nullptr) : json(d.gateway_id);
  return j;
}

json ToJson(const PackageRecord& r) {
  json j = {{"package_id", r.package_id},
            {"product_id", r.product_id},
            {"sha256", r.sha256},
            {"size", r.size},
            {"kind", r.kind},
            {"version", r.version},
            {"key_id", r.key_id},
            {"file_name", r.file_name},
            {"description", r.description},
            {"category", r.category}};
  j["source_version"] = r.source_version.empty() ? json(nullptr) : json(r.source_version);
  return j;
}

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  // Text from devices is stored as valid UTF-8 (SafeUtf8); anything else that is not is
  // replaced here rather than failing the whole answer.
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void Error(httplib::Response& res, int status, const std::string& message) {
  Reply(res, status, {{"error", message}});
}

std::string Bearer(const httplib::Request& req) {
  const std::string h = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  return h.rfind(prefix, 0) == 0 ? h.substr(prefix.size()) : std::string();
}

// The user session cookie (docs/server.md, "Users, roles and sessions").
constexpr const char* kSessionCookie = "ota_session";
constexpr const char* kCrossSite = "cross-site request refused: Origin does not match Host";

// The value of the ota_session cookie, or "".
std::string SessionCookie(const httplib::Request& req) {
  const std::string h = req.get_header_value("Cookie");
  const std::string prefix = std::string(kSessionCookie) + "=";
  size_t pos = 0;
  while (pos < h.size()) {
    const size_t end = std::min(h.find(';', pos), h.size());
    size_t a = pos, b = end;
    while (a < b && h[a] == ' ')
      ++a;
    while (b > a && h[b - 1] == ' ')
      --b;
    if (h.compare(a, prefix.size(), prefix) == 0)
      return h.substr(a + prefix.size(), b - a - prefix.size());
    pos = end + 1;
  }
  return {};
}

// No Origin (not a browser's cross-origin request), or the origin of the Host asked for.
bool SameOrigin(const httplib::Request& req) {
  if (!req.has_header("Origin")) return true;
  const auto lower = [](std::string v) {
    for (char& c : v)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
  };
  const std::string host = lower(req.get_header_value("Host"));
  return !host.empty() && lower(req.get_header_value("Origin")) == "https://" + host;
}

std::string SessionCookieHeader(const std::string& value, bool clear) {
  return std::string(kSessionCookie) + "=" + value + "; Path=/; HttpOnly; Secure; SameSite=Strict" +
         (clear ? "; Max-Age=0" : "");
}

json Body(const httplib::Request& req) {
  try {
    json j = json::parse(req.body);
    if (!j.is_object()) throw ApiError(400, "the body must be a JSON object");
    return j;
  } catch (const json::parse_error&) {
    throw ApiError(400, "the body is not valid JSON");
  }
}

std::string Str(const json& j, const char* key, bool required = false) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) throw ApiError(400, std::string(key) + " is required");
    return {};
  }
  if (!j[key].is_string()) throw ApiError(400, std::string(key) + " must be a string");
  return j[key];
}

int64_t PackageId(const std::string& s) {
  try {
    size_t used = 0;
    const int64_t id = std::stoll(s, &used);
    if (used == s.size() && id > 0) return id;
  } catch (const std::exception&) {
  }
  throw ApiError(404, "no package " + s);
}

// Letters, digits, '.', '-' and '_' (others become '_'), no leading dot, at most 100.
std::string FileNameChars(const std::string& s) {
  std::string out;
  for (const char c : s) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-' || c == '_';
    out += keep ? c : '_';
  }
  if (out.size() > 100) out.erase(0, out.size() - 100);  // keeps the extension
  while (!out.empty() && out.front() == '.')
    out.erase(0, 1);
  return out;
}

// The name in Content-Disposition: a plain basename of token characters, unquoted, because
// Huawei's C SDK keeps quotes as part of the name and writes the file under it unchecked.
std::string DownloadFileName(const PackageRecord& r) {
  std::string name = FileNameChars(r.file_name.substr(r.file_name.find_last_of("/\\") + 1));
  if (name.empty()) name = FileNameChars(r.product_id + "-" + r.version + ".bin");
  return name.empty() ? "package-" + std::to_string(r.package_id) + ".bin" : name;
}

using Fn = std::function<void(const httplib::Request&, httplib::Response&)>;

// When this worker thread's current request was routed: httplib calls the pre-routing
// handler and, after the response is written, the logger on the same thread.
thread_local std::chrono::steady_clock::time_point request_start;

void MarkRequestStart() {
  request_start = std::chrono::steady_clock::now();
}

// Seconds since MarkRequestStart, and clears it; 0 for a request never routed (unparsable).
double RequestSeconds() {
  if (request_start == std::chrono::steady_clock::time_point{}) return 0;
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - request_start;
  request_start = {};
  return took.count();
}

// Operator actions that change something are audited, accepted or refused (docs/server.md,
// "Audit log"); reads and the broker's webhooks are not.
bool Audited(const httplib::Request& req) {
  return req.method != "GET" && req.method != "HEAD" && req.method != "OPTIONS" &&
         req.path.rfind("/broker/", 0) != 0 && req.path != "/api/v1/tasks/preview";
}

// The row for `req` answered with `res`: the route template is the metrics' (the OpenAPI
// document's); ids a 2xx answer names (what it created) join those from the path.
// `actor`: AuditActor of the bearer token, or user:NAME for a user's session.
AuditEntry AuditOf(Platform& p, const httplib::Request& req, const httplib::Response& res,
                   const std::string& actor) {
  AuditEntry e;
  e.at = std::time(nullptr);
  e.actor = actor;
  e.method = req.method;
  e.route = p.metrics().RouteOf(req.method, req.path);
  if (e.route == "other") e.route = req.path.substr(0, 200);
  e.object_ids = AuditObjectIds(e.route, req.path);
  e.status = res.status < 0 ? 200 : res.status;
  if (e.status >= 200 && e.status < 300) {
    const json out = json::parse(res.body, nullptr, false);
    if (out.is_object()) {
      for (const char* id :
           {"product_id", "device_id", "package_id", "task_id", "key_id", "request_id"}) {
        if (!e.object_ids.contains(id) && out.contains(id) && !out[id].is_null())
          e.object_ids[id] = out[id];
      }
    }
  }
  e.summary = AuditSummary(req.body, req.params);
  e.remote_addr = req.remote_addr;
  return e;
}

// After the handler, in its own transaction: a refusal (the change rolled back) or a handler
// that runs without the lock. A failure here is logged; the answer stands.
void AuditAfter(Platform& p, const httplib::Request& req, const httplib::Response& res,
                const std::string& actor) {
  try {
    std::lock_guard<std::mutex> guard(p.lock());
    RecordAudit(p.db(), AuditOf(p, req, res, actor));
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("audit: cannot record: ") + e.what());
  }
}

// Adding or removing a product's signing key: /api/v1/products/{id}/keys[/{key_id}].
bool KeyChange(const httplib::Request& req) {
  const std::string prefix = "/api/v1/products/";
  if (req.method == "GET" || req.method == "HEAD" || req.path.rfind(prefix, 0) != 0) return false;
  const size_t slash = req.path.find('/', prefix.size());
  if (slash == std::string::npos) return false;
  const std::string rest = req.path.substr(slash);
  return rest == "/keys" || rest.rfind("/keys/", 0) == 0;
}

// The scope a request needs (docs/server.md, "Operator tokens"; a user's role gives one):
// tokens, users and signing keys are admin's, changes write's, reads read's, a user's own
// session only read; the broker's login questions (/broker/v1) the broker scope's (a device
// password checked for any reader would be an oracle for device secrets).
const char* NeededScope(const httplib::Request& req) {
  if (req.path.rfind("/broker/v1/", 0) == 0) return "broker";
  if (req.path.rfind("/api/v1/tokens", 0) == 0 || req.path.rfind("/api/v1/users", 0) == 0 ||
      KeyChange(req)) {
    return "admin";
  }
  if (req.method == "GET" || req.method == "HEAD" || req.path.rfind("/api/v1/session", 0) == 0) {
    return "read";
  }
  return "write";
}

// A session cookie without a bearer token: the user's session, checked against cross-site use
// (Origin) and, for changes, the CSRF header. `actor` becomes user:NAME once the session is
// known.
std::optional<ApiCaller> SessionCaller(Platform& p, const httplib::Request& req,
                                       httplib::Response& res, const std::string& session,
                                       std::string* actor) {
  const std::optional<SessionInfo> s = p.accounts().LookupSession(session);
  if (!s) {
    Error(res, 401, "no valid session: sign in again");
    return std::nullopt;
  }
  if (actor != nullptr) *actor = "user:" + s->username;
  if (!SameOrigin(req)) {
    Error(res, 403, kCrossSite);
    return std::nullopt;
  }
  if (req.method != "GET" && req.method != "HEAD" &&
      !Accounts::SameSecret(req.get_header_value("X-CSRF-Token"), s->csrf_token)) {
    Error(res, 403, "missing or wrong CSRF token");
    return std::nullopt;
  }
  return ApiCaller{0, s->username, Accounts::RoleScope(s->role), s->username};
}

// A bearer token, else a user's session cookie (docs/server.md, "Users, roles and sessions").
// 401 for a missing, unknown, revoked or expired token or session; 403 when its scope is too
// small, or for a session's cross-site request or missing CSRF header. `actor` (if given) is
// set to the audit log's name of the caller.
std::optional<ApiCaller> Authorize(Platform& p, const httplib::Request& req, httplib::Response& res,
                                   std::string* actor = nullptr) {
  const std::string bearer = Bearer(req);
  const std::string session = SessionCookie(req);
  if (actor != nullptr) *actor = AuditActor(bearer);
  std::optional<ApiCaller> caller;
  if (bearer.empty() && !session.empty()) {
    caller = SessionCaller(p, req, res, session, actor);
    if (!caller) return std::nullopt;
  } else {
    caller = p.LookupApiToken(bearer);
    if (!caller) {
      res.set_header("WWW-Authenticate", "Bearer");
      Error(res, 401, "missing, unknown, expired or revoked API token");
      return std::nullopt;
    }
  }
  if (!caller->Allows(NeededScope(req))) {
    Error(res, 403,
          std::string(caller->user.empty() ? "this token's scope is " : "this user's scope is ") +
              caller->scope + "; this needs " + NeededScope(req));
    return std::nullopt;
  }
  return caller;
}

// Every API handler runs under the platform lock, after the operator token check; ApiError
// becomes its status, anything else a 500 with the reason. An audited action's row commits in
// the same transaction as its change, or (refused, so nothing changed) right after.
httplib::Server::Handler Guard(Platform& p, Fn fn) {
  return [&p, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
    const bool audited = Audited(req);
    bool recorded = false;
    std::string actor;
    try {
      std::lock_guard<std::mutex> guard(p.lock());
      if (!Authorize(p, req, res, &actor)) {
        // Refused (401/403): recorded after, with nothing changed.
      } else if (!audited) {
        fn(req, res);
      } else {
        Transaction tx(p.db());
        fn(req, res);
        RecordAudit(p.db(), AuditOf(p, req, res, actor));
        tx.Commit();
        recorded = true;
        p.changes().Bump();  // live views look again (GET /api/v1/events)
      }
    } catch (const ApiError& e) {
      Error(res, e.status, e.what());
    } catch (const std::exception& e) {
      Error(res, 500, std::string("internal error: ") + e.what());
    }
    if (audited && !recorded) AuditAfter(p, req, res, actor);
  };
}

int64_t Number(const json& j, const char* key, int64_t fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number_integer()) throw ApiError(400, std::string(key) + " must be an integer");
  return j[key].get<int64_t>();
}

int64_t QueryNumber(const httplib::Request& req, const char* key, int64_t fallback) {
  if (!req.has_param(key)) return fallback;
  const std::string v = req.get_param_value(key);
  try {
    size_t used = 0;
    const int64_t n = std::stoll(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  throw ApiError(400, std::string(key) + " must be an integer");
}

std::vector<std::string> Strings(const json& j, const char* key) {
  std::vector<std::string> out;
  if (!j.contains(key)) return out;
  if (!j[key].is_array()) throw ApiError(400, std::string(key) + " must be an array of strings");
  for (const auto& v : j[key]) {
    if (!v.is_string()) throw ApiError(400, std::string(key) + " must be an array of strings");
    out.push_back(v);
  }
  return out;
}

}  // namespace

json DownloadGrant(Platform& platform, const std::string& base_url, const std::string& device_id,
                   const PackageRecord& package, std::time_t expires_at, int64_t task_id) {
  const std::string token =
      platform.download_tokens().Issue(device_id, package.package_id, expires_at, task_id,
                                       platform.registry().Generation(device_id));
  return {{"version", package.version},
          {"url", base_url + "/download/devices/" + device_id + "/packages/" +
                      std::to_string(package.package_id)},
          {"access_token", token},
          {"expires", std::max<int64_t>(1, expires_at - std::time(nullptr))},
          {"file_size", package.size},
          {"file_name", package.file_name},
          {"sign", package.sha256}};
}

HttpApi::HttpApi(Platform& platform, UpgradeTasks* tasks, int download_workers)
    : platform_(platform),
      tasks_(tasks),
      server_(std::make_unique<httplib::SSLServer>(platform.tls().server_cert.c_str(),
                                                   platform.tls().server_key.c_str())),
      downloads_(std::make_unique<httplib::Server>()),
      download_front_(
          std::make_unique<DownloadFront>(platform.tls().server_cert, platform.tls().server_key,
                                          DownloadFrontOptions{std::max(1, download_workers)})),
      download_slots_(std::make_unique<DownloadSlots>()) {
  if (!server_->is_valid()) {
    throw std::runtime_error("https: cannot load the TLS files");
  }
  // Header and body go out as separate TLS records: without TCP_NODELAY, Nagle's algorithm
  // holds the second until the client's delayed ACK (~40 ms per response).
  server_->set_tcp_nodelay(true);
  server_->set_payload_max_length(kMaxBody);
  server_->set_keep_alive_timeout(5);
  // Open event streams each hold a worker: ordinary requests keep the default pool's size.
  server_->new_task_queue = [] {
    return new httplib::ThreadPool(CPPHTTPLIB_THREAD_POOL_COUNT + kMaxEventStreams);
  };
  // cpp-httplib also sets SO_REUSEPORT, which lets a second ota-server bind the same port and
  // silently take half its connections: an address in use must be an error.
  server_->set_socket_options([](socket_t sock) {
    const int one = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  });
  downloads_->set_tcp_nodelay(true);
  downloads_->set_payload_max_length(4096);  // GETs only
  // A device between two ranges (it erases and programs a flash sector in between) holds its
  // worker at most this long; then it connects again.
  downloads_->set_keep_alive_timeout(2);
  downloads_->set_keep_alive_max_count(256);
  downloads_->set_read_timeout(10, 0);
  downloads_->set_write_timeout(30, 0);
  // One backend worker per front worker: a front connection holds at most one backend one.
  const size_t workers = static_cast<size_t>(std::max(1, download_workers));
  downloads_->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  // Accepted sockets inherit it: a fixed send buffer (see DownloadFront).
  downloads_->set_socket_options([](socket_t sock) {
    const int one = 1, sndbuf = kBackendSocketBuffer;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  });
  // The backend listens on loopback: only the front's own connections are served.
  downloads_->set_pre_routing_handler(
      [front = download_front_.get()](const httplib::Request& req, httplib::Response& res) {
        MarkRequestStart();
        if (req.remote_addr == "127.0.0.1" && front->OwnsBackendConnection(req.remote_port)) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        Error(res, 403, "use the download listener");
        return httplib::Server::HandlerResponse::Handled;
      });
  // Errors are answered whole, whatever Range the request had. cpp-httplib 0.11 applies the
  // request's ranges to every answer it writes (Server::write_response_core -> apply_ranges):
  // an error's JSON would be cut to the range, or emptied and turned into a 416, and given a
  // Content-Range. Its error handler runs for every status >= 400 just before that, so it
  // drops the ranges there (the Request is httplib's own non-const object; the handlers only
  // see it const). An error httplib answers itself (a malformed Range, a bad request line, no
  // route) gets a JSON body too; "Handled" makes httplib size it (Content-Length), now without
  // ranges.
  downloads_->set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        const_cast<httplib::Request&>(req).ranges.clear();
        if (res.body.empty()) {
          Error(res, res.status,
                res.status == 416   ? "invalid Range header"
                : res.status == 404 ? "no such download"
                                    : "request refused (HTTP " + std::to_string(res.status) + ")");
        }
        return httplib::Server::HandlerResponse::Handled;
      }));
  downloads_->set_logger([&p = platform_](const httplib::Request&, const httplib::Response& res) {
    p.metrics().DownloadRequest(res.status, RequestSeconds());
  });
  // Latency by route template (Metrics::RouteOf), never by raw path.
  // Every answer, a route's or httplib's own (404 for no route), carries the console's security
  // headers; API answers (sessions, new passwords and tokens among them) are never stored by a
  // browser or a proxy.
  server_->set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    MarkRequestStart();
    ConsoleSecurityHeaders(res);
    if (req.path.rfind("/api/", 0) == 0) res.set_header("Cache-Control", "no-store");
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server_->set_logger([&p = platform_](const httplib::Request& req, const httplib::Response& res) {
    p.metrics().ApiRequest(req.method, req.path, res.status, RequestSeconds());
  });
  OperatorRoutes();
  ConsoleRoutes();
  AccountRoutes();
  DownloadRoutes();
  if (tasks_ != nullptr) TaskRoutes();
}

HttpApi::~HttpApi() = default;

int HttpApi::Bind(const std::string& host, int port) {
  const int bound =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound > 0) base_url_ = "https://" + host + ":" + std::to_string(bound);
  return bound;
}

int HttpApi::BindDownloads(const std::string& host, int port, const std::string& public_url,
                           const std::string& public_host) {
  download_backend_port_ = downloads_->bind_to_any_port("127.0.0.1");
  if (download_backend_port_ <= 0) return -1;
  download_front_->set_backend_port(download_backend_port_);
  const int bound = download_front_->Bind(host, port);
  if (bound > 0) {
    std::string url_host = public_host.empty() ? host : public_host;
    if (url_host.find(':') != std::string::npos && url_host.front() != '[') {
      url_host = "[" + url_host + "]";  // an IPv6 literal
    }
    download_base_url_ =
        !public_url.empty() ? public_url : "https://" + url_host + ":" + std::to_string(bound);
    while (download_base_url_.size() > 8 && download_base_url_.back() == '/')
      download_base_url_.pop_back();
  }
  return bound;
}

bool HttpApi::Serve() {
  return server_->listen_after_bind();
}

bool HttpApi::ServeDownloads() {
  std::atomic<bool> backend_done{false};
  std::thread backend([this, &backend_done] {
    downloads_->listen_after_bind();
    backend_done = true;
  });
  // stop() before the backend runs would be lost: the front starts once it does.
  while (!downloads_->is_running() && !backend_done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const bool ok = download_front_->Serve();
  downloads_->stop();
  backend.join();
  return ok;
}

void HttpApi::Stop() {
  stopping_streams_ = true;  // open event streams end now, not at their next ping
  platform_.changes().Wake();
  server_->stop();
  download_front_->Stop();
}

void HttpApi::OperatorRoutes() {
  RouteRecorder s(*server_, routes_, "api");
  Platform& p = platform_;

  auto api = [&p](Fn fn) { return Guard(p, std::move(fn)); };

  // The web console's static files (console_assets.cpp); its API calls carry the session.
  const ConsoleHandlers console = MakeConsoleHandlers();
  s.Get("/", console.page);
  s.Get("/index.html", console.page);
  s.Get(kConsoleAssetPattern, console.asset);

  s.Get("/api/v1/openapi.json", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(OpenApiDocument(), "application/json");
  });
  // Prometheus (docs/server.md, "Metrics"): the operator token unless --metrics-public. The
  // database part is read through this thread's read connection, never under the lock.
  s.Get("/metrics", [this, &p](const httplib::Request& req, httplib::Response& res) {
    try {
      if (!metrics_public_) {
        std::lock_guard<std::mutex> guard(p.lock());
        if (!Authorize(p, req, res)) return;
      }
      res.set_content(p.metrics().Render(p.ReadDb()), "text/plain; version=0.0.4; charset=utf-8");
    } catch (const std::exception& e) {
      Error(res, 500, std::string("internal error: ") + e.what());
    }
  });

  // The audit log, latest first (docs/server.md, "Audit log"); reading it is not audited.
  s.Get("/api/v1/audit", api([&p](const httplib::Request& req, httplib::Response& res) {
          Reply(res, 200,
                ListAudit(p.db(), QueryNumber(req, "limit", 100), QueryNumber(req, "offset", 0),
                          req.get_param_value("actor"), QueryNumber(req, "since", 0)));
        }));

  s.Post("/api/v1/products", api([&p](const httplib::Request& req, httplib::Response& res) {
           const json b = Body(req);
           const json model = b.contains("model") ? b["model"] : json();
           Reply(res, 201,
                 ToJson(p.registry().CreateProduct(
                     Str(b, "product_id"), Str(b, "name", true), Str(b, "manufacturer"),
                     b.contains("protocol") ? Str(b, "protocol") : "MQTT", model)));
         }));
  s.Get("/api/v1/products", api([&p](const httplib::Request&, httplib::Response& res) {
          json out = json::array();
          for (const Product& prod : p.registry().ListProducts())
            out.push_back(ToJson(prod));
          Reply(res, 200, out);
        }));
  s.Get(R"(/api/v1/products/([^/]+))",
        api([&p](const httplib::Request& req, httplib::Response& res) {
          Reply(res, 200, ToJson(p.registry().GetProduct(req.matches[1])));
        }));
  s.Post(R"(/api/v1/products/([^/]+)/keys)",
         api([&p](const httplib::Request& req, httplib::Response& res) {
           const json b = Body(req);
           const bool down = b.contains("may_downgrade") && b["may_downgrade"].is_boolean() &&
                             b["may_downgrade"].get<bool>();
           const ProductKey k =
               p.registry().AddProductKey(req.matches[1], Str(b, "public_pem", true), down);
           Reply(res, 201, {{"key_id", k.key_id}, {"may_downgrade", k.may_downgrade}});
         }));
  s.Post(R"(/api/v1/products/([^/]+)/packages)",
         api([&p](const httplib::Request& req, httplib::Response& res) {
           const std::vector<uint8_t> bytes(req.body.begin(), req.body.end());
           const std::string name =
               req.has_param("file_name") ? req.get_param_value("file_name") : "";
           const std::string category = req.get_param_value("category");
           if (category == "software") {
             // SOTA: any file, with a detached signature by a product key (hex DER).
             long len = 0;
             const std::string hex = req.get_param_value("signature");
             std::unique_ptr<unsigned char, void (*)(void*)> sig(
                 hex.empty() || hex.size() > 1024 ? nullptr : OPENSSL_hexstr2buf(hex.c_str(), &len),
                 [](void* b) { OPENSSL_free(b); });
             if (!sig) throw ApiError(400, "signature: hex of a DER ECDSA signature is required");
             const std::vector<uint8_t> der(sig.get(), sig.get() + len);
             Reply(res, 201,
                   ToJson(p.packages().UploadSoftware(req.matches[1], bytes, name,
                                                      req.get_param_value("version"), der)));
             return;
           }
           if (!category.empty() && category != "firmware") {
             throw ApiError(400, "category: firmware or software");
           }
           Reply(res, 201, ToJson(p.packages().Upload(req.matches[1], bytes, name)));
         }));

  // For brokers that authenticate over HTTP (EMQX, VerneMQ webhooks): the same rules as the
  // Mosquitto plugin, from the same store (docs/spec/broker-auth.md). The broker presents an
  // operator token.
  s.Post("/broker/v1/auth", api([&p](const httplib::Request& req, httplib::Response& res) {
           const json b = Body(req);
           const broker::ConnectVerdict v = broker::CheckDeviceConnect(
               Str(b, "clientid"), Str(b, "username"), Str(b, "password"), std::time(nullptr), 1,
               [&p](const std::string& id) { return p.registry().Credential(id); });
           if (v != broker::ConnectVerdict::kAccepted) p.registry().Count("broker_auth_refused");
           p.metrics().BrokerAuth(v);
           Reply(res, 200,
                 {{"result", v == broker::ConnectVerdict::kAccepted ? "allow" : "deny"},
                  {"reason", broker::ConnectVerdictName(v)}});
         }));
  s.Post("/broker/v1/acl", api([](const httplib::Request& req, httplib::Response& res) {
           const json b = Body(req);
           const std::string action = Str(b, "action", true);
           if (action != "publish" && action != "subscribe") {
             throw ApiError(400, "action: publish or subscribe");
           }
           const bool ok =
               broker::DeviceTopicAllowed(Str(b, "username", true), Str(b, "topic", true),
                                          action == "publish" ? broker::TopicAccess::kPublish
                                                              : broker::TopicAccess::kSubscribe);
           Reply(res, 200, {{"result", ok ? "allow" : "deny"}});
         }));

  s.Post("/api/v1/devices", api([&p](const httplib::Request& req, httplib::Response& res) {
           const json b = Body(req);
           auto [device, secret] = p.registry().CreateDevice(
               Str(b, "product_id", true), Str(b, "node_id", true), Str(b, "device_id"),
               Str(b, "secret"), Str(b, "gateway_id"));
           json out = ToJson(device);
           if (device.gateway_id.empty()) out["secret"] = secret;  // shown once, here; never logged
           Reply(res, 201, out);
         }));
  // A gateway's sub-devices (docs/server.md, "Gateways and sub-devices"): no secret, no login.
  s.Post(R"(/api/v1/devices/([^/]+)/sub-devices)",
         api([&p](const httplib::Request& req, httplib::Response& res) {
           const json b = Body(req);
           Reply(res, 201,
                 ToJson(p.registry()
                            .CreateDevice(Str(b, "product_id", true), Str(b, "node_id", true),
                                          Str(b, "device_id"), Str(b, "secret"), req.matches[1])
                            .first));
         }));
  s.Get(R"(/api/v1/devices/([^/]+)/sub-devices)",
        api([&p](const httplib::Request& req, httplib::Response& res) {
          p.registry().GetDevice(req.matches[1]);  // 404 first
          json out = json::array();
          for (const std::string& id : p.registry().SubDeviceIds(req.matches[1]))
            out.push_back(ToJson(p.registry().GetDevice(id)));
          Reply(res, 200, out);
        }));
  // GET /api/v1/devices (search and paging): console_api.cpp.
  s.Get(R"(/api/v1/devices/([^/]+))",
        api([&p](const httplib::Request& req, httplib::Response& res) {
          json out = ToJson(p.registry().GetDevice(req.matches[1]));
          out["sdk_info"] = p.registry().SdkInfo(req.matches[1]);
          Reply(res, 200, out);
        }));
  s.Get(R"(/api/v1/devices/([^/]+)/logs)",
        api([&p](const httplib::Request& req, httplib::Response& res) {
          Reply(res, 200, p.registry().DeviceLogs(req.matches[1]));
        }));
  s.Patch(R"(/api/v1/devices/([^/]+))",
          api([&p](const httplib::Request& req, httplib::Response& res) {
            const json b = Body(req);
            if (!b.contains("enabled") || !b["enabled"].is_boolean()) {
              throw ApiError(400, "enabled (true or false) is required");
            }
            p.registry().SetDeviceEnabled(req.matches[1], b["enabled"].get<bool>());
            Reply(res, 200, ToJson(p.registry().GetDevice(req.matches[1])));
          }));
  s.Post(R"(/api/v1/devices/([^/]+)/groups)",
         api([&p](const httplib::Request& req, httplib::Response& res) {
           const json b = Body(req);
           p.registry().AddToGroup(req.matches[1], Str(b, "group", true));
           Reply(res, 200, ToJson(p.registry().GetDevice(req.matches[1])));
         }));
  s.Get(R"(/api/v1/devices/([^/]+)/properties)",
        api([&p](const httplib::Request& req, httplib::Response& res) {
          Reply(res, 200, p.registry().Properties(req.matches[1]));
        }));

  s.Get("/api/v1/packages", api([&p](const httplib::Request& req, httplib::Response& res) {
          json out = json::array();
          for (const PackageRecord& r : p.packages().List(req.get_param_value("product_id"))) {
            out.push_back(ToJson(r));
          }
          Reply(res, 200, out);
        }));
  s.Get(R"(/api/v1/packages/(\d+))", api([&p](const httplib::Request& req, httplib::Response& res) {
          Reply(res, 200, ToJson(p.packages().Get(PackageId(req.matches[1]))));
        }));
  // What a firmware_upgrade command carries (iotda-protocol.md): URL, token, expiry, size, sign.
  s.Post(R"(/api/v1/packages/(\d+)/download-tokens)",
         api([this, &p](const httplib::Request& req, httplib::Response& res) {
           const json b = Body(req);
           const PackageRecord r = p.packages().Get(PackageId(req.matches[1]));
           const Device d = p.registry().GetDevice(Str(b, "device_id", true));
           if (d.product_id != r.product_id) {
             throw ApiError(400, "device " + d.device_id + " is not of product " + r.product_id);
           }
           const int expires = b.contains("expires") && b["expires"].is_number_integer()
                                   ? b["expires"].get<int>()
                                   : kDefaultTokenSeconds;
           if (expires < 1 || expires > 7 * 24 * 3600) throw ApiError(400, "expires: 1..604800");
           json grant =
               DownloadGrant(p, download_base_url_, d.device_id, r, std::time(nullptr) + expires);
           grant["expires"] = expires;
           Reply(res, 201, grant);
         }));

  // Deletions and secrets (docs/server.md): each answers 200 with what went.
  s.Delete(R"(/api/v1/devices/([^/]+))",
           api([&p](const httplib::Request& req, httplib::Response& res) {
             p.registry().DeleteDevice(req.matches[1]);
             Reply(res, 200, {{"deleted", {{"device_id", req.matches[1].str()}}}});
           }));
  s.Delete(R"(/api/v1/devices/([^/]+)/groups/([^/]+))",
           api([&p](const httplib::Request& req, httplib::Response& res) {
             p.registry().RemoveFromGroup(req.matches[1], req.matches[2]);
             Reply(res, 200, ToJson(p.registry().GetDevice(req.matches[1])));
           }));
  s.Post(R"(/api/v1/devices/([^/]+)/secret)",
         api([&p](const httplib::Request& req, httplib::Response& res) {
           const json b = req.body.empty() ? json::object() : Body(req);
           const std::string secret = p.registry().RotateSecret(req.matches[1], Str(b, "secret"));
           Reply(res, 200, {{"device_id", req.matches[1].str()}, {"secret", secret}});
         }));
  s.Delete(R"(/api/v1/packages/(\d+))",
           api([&p](const httplib::Request& req, httplib::Response& res) {
             const int64_t id = PackageId(req.matches[1]);
             p.packages().Delete(id);
             Reply(res, 200, {{"deleted", {{"package_id", id}}}});
           }));
  s.Delete(R"(/api/v1/products/([^/]+)/keys/([^/]+))",
           api([&p](const httplib::Request& req, httplib::Response& res) {
             p.registry().RemoveProductKey(req.matches[1], req.matches[2]);
             Reply(res, 200, ToJson(p.registry().GetProduct(req.matches[1])));
           }));

  // Operator tokens (admin scope, see NeededScope): the token is in the answer once.
  s.Post("/api/v1/tokens", api([&p](const httplib::Request& req, httplib::Response& res) {
           const json b = Body(req);
           const std::string name = Str(b, "name", true);
           if (name.empty() || name.size() > 100) throw ApiError(400, "name: 1-100 characters");
           const std::string scope = Str(b, "scope", true);
           if (!IsApiScope(scope)) throw ApiError(400, "scope: read, write, admin or broker");
           const int64_t expires_in = Number(b, "expires_in_s", 0);
           if (expires_in < 0 || expires_in > kMaxApiTokenSeconds) {
             throw ApiError(400, "expires_in_s: 1.." + std::to_string(kMaxApiTokenSeconds) +
                                     ", or 0 or null for never");
           }
           const int64_t now = std::time(nullptr);
           const int64_t expires_at = expires_in > 0 ? now + expires_in : 0;
           int64_t id = 0;
           const std::string token = p.CreateApiToken(name, scope, expires_at, &id);
           Reply(res, 201,
                 {{"id", id},
                  {"name", name},
                  {"scope", scope},
                  {"created", now},
                  {"expires", expires_at > 0 ? json(expires_at) : json(nullptr)},
                  {"token", token}});
         }));
  s.Get("/api/v1/tokens", api([&p](const httplib::Request&, httplib::Response& res) {
          Reply(res, 200, p.ListApiTokens());
        }));
  s.Delete(R"(/api/v1/tokens/(\d+))",
           api([&p](const httplib::Request& req, httplib::Response& res) {
             int64_t id = 0;
             try {
               id = std::stoll(req.matches[1].str());
             } catch (const std::exception&) {
             }
             if (id <= 0 || !p.RevokeApiToken(id)) {
               throw ApiError(404, "no token " + req.matches[1].str());
             }
             Reply(res, 200, {{"revoked", {{"id", id}}}});
           }));
}

void HttpApi::DownloadRoutes() {
  Platform& p = platform_;
  DownloadSlots* slots = download_slots_.get();
  // Device downloads: the token must be valid, unexpired, for this very package, and issued to
  // the device whose URL this is (so a token handed to another device is refused); the device
  // must be enabled and the task that issued the token must still want this download. The
  // checks read through this thread's read-only connection: downloads never wait for the
  // platform's write lock. The file is streamed from disk, never held whole in memory.
  RouteRecorder on_download(*downloads_, routes_, "download");
  on_download.Get(
      R"(/download/devices/([^/]+)/packages/(\d+))",
      [&p, slots](const httplib::Request& req, httplib::Response& res) {
        try {
          const std::string url_device = req.matches[1];
          const int64_t id = PackageId(req.matches[2]);
          const std::string token = Bearer(req);
          if (token.empty()) {
            res.set_header("WWW-Authenticate", "Bearer");
            return Error(res, 401, "missing download token");
          }
          std::string device;
          int64_t task_id = 0, generation = 0;
          switch (p.download_tokens().Verify(token, id, std::time(nullptr), &device, &task_id,
                                             &generation)) {
            case DownloadTokens::Check::kValid:
              break;
            case DownloadTokens::Check::kExpired:
              return Error(res, 401, "download token expired");
            case DownloadTokens::Check::kOtherPackage:
              return Error(res, 403, "download token is for another package");
            default:
              return Error(res, 401, "invalid download token");
          }
          if (device != url_device) return Error(res, 403, "download token is for another device");
          std::shared_ptr<DownloadSlots::Slot> slot = slots->Take(device);
          if (!slot) {
            res.set_header("Retry-After", "1");
            return Error(res, 429, "too many downloads at once for this device");
          }
          Database& db = p.ReadDb();
          if (!UpgradeTasks::DownloadAllowed(db, task_id, device, id, generation)) {
            return Error(res, 403,
                         "download token revoked (task stopped, upgrade over, device disabled, "
                         "deleted or its secret rotated)");
          }
          const PackageRecord record = PackageStore::Read(db, id);
          const std::filesystem::path blob = p.packages().BlobPath(record);
          auto file = std::make_shared<std::ifstream>(blob, std::ios::binary);
          if (!*file) return Error(res, 500, "package file missing");
          const auto size = static_cast<size_t>(record.size);
          for (const auto& [first, last] : req.ranges) {
            if (first >= 0 && static_cast<size_t>(first) >= size) {
              res.set_header("Content-Range", "bytes */" + std::to_string(size));
              return Error(res, 416, "range outside the file");
            }
          }
          res.set_header("Content-Disposition", "attachment; filename=" + DownloadFileName(record));
          // cpp-httplib answers Range requests from the provider: 206 + Content-Range.
          // A device that reads slower than this ties up a worker: it is cut off and resumes from
          // its saved offset with a new Range request (the agent asks 4 KB at a time).
          const auto cut_at = std::chrono::steady_clock::now() + kMaxResponseTime;
          res.set_content_provider(size, "application/octet-stream",
                                   [file, cut_at, slot, metrics = &p.metrics()](
                                       size_t offset, size_t length, httplib::DataSink& sink) {
                                     if (std::chrono::steady_clock::now() > cut_at) return false;
                                     char buf[16384];
                                     file->seekg(static_cast<std::streamoff>(offset));
                                     const size_t n = std::min(length, sizeof(buf));
                                     file->read(buf, static_cast<std::streamsize>(n));
                                     const std::streamsize got = file->gcount();
                                     if (got <= 0 || !sink.write(buf, static_cast<size_t>(got)))
                                       return false;
                                     metrics->DownloadBytes(static_cast<uint64_t>(got));
                                     return true;
                                   });
        } catch (const ApiError& e) {
          Error(res, e.status, e.what());
        } catch (const std::exception& e) {
          Error(res, 500, std::string("internal error: ") + e.what());
        }
      });
}

namespace {

bool Flag(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return false;
  if (!j[key].is_boolean()) throw ApiError(400, std::string(key) + " must be true or false");
  return j[key].get<bool>();
}

int SmallNumber(const json& j, const char* key, int fallback) {
  const int64_t v = Number(j, key, fallback);
  if (v < -1'000'000'000 || v > 1'000'000'000)
    throw ApiError(400, std::string(key) + ": too large");
  return static_cast<int>(v);
}

// {"waves":[{"name","group"|"percent"|"devices","failure_threshold_percent"}],
//  "failure_threshold_percent", "rate_per_minute"} (docs/server.md, "Staged rollouts").
RolloutSpec ParseRollout(const json& b) {
  RolloutSpec r;
  if (!b.contains("rollout") || b["rollout"].is_null()) return r;
  const json& ro = b["rollout"];
  if (!ro.is_object()) throw ApiError(400, "rollout must be an object");
  r.failure_threshold = SmallNumber(ro, "failure_threshold_percent", 100);
  r.rate_per_minute = SmallNumber(ro, "rate_per_minute", 0);
  if (ro.contains("waves")) {
    if (!ro["waves"].is_array()) throw ApiError(400, "rollout.waves must be an array");
    if (ro["waves"].size() > 20) throw ApiError(400, "rollout.waves: at most 20");
    for (const json& w : ro["waves"]) {
      if (!w.is_object()) throw ApiError(400, "a wave must be an object");
      WaveSpec ws;
      ws.name = Str(w, "name");
      ws.group = Str(w, "group");
      ws.percent = SmallNumber(w, "percent", 0);
      ws.devices = Strings(w, "devices");
      ws.failure_threshold = SmallNumber(w, "failure_threshold_percent", -1);
      r.waves.push_back(std::move(ws));
    }
  }
  return r;
}

}  // namespace

// The body of POST /api/v1/tasks (and of its preview).
TaskSpec TaskSpecOf(const httplib::Request& req) {
  const json b = Body(req);
  TaskSpec spec;
  spec.product_id = Str(b, "product_id", true);
  if (!Str(b, "kind").empty()) spec.kind = Str(b, "kind");
  spec.name = Str(b, "name");
  spec.target_version = Str(b, "target_version");
  spec.package_id = Number(b, "package_id", 0);
  spec.devices = Strings(b, "devices");
  spec.groups = Strings(b, "groups");
  spec.whole_product = Flag(b, "whole_product");
  spec.start_at = Number(b, "start_at", 0);
  spec.deadline = Number(b, "deadline", 0);
  spec.retry_count = SmallNumber(b, "retry_count", 0);
  spec.retry_interval = SmallNumber(b, "retry_interval", 300);
  spec.resend_interval = SmallNumber(b, "resend_interval", 60);
  spec.supersede = Flag(b, "supersede");
  spec.rollout = ParseRollout(b);
  return spec;
}

namespace {

int64_t TaskId(const std::string& s) {
  try {
    return std::stoll(s);
  } catch (const std::exception&) {
    throw ApiError(404, "no task " + s);
  }
}

}  // namespace

void HttpApi::TaskRoutes() {
  RouteRecorder s(*server_, routes_, "api");
  Platform& p = platform_;
  UpgradeTasks& t = *tasks_;
  s.Post("/api/v1/tasks", Guard(p, [&t](const httplib::Request& req, httplib::Response& res) {
           const int64_t id = t.Create(TaskSpecOf(req), std::time(nullptr));
           Reply(res, 201, t.Get(id, false));
         }));
  s.Get("/api/v1/tasks", Guard(p, [&t](const httplib::Request&, httplib::Response& res) {
          Reply(res, 200, t.List());
        }));
  // ?devices=false: the counts per state and wave without the per-device list.
  s.Get(R"(/api/v1/tasks/(\d+))",
        Guard(p, [&t](const httplib::Request& req, httplib::Response& res) {
          Reply(res, 200, t.Get(TaskId(req.matches[1]), req.get_param_value("devices") != "false"));
        }));
  // stop and cancel are the same: open devices become Stopped.
  for (const char* verb : {"stop", "cancel"}) {
    s.Post(std::string(R"(/api/v1/tasks/(\d+)/)") + verb,
           Guard(p, [&t](const httplib::Request& req, httplib::Response& res) {
             t.Stop(TaskId(req.matches[1]), std::time(nullptr));
             Reply(res, 200, t.Get(TaskId(req.matches[1]), false));
           }));
  }
  s.Post(R"(/api/v1/tasks/(\d+)/pause)",
         Guard(p, [&t](const httplib::Request& req, httplib::Response& res) {
           const json b = req.body.empty() ? json::object() : Body(req);
           t.Pause(TaskId(req.matches[1]), Str(b, "reason"), std::time(nullptr));
           Reply(res, 200, t.Get(TaskId(req.matches[1]), false));
         }));
  s.Post(R"(/api/v1/tasks/(\d+)/resume)",
         Guard(p, [&t](const httplib::Request& req, httplib::Response& res) {
           t.Resume(TaskId(req.matches[1]), std::time(nullptr));
           Reply(res, 200, t.Get(TaskId(req.matches[1]), false));
         }));
}

namespace {

// As Guard, but the handler runs without the platform lock (only the token check holds it):
// requests to devices wait for the device, and take the lock for each step themselves.
httplib::Server::Handler GuardUnlocked(Platform& p, Fn fn) {
  return [&p, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
    std::string actor;
    try {
      bool allowed = false;
      {
        std::lock_guard<std::mutex> guard(p.lock());
        allowed = Authorize(p, req, res, &actor).has_value();
      }
      if (allowed) {
        fn(req, res);
      }
    } catch (const ApiError& e) {
      Error(res, e.status, e.what());
    } catch (const std::exception& e) {
      Error(res, 500, std::string("internal error: ") + e.what());
    }
    if (Audited(req)) AuditAfter(p, req, res, actor);
  };
}

}  // namespace

void HttpApi::DeviceRequestRoutes(DeviceRequests& requests) {
  RouteRecorder s(*server_, routes_, "api");
  Platform& p = platform_;
  DeviceRequests& r = requests;
  const std::string dev = R"(/api/v1/devices/([^/]+))";
  // Synchronous: 200 with the outcome (succeeded, timeout, device_offline) once it is known.
  s.Post(dev + "/commands",
         GuardUnlocked(p, [&r](const httplib::Request& req, httplib::Response& res) {
           Reply(res, 200, r.Command(req.matches[1], Body(req)));
         }));
  s.Put(dev + "/properties",
        GuardUnlocked(p, [&r](const httplib::Request& req, httplib::Response& res) {
          Reply(res, 200, r.SetProperties(req.matches[1], Body(req)));
        }));
  s.Post(dev + "/properties/get",
         GuardUnlocked(p, [&r](const httplib::Request& req, httplib::Response& res) {
           Reply(res, 200, r.GetProperties(req.matches[1], Body(req)));
         }));
  // Asynchronous: 202 with the stored message; its status changes to delivered later.
  s.Post(dev + "/messages",
         GuardUnlocked(p, [&r](const httplib::Request& req, httplib::Response& res) {
           Reply(res, 202, r.Message(req.matches[1], Body(req)));
         }));
  const auto list = [&r](const char* kind) {
    return [&r, kind](const httplib::Request& req, httplib::Response& res) {
      const std::string k = kind[0] != '\0' ? kind : req.get_param_value("kind");
      Reply(
          res, 200,
          r.List(req.matches[1], k, QueryNumber(req, "limit", 50), QueryNumber(req, "offset", 0)));
    };
  };
  s.Get(dev + "/commands", Guard(p, list("command")));
  s.Get(dev + "/messages", Guard(p, list("message")));
  s.Get(dev + "/requests", Guard(p, list("")));
  s.Get(dev + "/requests/([^/]+)",
        Guard(p, [&r](const httplib::Request& req, httplib::Response& res) {
          Reply(res, 200, r.Get(req.matches[1], req.matches[2]));
        }));
}

// For the other route files (http_api_internal.hpp).
httplib::Server::Handler ApiGuard(Platform& p, ApiHandler fn) {
  return Guard(p, std::move(fn));
}
std::string ApiCallerKey(Platform& p, const httplib::Request& req) {
  const std::string bearer = Bearer(req);
  if (!bearer.empty()) {
    const std::optional<ApiCaller> c = p.LookupApiToken(bearer);
    return c ? "token:" + std::to_string(c->token_id) : "";
  }
  const std::optional<SessionInfo> s = p.accounts().LookupSession(SessionCookie(req), false);
  return s ? "user:" + s->username : "";
}
std::function<bool()> CallerStillAllowed(Platform& p, const httplib::Request& req) {
  // As Authorize chooses: the bearer token, else the cookie.
  const std::string bearer = Bearer(req);
  const std::string session = bearer.empty() ? SessionCookie(req) : "";
  const std::string needed = NeededScope(req);
  return [&p, bearer, session, needed] {
    std::lock_guard<std::mutex> guard(p.lock());
    std::optional<ApiCaller> caller;
    if (!session.empty()) {
      const std::optional<SessionInfo> s = p.accounts().LookupSession(session, false);
      if (s) caller = ApiCaller{0, s->username, Accounts::RoleScope(s->role), s->username};
    } else {
      caller = p.LookupApiToken(bearer);
    }
    return caller.has_value() && caller->Allows(needed);
  };
}
void ApiReply(httplib::Response& res, int status, const nlohmann::json& body) {
  Reply(res, status, body);
}
nlohmann::json DeviceJson(const Device& d) {
  return ToJson(d);
}
int64_t ApiQueryNumber(const httplib::Request& req, const char* key, int64_t fallback) {
  return QueryNumber(req, key, fallback);
}

namespace {

// The session of a request that carries its cookie and no bearer token; 401 otherwise.
SessionInfo RequestSession(Platform& p, const httplib::Request& req) {
  const std::string cookie = SessionCookie(req);
  std::optional<SessionInfo> s;
  if (Bearer(req).empty() && !cookie.empty()) s = p.accounts().LookupSession(cookie);
  if (!s) throw ApiError(401, "no valid session: sign in again");
  return *s;
}

// POST /api/v1/session. The password is verified without the platform lock (Argon2id takes
// tens of milliseconds and 64 MB), against a dummy hash for an unknown user so that every
// refusal costs the same; a refused or throttled attempt changes nothing in the database.
void SignIn(Platform& p, const httplib::Request& req, httplib::Response& res, std::string* actor) {
  if (!SameOrigin(req)) throw ApiError(403, kCrossSite);
  // No cookie protects a sign-in: JSON only, which another site's form cannot send (text/plain
  // with a JSON body would do for Body) and its script only after a preflight this server never
  // answers, so a page cannot sign a browser in to the attacker's account, Origin or not.
  const std::string type = req.get_header_value("Content-Type");
  if (type.substr(0, type.find(';')) != "application/json") {
    throw ApiError(415, "Content-Type must be application/json");
  }
  const json b = Body(req);
  const std::string username = Str(b, "username", true);
  const std::string password = Str(b, "password", true);
  // An invalid name cannot exist; its key in the throttle stays short.
  const std::string key = Accounts::ValidUsername(username) ? username : "";
  Accounts& a = p.accounts();
  int64_t wait = 0;
  std::optional<UserRecord> user;
  {
    std::lock_guard<std::mutex> guard(p.lock());
    wait = a.BeginSignIn(key, req.remote_addr);
    if (wait == 0 && !key.empty()) user = a.FindUser(username);
  }
  if (wait > 0) {
    p.metrics().OperatorLogin(LoginResult::kThrottled);
    res.set_header("Retry-After", std::to_string(wait));
    throw ApiError(429, "too many failed sign-ins: try again in " + std::to_string(wait) + " s");
  }
  const bool matches =
      Accounts::VerifyPassword(user ? user->password_hash : Accounts::DummyHash(), password);
  if (!user || !matches || user->disabled) {
    p.metrics().OperatorLogin(LoginResult::kRefused);
    throw ApiError(401, "wrong username or password");
  }
  const std::string rehash =
      Accounts::NeedsRehash(user->password_hash) ? Accounts::HashPassword(password) : "";
  SessionInfo info;
  std::string session;
  {
    std::lock_guard<std::mutex> guard(p.lock());
    // Deleted, disabled or given another password while this one was checked: refused all the
    // same (a reset must shut out whoever knew the old password).
    const std::optional<UserRecord> now = a.FindUser(username);
    if (!now || now->user_id != user->user_id || now->disabled ||
        now->password_hash != user->password_hash) {
      p.metrics().OperatorLogin(LoginResult::kRefused);
      throw ApiError(401, "wrong username or password");
    }
    Transaction tx(p.db());
    if (!rehash.empty()) a.Rehash(user->user_id, rehash);
    session = a.StartSession(user->user_id, &info);
    tx.Commit();
  }
  a.SignInSucceeded(key, req.remote_addr);
  p.metrics().OperatorLogin(LoginResult::kAccepted);
  *actor = "user:" + username;
  res.set_header("Set-Cookie", SessionCookieHeader(session, false));
  Reply(res, 200, info.ToJson());
}

std::optional<bool> OptionalBool(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  if (!j[key].is_boolean()) throw ApiError(400, std::string(key) + " must be true or false");
  return j[key].get<bool>();
}

}  // namespace

void HttpApi::AccountRoutes() {
  RouteRecorder s(*server_, routes_, "api");
  Platform& p = platform_;
  auto api = [&p](Fn fn) { return Guard(p, std::move(fn)); };
  // Made now, not at the first sign-in of an unknown user (which would take twice as long).
  Accounts::DummyHash();

  // Sessions (docs/server.md, "Users, roles and sessions"): signing in needs no token.
  s.Post("/api/v1/session", [&p](const httplib::Request& req, httplib::Response& res) {
    std::string actor = "anonymous";
    try {
      SignIn(p, req, res, &actor);
    } catch (const ApiError& e) {
      Error(res, e.status, e.what());
    } catch (const std::exception& e) {
      Error(res, 500, std::string("internal error: ") + e.what());
    }
    AuditAfter(p, req, res, actor);
  });
  s.Get("/api/v1/session", api([&p](const httplib::Request& req, httplib::Response& res) {
          Reply(res, 200, RequestSession(p, req).ToJson());
        }));
  s.Delete("/api/v1/session", api([&p](const httplib::Request& req, httplib::Response& res) {
             RequestSession(p, req);
             p.accounts().EndSession(SessionCookie(req));
             res.set_header("Set-Cookie", SessionCookieHeader("", true));
             res.status = 204;
           }));
  // Argon2id (tens of milliseconds and 64 MB a hash) runs without the platform lock: the
  // old password's check and the new one's hash; the change is made only if the password is
  // still the one that was checked.
  s.Post("/api/v1/session/password",
         GuardUnlocked(p, [&p](const httplib::Request& req, httplib::Response& res) {
           const json b = Body(req);
           const std::string old_password = Str(b, "old_password", true);
           const std::string new_password = Str(b, "new_password", true);
           Accounts::CheckNewPassword(new_password, "new_password");
           Accounts& a = p.accounts();
           SessionInfo session;
           UserRecord user;
           {
             std::lock_guard<std::mutex> guard(p.lock());
             session = RequestSession(p, req);
             // Guessing the old password counts as failed sign-ins.
             const int64_t wait = a.BeginSignIn(session.username, req.remote_addr);
             if (wait > 0) {
               res.set_header("Retry-After", std::to_string(wait));
               throw ApiError(
                   429, "too many failed attempts: try again in " + std::to_string(wait) + " s");
             }
             user = a.GetUser(session.username);
           }
           if (!Accounts::VerifyPassword(user.password_hash, old_password)) {
             throw ApiError(403, "old_password is wrong");
           }
           const std::string hash = Accounts::HashPassword(new_password);
           std::lock_guard<std::mutex> guard(p.lock());
           // Disabled, signed out or given another password while it was hashed: not written
           // (a session an admin ended must not set a password on its way out).
           const std::optional<UserRecord> now = a.FindUser(session.username);
           const std::optional<SessionInfo> still = a.LookupSession(SessionCookie(req), false);
           if (!now || now->disabled || !still || still->user_id != user.user_id) {
             throw ApiError(401, "no valid session: sign in again");
           }
           if (now->user_id != user.user_id || now->password_hash != user.password_hash) {
             throw ApiError(409, "the password was changed meanwhile: sign in again");
           }
           a.SignInSucceeded(session.username, req.remote_addr);
           Transaction tx(p.db());
           a.SetPasswordHash(user.user_id, hash, SessionCookie(req));
           tx.Commit();
           res.status = 204;
         }));

  // Users (admin, see NeededScope).
  s.Get("/api/v1/users", api([&p](const httplib::Request&, httplib::Response& res) {
          json out = json::array();
          for (const UserRecord& u : p.accounts().ListUsers())
            out.push_back(u.ToJson());
          Reply(res, 200, out);
        }));
  s.Post("/api/v1/users", api([&p](const httplib::Request& req, httplib::Response& res) {
           const json b = Body(req);
           const std::string username = Str(b, "username", true);
           const std::string role = Str(b, "role", true);
           std::string password = Str(b, "password");
           if (password.empty()) password = Accounts::GeneratePassword();
           const UserRecord u = p.accounts().CreateUser(username, role, password);
           Reply(res, 201, {{"username", u.username}, {"role", u.role}, {"password", password}});
         }));
  s.Patch(
      R"(/api/v1/users/([^/]+))", api([&p](const httplib::Request& req, httplib::Response& res) {
        const json b = Body(req);
        std::optional<std::string> role;
        if (b.contains("role") && !b["role"].is_null()) role = Str(b, "role");
        Reply(res, 200,
              p.accounts().UpdateUser(req.matches[1], role, OptionalBool(b, "disabled")).ToJson());
      }));
  s.Delete(R"(/api/v1/users/([^/]+))",
           api([&p](const httplib::Request& req, httplib::Response& res) {
             p.accounts().DeleteUser(req.matches[1]);
             res.status = 204;
           }));
}

}  // namespace ota::server
