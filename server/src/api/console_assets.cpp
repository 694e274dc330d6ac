#include "console_assets.hpp"

#include <httplib.h>

#include <cstring>
#include <string_view>

namespace ota::server {

namespace {

// The page runs only its own script and style: no inline code, no other origin, no framing.
constexpr const char* kCsp =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool EqualNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Calls fn(item) for each comma-separated item of a header value, trimmed.
template <typename Fn>
void EachItem(std::string_view value, Fn fn) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    fn(Trim(value.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

// If-None-Match names this representation's ETag (or is "*"): the client has it.
bool NotModified(const httplib::Request& req, const std::string& etag) {
  if (!req.has_header("If-None-Match")) return false;
  bool match = false;
  EachItem(req.get_header_value("If-None-Match"), [&](std::string_view tag) {
    if (tag.rfind("W/", 0) == 0) tag.remove_prefix(2);  // weak comparison (RFC 9110 13.1.2)
    match = match || tag == "*" || tag == etag;
  });
  return match;
}

void Serve(const ConsoleAsset& a, const httplib::Request& req, httplib::Response& res) {
  const bool gzip = AcceptsGzip(req.get_header_value("Accept-Encoding"));
  std::string etag = a.etag;
  if (gzip) etag.insert(etag.size() - 1, "-gz");
  res.set_header("ETag", etag);
  res.set_header("Vary", "Accept-Encoding");
  // Names are not versioned: the browser asks again each time and mostly gets a 304.
  res.set_header("Cache-Control", "no-cache");
  if (NotModified(req, etag)) {
    res.status = 304;
    return;
  }
  const unsigned char* bytes = gzip ? a.gzip : a.data;
  const size_t size = gzip ? a.gzip_size : a.size;
  if (gzip) res.set_header("Content-Encoding", "gzip");
  // A provider with a length: httplib sends the bytes as they are (it compresses only bodies
  // set with set_content), straight from the embedded table.
  res.set_content_provider(size, a.content_type,
                           [bytes, size](size_t offset, size_t length, httplib::DataSink& sink) {
                             if (offset >= size) return false;
                             return sink.write(reinterpret_cast<const char*>(bytes) + offset,
                                               std::min(length, size - offset));
                           });
}

void NotFound(httplib::Response& res, const std::string& what) {
  res.status = 404;
  res.set_content("{\"error\":\"no console file " + what + "\"}", "application/json");
}

}  // namespace

void ConsoleSecurityHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy", kCsp);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
}

const ConsoleAsset* FindConsoleAsset(const std::string& path) {
  for (size_t i = 0; i < kConsoleAssetCount; ++i) {
    if (path == kConsoleAssets[i].path) return &kConsoleAssets[i];
  }
  return nullptr;
}

bool AcceptsGzip(const std::string& accept_encoding) {
  bool accepted = false;
  EachItem(accept_encoding, [&](std::string_view item) {
    const size_t semi = item.find(';');
    const std::string_view coding = Trim(item.substr(0, semi));
    if (!EqualNoCase(coding, "gzip") && !EqualNoCase(coding, "x-gzip")) return;
    bool zero = false;
    if (semi != std::string_view::npos) {
      std::string_view param = Trim(item.substr(semi + 1));
      if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        param.remove_prefix(2);
        zero = param.find_first_not_of("0.") == std::string_view::npos;  // q=0, q=0.0, q=0.000
      }
    }
    accepted = accepted || !zero;
  });
  return accepted;
}

ConsoleHandlers MakeConsoleHandlers() {
  ConsoleHandlers h;
  h.page = [](const httplib::Request& req, httplib::Response& res) {
    if (const ConsoleAsset* a = FindConsoleAsset("/index.html")) return Serve(*a, req, res);
    res.set_content(
        "The web console was not built into this ota-server (built with OTA_CONSOLE=OFF).\n"
        "The REST API is at /api/v1 (see /api/v1/openapi.json).\n",
        "text/plain; charset=utf-8");
  };
  h.asset = [](const httplib::Request& req, httplib::Response& res) {
    const std::string path = "/assets/" + req.matches[1].str();
    if (const ConsoleAsset* a = FindConsoleAsset(path)) return Serve(*a, req, res);
    NotFound(res, path);
  };
  return h;
}

}  // namespace ota::server
