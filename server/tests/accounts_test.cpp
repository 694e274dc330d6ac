// User accounts, roles, cookie sessions, CSRF and sign-in throttling against a real ota-server
// in-process: HTTPS API on a free loopback port (TLS checked against the platform's CA), real
// SQLite, real Argon2id. The accounts' clock is the test's, so idle expiry and the throttling
// window pass without waiting.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "ota/host/keys.hpp"
#include "ota/server/audit_log.hpp"
#include "ota/server/log.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;

constexpr const char* kAdminPassword = "admin-password-0123";
constexpr const char* kOperatorPassword = "operator-password-0123";
constexpr const char* kViewerPassword = "viewer-password-0123";
constexpr int64_t kStart = 1800000000;

struct Answer {
  int status = -1;
  json body;
  httplib::Headers headers;
  std::string Header(const char* name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// A signed-in browser: its cookie and the CSRF token the sign-in answered.
struct Browser {
  std::string cookie;
  std::string csrf;
};

std::string ReadBytes(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

class AccountsApi : public ::testing::Test {
 protected:
  void SetUp() override {
    token_ = stack_.admin_token();
    stack_.platform().accounts().set_clock([this] { return now_.load(); });
    {
      std::lock_guard<std::mutex> guard(stack_.platform().lock());
      Accounts& a = stack_.platform().accounts();
      a.CreateUser("root", "admin", kAdminPassword);
      a.CreateUser("op", "operator", kOperatorPassword);
      a.CreateUser("eve.viewer@example", "viewer", kViewerPassword);
    }
    ASSERT_TRUE(stack_.Start(testing::NoBroker(1000)));
  }

  std::string Host() const { return "127.0.0.1:" + std::to_string(stack_.service().http_port()); }

  // `headers` as given; a body (JSON) for POST, PATCH and DELETE when not null.
  Answer Send(const std::string& method, const std::string& path, const json& body,
              const httplib::Headers& headers) {
    httplib::SSLClient c("127.0.0.1", stack_.service().http_port());
    c.set_ca_cert_path(stack_.platform().tls().ca_cert.c_str());
    c.enable_server_certificate_verification(true);
    const std::string text = body.is_null() ? "" : body.dump();
    httplib::Result r = method == "GET"      ? c.Get(path, headers)
                        : method == "DELETE" ? c.Delete(path, headers, text, "application/json")
                        : method == "PATCH"  ? c.Patch(path, headers, text, "application/json")
                                             : c.Post(path, headers, text, "application/json");
    Answer a;
    if (!r) return a;
    a.status = r->status;
    a.body = json::parse(r->body, nullptr, false);
    a.headers = r->headers;
    return a;
  }
  // As `browser`: its cookie, and the CSRF header unless `csrf` says otherwise ("-": none).
  Answer As(const Browser& browser, const std::string& method, const std::string& path,
            const json& body = nullptr, const std::string& csrf = "") {
    httplib::Headers h = {{"Cookie", "ota_session=" + browser.cookie}};
    const std::string token = csrf.empty() ? browser.csrf : csrf;
    if (token != "-") h.emplace("X-CSRF-Token", token);
    return Send(method, path, body, h);
  }
  Answer SignIn(const std::string& username, const std::string& password) {
    return Send("POST", "/api/v1/session", {{"username", username}, {"password", password}}, {});
  }
  Browser Login(const std::string& username, const std::string& password) {
    const Answer a = SignIn(username, password);
    EXPECT_EQ(a.status, 200) << a.body;
    const std::string set = a.Header("Set-Cookie");
    const size_t eq = set.find('='), semi = set.find(';');
    if (a.status != 200 || eq == std::string::npos || semi == std::string::npos) return {};
    return {set.substr(eq + 1, semi - eq - 1), a.body.value("csrf_token", "")};
  }
  Answer AsAdminToken(const std::string& method, const std::string& path,
                      const json& body = nullptr) {
    return Send(method, path, body, {{"Authorization", "Bearer " + token_}});
  }
  std::string Metrics() {
    httplib::SSLClient c("127.0.0.1", stack_.service().http_port());
    c.set_ca_cert_path(stack_.platform().tls().ca_cert.c_str());
    c.set_bearer_token_auth(token_);
    auto r = c.Get("/metrics");
    return r ? r->body : "";
  }
  std::string PublicPem() { return host::PublicKeyPem(key_.pkey()); }
  // Every column of every audit row, as text.
  std::string AuditText() {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    std::string out;
    Statement st = stack_.platform().db().Prepare(
        "SELECT actor, method, route, object_ids, summary, remote_addr, status FROM audit_log");
    while (st.Step()) {
      for (int i = 0; i < 7; ++i)
        out += st.Text(i) + "\n";
    }
    return out;
  }
  json LatestAudit() {
    const Answer a = AsAdminToken("GET", "/api/v1/audit?limit=1");
    EXPECT_EQ(a.status, 200) << a.body;
    return a.body["items"][0];
  }

  std::atomic<int64_t> now_{kStart};
  testing::PlatformStack stack_{"ota-accounts"};
  testing::TestKey key_;
  std::string token_;
};

TEST_F(AccountsApi, SignIn_RightPassword_StrictSessionCookieAndSessionBody) {
  const Answer a = SignIn("root", kAdminPassword);
  ASSERT_EQ(a.status, 200) << a.body;
  const std::string set = a.Header("Set-Cookie");
  const std::string prefix = "ota_session=";
  const std::string suffix = "; Path=/; HttpOnly; Secure; SameSite=Strict";
  ASSERT_EQ(set.rfind(prefix, 0), 0u) << set;
  ASSERT_GT(set.size(), prefix.size() + suffix.size()) << set;
  EXPECT_EQ(set.substr(set.size() - suffix.size()), suffix) << set;
  const std::string id = set.substr(prefix.size(), set.size() - prefix.size() - suffix.size());
  EXPECT_EQ(id.size(), 43u) << "32 random bytes, base64url";
  EXPECT_EQ(
      id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  EXPECT_EQ(set.find("Max-Age"), std::string::npos) << "a browser-session cookie";
  EXPECT_EQ(set.find("Expires"), std::string::npos);

  EXPECT_EQ(a.body["username"], "root");
  EXPECT_EQ(a.body["role"], "admin");
  EXPECT_EQ(a.body["expires_at"], kStart + 8 * 3600);
  const std::string csrf = a.body["csrf_token"];
  EXPECT_GE(csrf.size(), 40u);

  const Browser b{id, csrf};
  const Answer again = As(b, "GET", "/api/v1/session");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.body, a.body) << "the same csrf_token for the whole session";
  EXPECT_EQ(As(b, "GET", "/api/v1/products").status, 200);
  EXPECT_EQ(As(b, "GET", "/api/v1/devices", nullptr, "-").status, 200) << "GET needs no CSRF";

  // Another sign-in is another session with its own CSRF token.
  const Browser other = Login("root", kAdminPassword);
  EXPECT_NE(other.cookie, b.cookie);
  EXPECT_NE(other.csrf, b.csrf);
  EXPECT_EQ(Send("GET", "/api/v1/session", nullptr, {}).status, 401);
}

TEST_F(AccountsApi, SignIn_WrongPasswordUnknownUserDisabled_SameRefusalAndSimilarTime) {
  {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    stack_.platform().accounts().CreateUser("gone", "operator", "disabled-password-1");
    stack_.platform().accounts().UpdateUser("gone", std::nullopt, true);
  }
  Answer wrong = SignIn("root", "not-the-password");
  Answer unknown = SignIn("nobody", "not-the-password");
  Answer disabled = SignIn("gone", "disabled-password-1");
  for (const Answer* a : {&wrong, &unknown, &disabled}) {
    EXPECT_EQ(a->status, 401);
    EXPECT_EQ(a->body, json({{"error", "wrong username or password"}}));
    EXPECT_EQ(a->Header("Set-Cookie"), "");
  }
  EXPECT_NE(Metrics().find("ota_operator_logins_total{result=\"refused\"} 3\n"), std::string::npos)
      << Metrics();

  // An unknown user is verified against a dummy hash: Argon2id's time, not a lookup's. One
  // kept-alive connection (no TLS handshake in the times), the fastest of three each; a
  // request refused before any password check (400) is the baseline.
  httplib::SSLClient c("127.0.0.1", stack_.service().http_port());
  c.set_ca_cert_path(stack_.platform().tls().ca_cert.c_str());
  c.enable_server_certificate_verification(true);
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);  // no delayed-ACK stall between header and body
  const auto fastest = [&c](const json& body, int status) {
    double best = 1e9;
    for (int i = 0; i < 3; ++i) {
      const auto start = std::chrono::steady_clock::now();
      auto r = c.Post("/api/v1/session", body.dump(), "application/json");
      best = std::min(
          best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      EXPECT_TRUE(r && r->status == status) << body;
    }
    return best;
  };
  const double t_base = fastest({{"username", "root"}}, 400);
  const double t_wrong = fastest({{"username", "root"}, {"password", "wrong-again"}}, 401);
  const double t_unknown = fastest({{"username", "nobody2"}, {"password", "wrong-again"}}, 401);
  EXPECT_GT(t_wrong - t_base, 0.01) << "Argon2id takes this long at least";
  EXPECT_GT(t_unknown - t_base, 0.5 * (t_wrong - t_base))
      << "unknown " << t_unknown << " s, wrong password " << t_wrong << " s, baseline " << t_base
      << " s";
}

TEST_F(AccountsApi, Storage_Argon2idHashAndSessionHashOnly) {
  const Browser b = Login("root", kAdminPassword);
  std::lock_guard<std::mutex> guard(stack_.platform().lock());
  Statement st =
      stack_.platform().db().Prepare("SELECT password_hash FROM users WHERE username = 'root'");
  ASSERT_TRUE(st.Step());
  const std::string hash = st.Text(0);
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  EXPECT_EQ(hash.find(kAdminPassword), std::string::npos);
  Statement ss = stack_.platform().db().Prepare("SELECT session_sha256 FROM user_sessions");
  ASSERT_TRUE(ss.Step());
  EXPECT_EQ(ss.Text(0).size(), 64u);
  EXPECT_NE(ss.Text(0), b.cookie);
  const std::string bytes = ReadBytes(stack_.platform().database_path()) +
                            ReadBytes(stack_.platform().database_path().string() + "-wal");
  EXPECT_EQ(bytes.find(kAdminPassword), std::string::npos);
  EXPECT_EQ(bytes.find(b.cookie), std::string::npos);
  EXPECT_EQ(bytes.find(b.csrf), std::string::npos);
}

TEST_F(AccountsApi, SignIn_OldHashParameters_RehashedOnSuccess) {
  char weak[crypto_pwhash_STRBYTES];
  ASSERT_EQ(crypto_pwhash_str(weak, kViewerPassword, std::strlen(kViewerPassword),
                              crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN),
            0);
  ASSERT_TRUE(Accounts::NeedsRehash(weak));
  {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    stack_.platform()
        .db()
        .Prepare("UPDATE users SET password_hash = ? WHERE username = 'eve.viewer@example'")
        .Bind(1, std::string(weak))
        .Run();
  }
  Login("eve.viewer@example", kViewerPassword);
  std::lock_guard<std::mutex> guard(stack_.platform().lock());
  const std::string now = stack_.platform().accounts().GetUser("eve.viewer@example").password_hash;
  EXPECT_NE(now, weak);
  EXPECT_FALSE(Accounts::NeedsRehash(now));
  EXPECT_TRUE(Accounts::VerifyPassword(now, kViewerPassword));
}

TEST_F(AccountsApi, Csrf_ChangesWithCookieNeedTheSessionsToken) {
  const Browser b = Login("op", kOperatorPassword);
  const json product = {{"product_id", "p1"}, {"name", "P1"}};
  Answer a = As(b, "POST", "/api/v1/products", product, "-");
  EXPECT_EQ(a.status, 403);
  EXPECT_EQ(a.body, json({{"error", "missing or wrong CSRF token"}}));
  const Browser other = Login("op", kOperatorPassword);
  a = As(b, "POST", "/api/v1/products", product, other.csrf);  // another session's
  EXPECT_EQ(a.status, 403);
  EXPECT_EQ(a.body, json({{"error", "missing or wrong CSRF token"}}));
  EXPECT_EQ(As(b, "GET", "/api/v1/products/p1").status, 404) << "nothing was made";
  a = As(b, "POST", "/api/v1/products", product);
  EXPECT_EQ(a.status, 201) << a.body;

  // A bearer token wins over the cookie: no CSRF header asked of a token.
  a = Send("POST", "/api/v1/products", {{"product_id", "p2"}, {"name", "P2"}},
           {{"Authorization", "Bearer " + token_}, {"Cookie", "ota_session=" + b.cookie}});
  EXPECT_EQ(a.status, 201) << a.body;
  EXPECT_EQ(LatestAudit()["actor"].get<std::string>().rfind("token:", 0), 0u);
}

TEST_F(AccountsApi, Origin_ForeignRefusedWithCookie_OwnAccepted) {
  const Browser b = Login("op", kOperatorPassword);
  const httplib::Headers foreign = {{"Cookie", "ota_session=" + b.cookie},
                                    {"X-CSRF-Token", b.csrf},
                                    {"Origin", "https://evil.example"}};
  Answer a = Send("GET", "/api/v1/products", nullptr, foreign);
  EXPECT_EQ(a.status, 403) << a.body;
  a = Send("POST", "/api/v1/products", {{"product_id", "p1"}, {"name", "P1"}}, foreign);
  EXPECT_EQ(a.status, 403) << a.body;
  a = Send("POST", "/api/v1/session", {{"username", "op"}, {"password", kOperatorPassword}},
           {{"Origin", "https://evil.example"}});
  EXPECT_EQ(a.status, 403) << "no sign-in from another site";
  const httplib::Headers own = {{"Cookie", "ota_session=" + b.cookie},
                                {"X-CSRF-Token", b.csrf},
                                {"Origin", "https://" + Host()}};
  a = Send("POST", "/api/v1/products", {{"product_id", "p1"}, {"name", "P1"}}, own);
  EXPECT_EQ(a.status, 201) << a.body;
  // http:// of the same host is another origin.
  a = Send("GET", "/api/v1/products", nullptr,
           {{"Cookie", "ota_session=" + b.cookie}, {"Origin", "http://" + Host()}});
  EXPECT_EQ(a.status, 403);
}

TEST_F(AccountsApi, Roles_ViewerReadsOperatorChangesAdminManagesKeysAndUsers) {
  const Browser viewer = Login("eve.viewer@example", kViewerPassword);
  const Browser op = Login("op", kOperatorPassword);
  const Browser admin = Login("root", kAdminPassword);
  const json product = {{"product_id", "p1"}, {"name", "P1"}};

  EXPECT_EQ(As(viewer, "GET", "/api/v1/products").status, 200);
  EXPECT_EQ(As(viewer, "GET", "/metrics").status, 200) << "/metrics takes a session too";
  EXPECT_EQ(As(viewer, "POST", "/api/v1/products", product).status, 403);
  EXPECT_EQ(As(op, "POST", "/api/v1/products", product).status, 201);
  const json key = {{"public_pem", PublicPem()}};
  Answer a = As(op, "POST", "/api/v1/products/p1/keys", key);
  EXPECT_EQ(a.status, 403) << a.body;
  EXPECT_EQ(a.body["error"], "this user's scope is write; this needs admin");
  EXPECT_EQ(As(op, "GET", "/api/v1/users").status, 403);
  EXPECT_EQ(As(op, "GET", "/api/v1/tokens").status, 403);
  a = As(admin, "POST", "/api/v1/products/p1/keys", key);
  ASSERT_EQ(a.status, 201) << a.body;
  const std::string key_id = a.body["key_id"];
  EXPECT_EQ(As(op, "DELETE", "/api/v1/products/p1/keys/" + key_id).status, 403);
  EXPECT_EQ(As(admin, "GET", "/api/v1/users").status, 200);
  EXPECT_EQ(As(admin, "DELETE", "/api/v1/products/p1/keys/" + key_id).status, 200);

  // A role changed by an admin applies to the open session at once.
  ASSERT_EQ(As(admin, "PATCH", "/api/v1/users/op", {{"role", "viewer"}}).status, 200);
  EXPECT_EQ(As(op, "POST", "/api/v1/products", {{"product_id", "p3"}, {"name", "x"}}).status, 403);
}

TEST_F(AccountsApi, SignOut_EndsTheSessionAndClearsTheCookie) {
  const Browser b = Login("op", kOperatorPassword);
  EXPECT_EQ(As(b, "DELETE", "/api/v1/session", nullptr, "-").status, 403) << "needs the CSRF";
  const Answer a = As(b, "DELETE", "/api/v1/session");
  ASSERT_EQ(a.status, 204) << a.body;
  EXPECT_EQ(a.Header("Set-Cookie"),
            "ota_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
  EXPECT_EQ(As(b, "GET", "/api/v1/session").status, 401);
  EXPECT_EQ(As(b, "GET", "/api/v1/products").status, 401);
  std::lock_guard<std::mutex> guard(stack_.platform().lock());
  Statement st = stack_.platform().db().Prepare("SELECT COUNT(*) FROM user_sessions");
  ASSERT_TRUE(st.Step());
  EXPECT_EQ(st.Int(0), 0);
}

TEST_F(AccountsApi, Expiry_IdleAfter8hAbsoluteAfter24h_DeletedOnLookup) {
  const Browser b = Login("op", kOperatorPassword);
  now_ += 8 * 3600 - 120;
  Answer a = As(b, "GET", "/api/v1/session");
  ASSERT_EQ(a.status, 200) << "used within 8 h";
  EXPECT_EQ(a.body["expires_at"], now_.load() + 8 * 3600);
  now_ += 8 * 3600 - 120;
  EXPECT_EQ(As(b, "GET", "/api/v1/products").status, 200) << "idle time counts from last use";
  now_ += 8 * 3600 + 1;
  EXPECT_EQ(As(b, "GET", "/api/v1/products").status, 401) << "idle 8 h";
  {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    Statement st = stack_.platform().db().Prepare("SELECT COUNT(*) FROM user_sessions");
    ASSERT_TRUE(st.Step());
    EXPECT_EQ(st.Int(0), 0) << "deleted when found expired";
  }

  // Used every 7 h, it still ends 24 h after sign-in.
  const Browser busy = Login("op", kOperatorPassword);
  const int64_t start = now_.load();
  for (int i = 0; i < 3; ++i) {
    now_ += 7 * 3600;
    a = As(busy, "GET", "/api/v1/session");
    ASSERT_EQ(a.status, 200) << i;
  }
  EXPECT_EQ(a.body["expires_at"], start + 24 * 3600);
  now_ = start + 24 * 3600;
  EXPECT_EQ(As(busy, "GET", "/api/v1/session").status, 401);

  // Expired sessions of others go at the next sign-in.
  Login("root", kAdminPassword);
  now_ += 9 * 3600;
  Login("op", kOperatorPassword);
  std::lock_guard<std::mutex> guard(stack_.platform().lock());
  Statement st = stack_.platform().db().Prepare("SELECT COUNT(*) FROM user_sessions");
  ASSERT_TRUE(st.Step());
  EXPECT_EQ(st.Int(0), 1) << "only the new one";
}

TEST_F(AccountsApi, Throttle_FiveFailuresPerUser_429UntilTheWindowPasses) {
  for (int i = 0; i < 5; ++i) {
    now_ += 10;
    EXPECT_EQ(SignIn("op", "wrong-password").status, 401) << i;
  }
  Answer a = SignIn("op", kOperatorPassword);
  EXPECT_EQ(a.status, 429) << "even with the right password";
  EXPECT_EQ(a.Header("Retry-After"), std::to_string(15 * 60 - 40));
  EXPECT_EQ(a.Header("Set-Cookie"), "");
  EXPECT_EQ(SignIn("root", kAdminPassword).status, 200) << "other users are not throttled";
  now_ += 15 * 60 - 41;
  EXPECT_EQ(SignIn("op", kOperatorPassword).status, 429);
  now_ += 1;  // the first failure leaves the window
  a = SignIn("op", kOperatorPassword);
  EXPECT_EQ(a.status, 200) << a.body;
  // A success clears the user's failures.
  EXPECT_EQ(SignIn("op", "wrong-password").status, 401);
  EXPECT_EQ(SignIn("op", kOperatorPassword).status, 200);

  const std::string m = Metrics();
  EXPECT_NE(m.find("ota_operator_logins_total{result=\"throttled\"} 2\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ota_operator_logins_total{result=\"accepted\"} 3\n"), std::string::npos) << m;
  EXPECT_NE(m.find("ota_operator_logins_total{result=\"refused\"} 6\n"), std::string::npos) << m;
}

TEST_F(AccountsApi, Throttle_TwentyFailuresFromOneAddress) {
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(SignIn("guess" + std::to_string(i), "wrong-password").status, 401) << i;
  }
  const Answer a = SignIn("root", kAdminPassword);
  EXPECT_EQ(a.status, 429);
  EXPECT_EQ(a.Header("Retry-After"), std::to_string(15 * 60));
  now_ += 15 * 60;
  EXPECT_EQ(SignIn("root", kAdminPassword).status, 200);
}

TEST_F(AccountsApi, PasswordChange_EndsOtherSessionsKeepsThisOne) {
  const Browser mine = Login("op", kOperatorPassword);
  const Browser other = Login("op", kOperatorPassword);
  const std::string fresh = "a-new-operator-password";
  EXPECT_EQ(As(mine, "POST", "/api/v1/session/password",
               {{"old_password", kOperatorPassword}, {"new_password", "short"}})
                .status,
            400);
  EXPECT_EQ(As(mine, "POST", "/api/v1/session/password",
               {{"old_password", "not-it-at-all"}, {"new_password", fresh}})
                .status,
            403);
  EXPECT_EQ(As(mine, "POST", "/api/v1/session/password",
               {{"old_password", kOperatorPassword}, {"new_password", fresh}}, "-")
                .status,
            403)
      << "needs the CSRF";
  Answer a = As(mine, "POST", "/api/v1/session/password",
                {{"old_password", kOperatorPassword}, {"new_password", fresh}});
  ASSERT_EQ(a.status, 204) << a.body;
  EXPECT_EQ(As(mine, "GET", "/api/v1/session").status, 200);
  EXPECT_EQ(As(other, "GET", "/api/v1/session").status, 401);
  EXPECT_EQ(SignIn("op", kOperatorPassword).status, 401);
  EXPECT_EQ(SignIn("op", fresh).status, 200);
  // With a token there is no user whose password this would be.
  a = AsAdminToken("POST", "/api/v1/session/password",
                   {{"old_password", kOperatorPassword}, {"new_password", fresh}});
  EXPECT_EQ(a.status, 401) << a.body;
}

TEST_F(AccountsApi, Users_CreateListPatchDelete) {
  const Browser admin = Login("root", kAdminPassword);
  Answer a = As(admin, "POST", "/api/v1/users", {{"username", "ann"}, {"role", "operator"}});
  ASSERT_EQ(a.status, 201) << a.body;
  EXPECT_EQ(a.body["username"], "ann");
  EXPECT_EQ(a.body["role"], "operator");
  const std::string generated = a.body["password"];
  EXPECT_GE(generated.size(), 20u);
  EXPECT_EQ(generated.find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  const Browser ann = Login("ann", generated);

  EXPECT_EQ(As(admin, "POST", "/api/v1/users", {{"username", "ann"}, {"role", "viewer"}}).status,
            409);
  EXPECT_EQ(As(admin, "POST", "/api/v1/users",
               {{"username", "bo"}, {"role", "viewer"}, {"password", "too-short"}})
                .status,
            400);
  EXPECT_EQ(As(admin, "POST", "/api/v1/users", {{"username", "bo"}, {"role", "root"}}).status, 400);
  EXPECT_EQ(As(admin, "POST", "/api/v1/users", {{"username", "b o"}, {"role", "viewer"}}).status,
            400);
  EXPECT_EQ(
      As(admin, "POST", "/api/v1/users", {{"username", std::string(65, 'a')}, {"role", "viewer"}})
          .status,
      400);
  a = As(admin, "POST", "/api/v1/users",
         {{"username", "bo"}, {"role", "viewer"}, {"password", "chosen-password-1"}});
  ASSERT_EQ(a.status, 201) << a.body;
  EXPECT_EQ(a.body["password"], "chosen-password-1");

  a = As(admin, "GET", "/api/v1/users");
  ASSERT_EQ(a.status, 200);
  ASSERT_TRUE(a.body.is_array());
  json ann_row;
  for (const json& u : a.body) {
    EXPECT_EQ(u.size(), 5u) << u;
    if (u["username"] == "ann") ann_row = u;
  }
  EXPECT_EQ(ann_row, json({{"username", "ann"},
                           {"role", "operator"},
                           {"disabled", false},
                           {"created_at", kStart},
                           {"last_login_at", kStart}}));
  EXPECT_EQ(a.body.dump().find("argon2"), std::string::npos);

  a = As(admin, "PATCH", "/api/v1/users/ann", {{"disabled", true}});
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.body["disabled"], true);
  EXPECT_EQ(As(ann, "GET", "/api/v1/products").status, 401) << "disabling ends its sessions";
  EXPECT_EQ(SignIn("ann", generated).status, 401);
  EXPECT_EQ(As(admin, "PATCH", "/api/v1/users/ann", {{"role", "boss"}}).status, 400);
  EXPECT_EQ(As(admin, "PATCH", "/api/v1/users/ann", {{"disabled", "yes"}}).status, 400);
  EXPECT_EQ(As(admin, "PATCH", "/api/v1/users/nobody", {{"disabled", true}}).status, 404);
  ASSERT_EQ(As(admin, "PATCH", "/api/v1/users/ann", {{"disabled", false}}).status, 200);
  const Browser ann2 = Login("ann", generated);

  a = As(admin, "DELETE", "/api/v1/users/ann");
  EXPECT_EQ(a.status, 204);
  EXPECT_EQ(As(ann2, "GET", "/api/v1/session").status, 401) << "deleting ends its sessions";
  EXPECT_EQ(As(admin, "DELETE", "/api/v1/users/ann").status, 404);
  EXPECT_EQ(SignIn("ann", generated).status, 401);
}

TEST_F(AccountsApi, LastAdmin_CannotBeDeletedDemotedOrDisabled) {
  const Browser admin = Login("root", kAdminPassword);
  Answer a = As(admin, "DELETE", "/api/v1/users/root");
  EXPECT_EQ(a.status, 409);
  EXPECT_NE(a.body["error"].get<std::string>().find("last enabled admin"), std::string::npos);
  EXPECT_EQ(As(admin, "PATCH", "/api/v1/users/root", {{"role", "operator"}}).status, 409);
  EXPECT_EQ(As(admin, "PATCH", "/api/v1/users/root", {{"disabled", true}}).status, 409);
  EXPECT_EQ(As(admin, "GET", "/api/v1/session").body["role"], "admin");
  // With another enabled admin, it can.
  ASSERT_EQ(As(admin, "PATCH", "/api/v1/users/op", {{"role", "admin"}}).status, 200);
  a = As(admin, "PATCH", "/api/v1/users/root", {{"role", "viewer"}});
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.body["role"], "viewer");
  const Browser op = Login("op", kOperatorPassword);
  EXPECT_EQ(As(op, "DELETE", "/api/v1/users/op").status, 409) << "now op is the last admin";
  EXPECT_EQ(As(op, "DELETE", "/api/v1/users/root").status, 204);
}

TEST_F(AccountsApi, Audit_ActorIsUserAndNoSecretInAuditOrLogs) {
  const std::filesystem::path log_path = stack_.dir() / "server.log";
  std::FILE* log = std::fopen(log_path.c_str(), "w");
  ASSERT_NE(log, nullptr);
  SetLogStream(log);
  const Browser b = Login("root", kAdminPassword);
  EXPECT_EQ(SignIn("root", "a-wrong-password-9").status, 401);
  ASSERT_EQ(As(b, "POST", "/api/v1/products", {{"product_id", "p1"}, {"name", "P1"}}).status, 201);
  json row = LatestAudit();
  EXPECT_EQ(row["actor"], "user:root");
  EXPECT_EQ(row["route"], "/api/v1/products");
  const Answer created = As(b, "POST", "/api/v1/users", {{"username", "ann"}, {"role", "viewer"}});
  ASSERT_EQ(created.status, 201);
  row = LatestAudit();
  EXPECT_EQ(row["actor"], "user:root");
  EXPECT_EQ(row["summary"]["body"]["password"], nullptr) << "none was given";
  ASSERT_EQ(As(b, "POST", "/api/v1/users",
               {{"username", "bo"}, {"role", "viewer"}, {"password", "given-password-77"}})
                .status,
            201);
  EXPECT_EQ(LatestAudit()["summary"]["body"]["password"], "[redacted]");
  ASSERT_EQ(As(b, "POST", "/api/v1/session/password",
               {{"old_password", kAdminPassword}, {"new_password", "new-admin-password-5"}})
                .status,
            204);
  row = LatestAudit();
  EXPECT_EQ(row["route"], "/api/v1/session/password");
  EXPECT_EQ(row["summary"]["body"]["old_password"], "[redacted]");
  EXPECT_EQ(row["summary"]["body"]["new_password"], "[redacted]");
  EXPECT_EQ(As(b, "POST", "/api/v1/products", {{"product_id", "p2"}, {"name", "x"}}, "-").status,
            403);
  EXPECT_EQ(LatestAudit()["actor"], "user:root") << "a refused change names the user too";
  ASSERT_EQ(As(b, "DELETE", "/api/v1/session").status, 204);
  EXPECT_EQ(LatestAudit()["actor"], "user:root");
  SetLogStream(nullptr);
  std::fclose(log);

  const std::string audit = AuditText();
  EXPECT_NE(audit.find("user:root"), std::string::npos);
  const std::string logs = ReadBytes(log_path);
  for (const std::string& secret :
       {std::string(kAdminPassword), std::string("a-wrong-password-9"),
        created.body["password"].get<std::string>(), std::string("given-password-77"),
        std::string("new-admin-password-5"), b.cookie, b.csrf}) {
    EXPECT_EQ(audit.find(secret), std::string::npos) << secret;
    EXPECT_EQ(logs.find(secret), std::string::npos) << secret;
  }
}

// Answers that carry a session's CSRF token, a new password or an operator token are never
// kept by a browser's or a proxy's cache; nor is any other API answer. Once each.
TEST_F(AccountsApi, NoStore_SessionUserAndTokenAnswers) {
  const auto no_store = [](const Answer& a) {
    return a.Header("Cache-Control") == "no-store" && a.headers.count("Cache-Control") == 1;
  };
  const Answer in = SignIn("root", kAdminPassword);
  ASSERT_EQ(in.status, 200);
  EXPECT_TRUE(no_store(in));
  EXPECT_TRUE(no_store(SignIn("root", "wrong-password")));
  const Browser b = Login("root", kAdminPassword);
  EXPECT_TRUE(no_store(As(b, "GET", "/api/v1/session")));
  const Answer user = As(b, "POST", "/api/v1/users", {{"username", "ann"}, {"role", "viewer"}});
  ASSERT_EQ(user.status, 201);
  EXPECT_TRUE(no_store(user));
  const Answer token = As(b, "POST", "/api/v1/tokens", {{"name", "ci"}, {"scope", "read"}});
  ASSERT_EQ(token.status, 201) << token.body;
  EXPECT_TRUE(no_store(token));
  EXPECT_TRUE(no_store(As(b, "GET", "/api/v1/products")));
  EXPECT_TRUE(no_store(As(b, "DELETE", "/api/v1/session")));
}

// Another site's form can post a JSON text as text/plain (or form-encoded) without a
// preflight; a sign-in takes only application/json. (multipart/form-data, the third such
// type, httplib refuses itself, 400, when the body is not multipart.)
TEST_F(AccountsApi, SignIn_NotJsonContentType_415NoSession) {
  const std::string body = json({{"username", "root"}, {"password", kAdminPassword}}).dump();
  for (const char* type :
       {"text/plain", "application/x-www-form-urlencoded", "text/plain; charset=utf-8"}) {
    httplib::SSLClient c("127.0.0.1", stack_.service().http_port());
    c.set_ca_cert_path(stack_.platform().tls().ca_cert.c_str());
    auto r = c.Post("/api/v1/session", body, type);
    ASSERT_TRUE(r) << type;
    EXPECT_EQ(r->status, 415) << type << " " << r->body;
    EXPECT_EQ(r->get_header_value("Set-Cookie"), "") << type;
  }
  httplib::SSLClient c("127.0.0.1", stack_.service().http_port());
  c.set_ca_cert_path(stack_.platform().tls().ca_cert.c_str());
  auto r = c.Post("/api/v1/session", body, "application/json; charset=utf-8");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

// Usernames differ by more than case: "Root" next to "root" would be a different account that
// reads the same in a list or an audit row.
TEST_F(AccountsApi, Users_NameTakenWhateverItsCase_409) {
  const Browser admin = Login("root", kAdminPassword);
  for (const char* name : {"Root", "ROOT", "OP", "Eve.Viewer@Example"}) {
    const Answer a = As(admin, "POST", "/api/v1/users", {{"username", name}, {"role", "admin"}});
    EXPECT_EQ(a.status, 409) << name << " " << a.body;
  }
  {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    EXPECT_THROW(stack_.platform().accounts().CreateUser("rOOt", "admin", "another-password-1"),
                 ApiError);
    EXPECT_EQ(stack_.platform().accounts().ListUsers().size(), 3u);
  }
  // Signing in takes the name as it was made.
  EXPECT_EQ(SignIn("Root", kAdminPassword).status, 401);
  EXPECT_EQ(SignIn("root", kAdminPassword).status, 200);
}

// A password changed (reset by an admin, or by the user elsewhere) while a sign-in with the old
// one was being verified: that sign-in must not start a session after the change. The user's
// hash is made slow here (Argon2id with 8 passes) so the change lands within the verification.
TEST_F(AccountsApi, SignIn_PasswordChangedDuringVerification_Refused) {
  char slow[crypto_pwhash_STRBYTES];
  ASSERT_EQ(crypto_pwhash_str(slow, kOperatorPassword, std::strlen(kOperatorPassword), 8,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE),
            0);
  int64_t op_id = 0;
  {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    op_id = stack_.platform().accounts().GetUser("op").user_id;
    stack_.platform().accounts().Rehash(op_id, slow);
  }
  // The accounts' clock is read first in BeginSignIn, under the lock, just before the user row.
  std::atomic<bool> armed{true};
  std::mutex m;
  std::condition_variable cv;
  bool begun = false;
  stack_.platform().accounts().set_clock([&] {
    if (armed.exchange(false)) {
      std::lock_guard<std::mutex> lock(m);
      begun = true;
      cv.notify_all();
    }
    return now_.load();
  });
  Answer answer;
  std::thread signing_in([&] { answer = SignIn("op", kOperatorPassword); });
  {
    std::unique_lock<std::mutex> lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return begun; }));
  }
  {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());  // once the user row is read
    stack_.platform().accounts().SetPasswordHash(op_id,
                                                 Accounts::HashPassword("the-reset-password"));
  }
  signing_in.join();
  EXPECT_EQ(answer.status, 401) << answer.body;
  EXPECT_EQ(answer.Header("Set-Cookie"), "");
  std::lock_guard<std::mutex> guard(stack_.platform().lock());
  Statement st = stack_.platform().db().Prepare("SELECT COUNT(*) FROM user_sessions");
  ASSERT_TRUE(st.Step());
  EXPECT_EQ(st.Int(0), 0);
}

