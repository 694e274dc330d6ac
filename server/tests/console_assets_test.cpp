// The web console's static files on the operator listener (server/src/console_assets.cpp):
// a real ota-server in-process, HTTPS on a free loopback port checked against the platform's
// CA, the embedded files as the build made them (scripts/embed-console.py).
#include <gtest/gtest.h>
#include <httplib.h>
#include <zlib.h>

#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "console_assets.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"

namespace ota::server {
namespace {

constexpr const char* kCsp =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

std::string Gunzip(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - z.avail_out);
  }
  inflateEnd(&z);
  EXPECT_EQ(rc, Z_STREAM_END) << "not one whole gzip stream";
  return out;
}

std::string Bytes(const ConsoleAsset& a) {
  return std::string(reinterpret_cast<const char*>(a.data), a.size);
}

class ConsoleAssets : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(stack_.Start(testing::NoBroker(1000))); }

  // No operator token: the console's files need none. httplib's own decompression is off so
  // the test sees the bytes on the wire.
  httplib::Result Get(const std::string& path, const httplib::Headers& headers = {}) {
    auto c = stack_.Client();
    c->set_decompress(false);
    return c->Get(path, headers);
  }

  testing::PlatformStack stack_{"ota-console"};
};

void ExpectSecurityHeaders(const httplib::Response& r) {
  EXPECT_EQ(r.get_header_value("Content-Security-Policy"), kCsp);
  EXPECT_EQ(r.get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(r.get_header_value("Referrer-Policy"), "no-referrer");
  for (const char* name : {"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"})
    EXPECT_EQ(r.get_header_value_count(name), 1u) << name;
}

TEST(ConsoleAcceptEncoding, GzipUnlessRefusedByQZero) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("gzip, deflate, br, zstd"));
  EXPECT_TRUE(AcceptsGzip("br;q=1.0, GZIP;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("x-gzip"));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("br, deflate"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip; q=0.000, br"));
  EXPECT_FALSE(AcceptsGzip("notgzip"));
}

TEST_F(ConsoleAssets, IndexPage_NoTokenNeeded_CspNosniffNoReferrer) {
  for (const char* path : {"/", "/index.html"}) {
    auto r = Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    ExpectSecurityHeaders(*r);
    if (kConsoleAssetCount == 0) {
      EXPECT_NE(r->body.find("console was not built"), std::string::npos) << r->body;
      continue;
    }
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(r->body, Bytes(*FindConsoleAsset("/index.html")));
    EXPECT_NE(r->body.find("<script src=\"/assets/app.js\""), std::string::npos);
  }
  // An API route still needs its token: the console's routes open nothing else.
  auto api = Get("/api/v1/products");
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status, 401);
}

TEST_F(ConsoleAssets, Gzip_WhenAccepted_IdentityWhenNotOrRefused) {
  if (kConsoleAssetCount == 0) GTEST_SKIP() << "built with OTA_CONSOLE=OFF";
  const ConsoleAsset* js = FindConsoleAsset("/assets/app.js");
  ASSERT_NE(js, nullptr);
  auto gz = Get("/assets/app.js", {{"Accept-Encoding", "gzip, deflate, br, zstd"}});
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->status, 200);
  EXPECT_EQ(gz->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(gz->get_header_value("Vary"), "Accept-Encoding");
  EXPECT_EQ(gz->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_LT(gz->body.size(), js->size / 2);
  EXPECT_EQ(Gunzip(gz->body), Bytes(*js));
  ExpectSecurityHeaders(*gz);

  for (const char* accept : {"", "br", "gzip;q=0"}) {
    httplib::Headers h;
    if (*accept != '\0') h.emplace("Accept-Encoding", accept);
    auto plain = Get("/assets/app.js", h);
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->status, 200) << accept;
    EXPECT_FALSE(plain->has_header("Content-Encoding")) << accept;
    EXPECT_EQ(plain->body, Bytes(*js)) << accept;
  }
}

