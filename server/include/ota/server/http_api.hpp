// The platform's HTTPS side (docs/server.md, "REST API"): the operator API under /api/v1
// (bearer API tokens, JSON, described by /api/v1/openapi.json) and package downloads for
// devices under /download (bearer download tokens, Range requests).
#pragma once

#include <memory>
#include <string>

#include "ota/server/platform.hpp"

namespace httplib {
class SSLServer;
}

namespace ota::server {

class HttpApi {
 public:
  explicit HttpApi(Platform& platform);
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
  Platform& platform_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::string base_url_;
};

// The OpenAPI 3 document of the API.
const char* OpenApiDocument();

}  // namespace ota::server