// The summary's redaction covers every password field the account routes take.
TEST(AuditSummaryAccounts, PasswordFieldsRedacted) {
  const json s = AuditSummary(json({{"username", "ann"},
                                    {"password", "p1-secret-value"},
                                    {"old_password", "p2-secret-value"},
                                    {"new_password", "p3-secret-value"}})
                                  .dump(),
                              {});
  EXPECT_EQ(s["body"]["username"], "ann");
  for (const char* k : {"password", "old_password", "new_password"})
    EXPECT_EQ(s["body"][k], "[redacted]") << k;
  EXPECT_EQ(s.dump().find("secret-value"), std::string::npos);
}

// Guessing from many addresses at many names fills the throttle's memory only up to its bound;
// full, a new name or address waits until one leaves the window (never an unlimited guess), and
// names and addresses already there keep their own limits.
TEST(AccountsUnit, Throttle_ManyNamesAndAddresses_MemoryBounded) {
  testing::TempDir dir("ota-throttle");
  Database db(dir / "db.sqlite");
  AccountsOptions o;
  o.max_throttle_keys = 50;
  Accounts a(db, o);
  int64_t now = kStart;
  a.set_clock([&now] { return now; });
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(a.BeginSignIn("user" + std::to_string(i), "10.0.0." + std::to_string(i)), 0) << i;
    now += 1;
  }
  EXPECT_EQ(a.ThrottleKeys(), 100u);
  for (int i = 50; i < 1000; ++i) {
    const int64_t wait = a.BeginSignIn("user" + std::to_string(i), "10.0." + std::to_string(i));
    EXPECT_EQ(wait, kStart + 15 * 60 - now) << "until user0 leaves the window: " << i;
  }
  EXPECT_EQ(a.ThrottleKeys(), 100u) << "nothing remembered of refused attempts";
  // Those already remembered go on as before: user1 has 1 failure of 5.
  EXPECT_EQ(a.BeginSignIn("user1", "10.0.0.1"), 0);
  a.SignInSucceeded("user1", "10.0.0.1");
  now = kStart + 15 * 60;  // user0's failure (and only it) leaves the window
  EXPECT_EQ(a.BeginSignIn("newcomer", "10.9.9.9"), 0);
  EXPECT_EQ(a.ThrottleKeys(), 100u);
  EXPECT_GT(a.BeginSignIn("another", "10.9.9.8"), 0);
  now += 15 * 60;
  EXPECT_EQ(a.BeginSignIn("another", "10.9.9.8"), 0);
  EXPECT_LE(a.ThrottleKeys(), 100u);
}

