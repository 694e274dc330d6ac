// The operator's web console (server/console/), built at build time and embedded in the
// server: its files, each with a gzip form and a strong ETag (scripts/embed-console.py writes
// the table), served on the operator listener at / and /assets/* (docs/server.md, "Web
// console").
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace ota::server {

struct ConsoleAsset {
  const char* path;  // "/index.html", "/assets/app.js"
  const char* content_type;
  const char* etag;  // of the bytes, quoted; the gzip form's is this with "-gz" inside the quotes
  const unsigned char* data;
  size_t size;
  const unsigned char* gzip;
  size_t gzip_size;
};

// The generated table; empty when the console was not built (OTA_CONSOLE=OFF).
extern const ConsoleAsset kConsoleAssets[];
extern const size_t kConsoleAssetCount;

// The asset at `path`, or null.
const ConsoleAsset* FindConsoleAsset(const std::string& path);

// Whether an Accept-Encoding header value accepts gzip (not "gzip;q=0").
bool AcceptsGzip(const std::string& accept_encoding);

// The headers every answer of the operator listener carries (HttpApi sets them before routing):
// the page runs only its own script and style (Content-Security-Policy), no sniffing of types,
// no Referer.
void ConsoleSecurityHeaders(httplib::Response& res);

// The handlers of GET / and /index.html (the page) and GET /assets/{name}
// (kConsoleAssetPattern); no operator token (the page's API calls carry the session). Without a
// built console, the page is a short text saying so. HttpApi registers them.
struct ConsoleHandlers {
  std::function<void(const httplib::Request&, httplib::Response&)> page;
  std::function<void(const httplib::Request&, httplib::Response&)> asset;
};
ConsoleHandlers MakeConsoleHandlers();
inline constexpr const char* kConsoleAssetPattern = R"(/assets/([A-Za-z0-9._-]{1,100}))";

}  // namespace ota::server