TEST_F(ConsoleAssets, ETag_IfNoneMatchAnswers304_PerEncoding) {
  if (kConsoleAssetCount == 0) GTEST_SKIP() << "built with OTA_CONSOLE=OFF";
  auto first = Get("/assets/app.css");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200);
  const std::string etag = first->get_header_value("ETag");
  ASSERT_EQ(etag.size(), 34u) << etag;  // strong: a quoted hash, no W/
  EXPECT_EQ(etag.front(), '"');

  auto again = Get("/assets/app.css", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  EXPECT_EQ(again->get_header_value("ETag"), etag);

  auto listed = Get("/assets/app.css", {{"If-None-Match", "\"other\", " + etag}});
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->status, 304);

  auto changed = Get("/assets/app.css", {{"If-None-Match", "\"0123\""}});
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->status, 200);

  // The gzip form is another representation: its own tag; the identity tag does not match it.
  auto gz = Get("/assets/app.css", {{"Accept-Encoding", "gzip"}, {"If-None-Match", etag}});
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->status, 200);
  const std::string gz_tag = gz->get_header_value("ETag");
  EXPECT_NE(gz_tag, etag);
  auto gz_again = Get("/assets/app.css", {{"Accept-Encoding", "gzip"}, {"If-None-Match", gz_tag}});
  ASSERT_TRUE(gz_again);
  EXPECT_EQ(gz_again->status, 304);
}

TEST_F(ConsoleAssets, UnknownAsset_404) {
  for (const char* path : {"/assets/nope.js", "/assets/app.js.map", "/assets/"}) {
    auto r = Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
  }
}

// Not only the console's own answers: httplib's 404 for a path no route takes (traversal
// attempts among them: only names in the embedded table are ever served) and API answers carry
// the same headers, once each.
TEST_F(ConsoleAssets, SecurityHeaders_OnEveryAnswerOnce) {
  const std::vector<std::pair<const char*, int>> answers = {
      {"/", 200},
      {"/api/v1/openapi.json", 200},
      {"/api/v1/overview", 401},
      {"/assets/nope.js", 404},
      {"/assets/", 404},
      {"/nope", 404},
      {"/assets/..%2Findex.html", 404},
      {"/assets/..", 404},
      {"/assets/%2e%2e/%2e%2e/etc/passwd", 404}};
  for (const auto& [path, status] : answers) {
    SCOPED_TRACE(path);
    auto r = Get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status);
    ExpectSecurityHeaders(*r);
  }
  if (kConsoleAssetCount == 0) return;
  auto first = Get("/assets/app.css");
  ASSERT_TRUE(first);
  auto again = Get("/assets/app.css", {{"If-None-Match", first->get_header_value("ETag")}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);
  ExpectSecurityHeaders(*again);
}

// What the build embedded is whole: every file served as stored, index.html has no inline
// script or style (the CSP refuses them), and everything it and the CSS name is there.
TEST_F(ConsoleAssets, EveryEmbeddedFile_ServedAndEveryReferenceResolves) {
  if (kConsoleAssetCount == 0) GTEST_SKIP() << "built with OTA_CONSOLE=OFF";
  for (size_t i = 0; i < kConsoleAssetCount; ++i) {
    const ConsoleAsset& a = kConsoleAssets[i];
    auto r = Get(a.path);
    ASSERT_TRUE(r) << a.path;
    EXPECT_EQ(r->status, 200) << a.path;
    EXPECT_EQ(r->get_header_value("Content-Type"), a.content_type) << a.path;
    EXPECT_EQ(r->body, Bytes(a)) << a.path;
  }
  const std::string index = Bytes(*FindConsoleAsset("/index.html"));
  EXPECT_EQ(index.find("<script>"), std::string::npos);
  EXPECT_EQ(index.find("<style"), std::string::npos);
  for (const char* ref : {"/assets/app.js", "/assets/app.css"}) {
    EXPECT_NE(index.find(ref), std::string::npos) << ref;
    EXPECT_NE(FindConsoleAsset(ref), nullptr) << ref;
  }
  const std::string css = Bytes(*FindConsoleAsset("/assets/app.css"));
  EXPECT_EQ(css.find("data:"), std::string::npos) << "the CSP allows no data: URLs";
  for (size_t at = css.find("url(\""); at != std::string::npos; at = css.find("url(\"", at + 1)) {
    const size_t end = css.find('"', at + 5);
    const std::string name = css.substr(at + 5, end - at - 5);
    EXPECT_NE(FindConsoleAsset("/assets/" + name), nullptr) << name;
  }
}

}  // namespace
}  // namespace ota::server
