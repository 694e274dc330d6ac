// The platform's HTTPS side (docs/server.md, "REST API"): the operator API under /api/v1
// (bearer API tokens, JSON, described by /api/v1/openapi.json) and package downloads for
// devices under /download (bearer download tokens, Range requests).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "ota/server/platform.hpp"
#include "ota/server/upgrade_tasks.hpp"

namespace httplib {
class SSLServer;
}

namespace ota::server {

class HttpApi {
 public:
  // `tasks` may be null (no task routes).
  HttpApi(Platform& platform, UpgradeTasks* tasks);
  ~HttpApi();

  // Binds 127.0.0.1 (or `host`) on `port` (0 = any free port); returns the port, or -1.
  int Bind(const std::string& host, int port);
  // Serves until Stop() (blocking).
  bool Serve();
  void Stop();
  // The base URL devices download from, e.g. https://127.0.0.1:8443.
  std::string base_url() const { return base_url_; }

 private:
  void Routes();
  void TaskRoutes();
  Platform& platform_;
  UpgradeTasks* tasks_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::string base_url_;
};

// The firmware_upgrade paras that let `device_id` download `package` until `expires_at`.
nlohmann::json DownloadGrant(const Platform& platform, const std::string& base_url,
                             const std::string& device_id, const PackageRecord& package,
                             std::time_t expires_at);

// The OpenAPI 3 document of the API.
const char* OpenApiDocument();

}  // namespace ota::server
