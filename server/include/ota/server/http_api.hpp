// The platform's HTTPS side (docs/server.md, "REST API"): the operator API under /api/v1
// (bearer API tokens, JSON, described by /api/v1/openapi.json) on one listener, and package
// downloads for devices under /download (bearer download tokens, Range requests) on another,
// with its own worker pool and short keep-alive: slow or idle devices never hold a worker the
// operator needs. The download listener is a TLS front (download_front.hpp) before a plain
// httplib server on 127.0.0.1 that only the front reaches.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ota/server/download_front.hpp"
#include "ota/server/download_slots.hpp"
#include "ota/server/platform.hpp"
#include "ota/server/upgrade_tasks.hpp"

namespace httplib {
class Server;
class SSLServer;
}  // namespace httplib

namespace ota::server {

class DeviceRequests;

// A route a listener serves: its method, its cpp-httplib path pattern (a regex whose capture
// groups are the OpenAPI path parameters, in order), and the listener: "api" (the operator API,
// with /metrics and /broker/v1) or "download".
struct RouteInfo {
  std::string method;
  std::string pattern;
  std::string listener;
};

class HttpApi {
 public:
  // `tasks` may be null (no task routes).
  HttpApi(Platform& platform, UpgradeTasks* tasks, int download_workers = 64);
  ~HttpApi();

  // Binds 127.0.0.1 (or `host`) on `port` (0 = any free port); returns the port, or -1.
  int Bind(const std::string& host, int port);
  // The download listener, the same way. The base URL devices get: `public_url` if given, else
  // https://{public_host or host}:{port}.
  int BindDownloads(const std::string& host, int port, const std::string& public_url = "",
                    const std::string& public_host = "");
  // How long the TLS handshake and each request's header block may take (default 10 s).
  void set_download_header_timeout(std::chrono::milliseconds t) {
    download_front_->set_header_timeout(t);
  }
  // The plain backend behind the download front (127.0.0.1); it serves only the front.
  int download_backend_port() const { return download_backend_port_; }
  // Serve until Stop() (blocking), each on its own thread.
  bool Serve();
  bool ServeDownloads();
  void Stop();
  // GET /metrics without the operator token (default: the token is required).
  void set_metrics_public(bool on) { metrics_public_ = on; }
  // Commands, property set/get and messages to devices (docs/server.md, "Requests to devices").
  void DeviceRequestRoutes(DeviceRequests& requests);
  // The operator API's base URL, e.g. https://127.0.0.1:8443.
  std::string base_url() const { return base_url_; }
  // The base URL devices download from, e.g. https://127.0.0.1:8444.
  std::string download_base_url() const { return download_base_url_; }
  // Every route registered so far (the constructor's, then DeviceRequestRoutes'), in order.
  std::vector<RouteInfo> Routes() const { return routes_; }

 private:
  void OperatorRoutes();
  void AccountRoutes();  // users and sessions
  void DownloadRoutes();
  void TaskRoutes();
  // The web console's reads, the task preview and the event stream (console_api.cpp).
  void ConsoleRoutes();
  Platform& platform_;
  UpgradeTasks* tasks_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::unique_ptr<httplib::Server> downloads_;
  std::unique_ptr<DownloadFront> download_front_;
  int download_backend_port_ = -1;
  std::unique_ptr<DownloadSlots> download_slots_;
  std::string base_url_;
  std::string download_base_url_;
  std::atomic<bool> metrics_public_{false};
  std::vector<RouteInfo> routes_;
  std::mutex event_streams_mutex_;
  int event_streams_ = 0;                               // open GET /api/v1/events streams
  std::map<std::string, int> event_streams_by_caller_;  // of those, by token or user
  std::atomic<bool> stopping_streams_{false};           // Stop(): every stream ends
};

// Event streams open at once (GET /api/v1/events); one more is refused with 503. Each holds an
// API worker; the pool has this many workers more than ordinary requests need.
inline constexpr int kMaxEventStreams = 8;
// Of those, the streams of one token or one user (all its sessions): one more is refused with
// 429, so that one operator's tabs hold at most half of them.
inline constexpr int kMaxEventStreamsPerCaller = 4;

// The firmware_upgrade paras that let `device_id` (its current generation) download `package`
// until `expires_at`; `task_id` 0 for a token the operator asked for. 404 for an unknown device.
nlohmann::json DownloadGrant(Platform& platform, const std::string& base_url,
                             const std::string& device_id, const PackageRecord& package,
                             std::time_t expires_at, int64_t task_id = 0);

// The OpenAPI 3 document of the API.
const char* OpenApiDocument();

}  // namespace ota::server