// Sign-ins need no token: a burst of them (each Argon2id verification takes 64 MB) runs two at
// a time, and every one still gets its answer.
TEST_F(AccountsApi, SignIn_Burst_ArgonRunsAtMostTwoAtOnce) {
  std::vector<std::thread> burst;
  std::atomic<int> refused{0};
  for (int i = 0; i < 10; ++i) {
    burst.emplace_back(
        [&, i] { refused += SignIn("burst" + std::to_string(i), "wrong-password").status == 401; });
  }
  for (auto& t : burst)
    t.join();
  EXPECT_EQ(refused, 10);
  EXPECT_GE(Accounts::PeakConcurrentHashing(), 1);
  EXPECT_LE(Accounts::PeakConcurrentHashing(), 2);
}

// An IPv6 host commonly has a whole /64: its addresses share one count of 20, or it would have
// 2^64 of them. IPv4-mapped addresses count as the IPv4 address.
TEST(AccountsUnit, Throttle_IPv6CountsBySlash64) {
  EXPECT_EQ(Accounts::ThrottleAddress("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(Accounts::ThrottleAddress("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(Accounts::ThrottleAddress("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(Accounts::ThrottleAddress("2001:DB8:1:2::9"), "2001:db8:1:2::/64");
  EXPECT_EQ(Accounts::ThrottleAddress("::1"), "::/64");
  EXPECT_EQ(Accounts::ThrottleAddress("not an address"), "not an address");

  testing::TempDir dir("ota-throttle6");
  Database db(dir / "db.sqlite");
  Accounts a(db);
  a.set_clock([] { return kStart; });
  for (int i = 0; i < 20; ++i) {
    const std::string from = "2001:db8:1:2::" + std::to_string(i + 1);
    EXPECT_EQ(a.BeginSignIn("name" + std::to_string(i), from), 0) << i;
  }
  EXPECT_EQ(a.BeginSignIn("root", "2001:db8:1:2:ffff::1"), 15 * 60) << "the same /64";
  EXPECT_EQ(a.BeginSignIn("root", "2001:db8:1:3::1"), 0) << "another /64";
}

TEST(AccountsUnit, UsernamesRolesPasswords) {
  EXPECT_TRUE(Accounts::ValidUsername("a"));
  EXPECT_TRUE(Accounts::ValidUsername("Ann.B_c-d@example.org"));
  EXPECT_TRUE(Accounts::ValidUsername(std::string(64, 'x')));
  EXPECT_FALSE(Accounts::ValidUsername(""));
  EXPECT_FALSE(Accounts::ValidUsername(std::string(65, 'x')));
  for (const char* bad : {"a b", "a/b", "a:b", "é", "a\n"})
    EXPECT_FALSE(Accounts::ValidUsername(bad)) << bad;
  EXPECT_EQ(Accounts::RoleScope("viewer"), "read");
  EXPECT_EQ(Accounts::RoleScope("operator"), "write");
  EXPECT_EQ(Accounts::RoleScope("admin"), "admin");
  EXPECT_EQ(Accounts::RoleScope("write"), "");
  const std::string a = Accounts::GeneratePassword(), b = Accounts::GeneratePassword();
  EXPECT_GE(a.size(), 20u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(Accounts::SameSecret(a, a));
  EXPECT_FALSE(Accounts::SameSecret(a, b));
  EXPECT_FALSE(Accounts::SameSecret("", ""));
  EXPECT_FALSE(Accounts::SameSecret(a, a.substr(1)));
}

}  // namespace
}  // namespace ota::server
