// The operator API's deletions, device secret rotation and scoped operator tokens, against the
// whole platform: a real Mosquitto with the auth plugin (a deleted or rotated device is judged by
// the broker itself), a real ota-server over HTTPS on free loopback ports, real SQLite.
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ctime>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "ota/broker/device_auth.hpp"
#include "ota/host/keys.hpp"
#include "ota/server/hex.hpp"
#include "ota/server/schema.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;

constexpr const char* kDevice = "fire_n1";
constexpr const char* kSecret = "device-secret-1";

std::string ReadBytes(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

class ApiAdmin : public ::testing::Test {
 protected:
  void SetUp() override {
    key_id_ = stack_.AddFireProduct(key_.pkey(), {{"services", json::array()}});
    stack_.registry().CreateDevice("fire", "n1", "", kSecret);
    host::PackageSpec spec;
    spec.version = "FOTAV2";
    spec.image = testing::MakeTestImage("FOTAV2", 20000, testing::FireAppAddress(), 2);
    package_ =
        stack_.platform().packages().Upload("fire", testing::MakePackage(spec, &key_), "v2.bin");
    ASSERT_TRUE(stack_.Start());
    admin_ = stack_.admin_token();
  }

  std::unique_ptr<httplib::SSLClient> Client(const std::string& token, bool downloads = false) {
    return stack_.Client(token, downloads);
  }
  // With the admin token, or `token`: {status, body as JSON or null}.
  std::pair<int, json> Call(const std::string& method, const std::string& path,
                            const json& body = nullptr, const std::string& token = "") {
    testing::ApiAnswer a = stack_.Call(method, path, body, token);
    return {a.status, std::move(a.body)};
  }

  bool CanLogin(const std::string& device, const std::string& secret) {
    return stack_.CanLogin(device, secret);
  }
  std::unique_ptr<testing::MqttTestClient> Session(const std::string& device,
                                                   const std::string& secret) {
    return stack_.Session(device, secret);
  }
  // Whether `c` is still connected: a QoS 1 round trip on its own tree.
  static bool StillConnected(testing::MqttTestClient& c, const std::string& device) {
    return c.Publish("$oc/devices/" + device + "/sys/messages/up", "ping");
  }

  // A download of the package with `token`: {status, body as JSON or null}.
  std::pair<int, json> Download(const std::string& token, const std::string& device = kDevice) {
    auto dl = Client(token, true);
    const std::string path =
        "/download/devices/" + device + "/packages/" + std::to_string(package_.package_id);
    httplib::Result r = dl->Get(path.c_str());
    if (!r) return {-1, nullptr};
    return {r->status, r->status == 200 ? json() : json::parse(r->body, nullptr, false)};
  }
  std::string IssueToken() {
    auto [st, grant] =
        Call("POST", "/api/v1/packages/" + std::to_string(package_.package_id) + "/download-tokens",
             {{"device_id", kDevice}});
    EXPECT_EQ(st, 201) << grant;
    return grant.value("access_token", "");
  }

  std::string Token(const std::string& scope, int64_t expires_in_s = 0) {
    auto [status, body] =
        Call("POST", "/api/v1/tokens",
             {{"name", scope + "-tool"}, {"scope", scope}, {"expires_in_s", expires_in_s}});
    EXPECT_EQ(status, 201) << body;
    return body.value("token", "");
  }

  int64_t CreateTask(const json& extra) {
    json spec = {{"product_id", "fire"}, {"devices", {kDevice}}};
    spec.update(extra);
    auto [status, body] = Call("POST", "/api/v1/tasks", spec);
    EXPECT_EQ(status, 201) << body;
    return body.value("task_id", int64_t{0});
  }

  testing::PlatformStack stack_{"ota-server-admin"};
  testing::TestKey key_;
  std::string key_id_;
  PackageRecord package_;
  std::string admin_;
};

TEST_F(ApiAdmin, DeleteDevice_BrokerRefusesItsLoginAndItsDownloadTokenFails) {
  ASSERT_TRUE(CanLogin(kDevice, kSecret));
  const std::string pkg = "/api/v1/packages/" + std::to_string(package_.package_id);
  auto [st, grant] = Call("POST", pkg + "/download-tokens", {{"device_id", kDevice}});
  ASSERT_EQ(st, 201) << grant;
  auto dl = Client(grant["access_token"], true);
  const std::string path = "/download/devices/" + std::string(kDevice) + "/packages/" +
                           std::to_string(package_.package_id);
  ASSERT_EQ(dl->Get(path.c_str())->status, 200);

  EXPECT_EQ(Call("DELETE", "/api/v1/devices/fire_n1").first, 200);
  EXPECT_EQ(Call("GET", "/api/v1/devices/fire_n1").first, 404);
  EXPECT_FALSE(CanLogin(kDevice, kSecret));
  EXPECT_EQ(dl->Get(path.c_str())->status, 403);
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/fire_n1").first, 404);
}

TEST_F(ApiAdmin, DeleteDevice_RefusedInAnOpenTask_AllowedOnceItEnded) {
  const int64_t task = CreateTask({{"target_version", "FOTAV2"}});
  auto [st, body] = Call("DELETE", "/api/v1/devices/fire_n1");
  EXPECT_EQ(st, 409) << body;
  EXPECT_TRUE(CanLogin(kDevice, kSecret));
  ASSERT_EQ(Call("POST", "/api/v1/tasks/" + std::to_string(task) + "/cancel").first, 200);
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/fire_n1").first, 200);
  // The ended task stays readable without the device.
  auto [tst, t] = Call("GET", "/api/v1/tasks/" + std::to_string(task));
  EXPECT_EQ(tst, 200) << t;
}

TEST_F(ApiAdmin, DeleteGateway_RefusedWhileItHasSubDevices) {
  auto [st, sub] = Call("POST", "/api/v1/devices/fire_n1/sub-devices",
                        {{"product_id", "fire"}, {"node_id", "s1"}});
  ASSERT_EQ(st, 201) << sub;
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/fire_n1").first, 409);
  EXPECT_TRUE(CanLogin(kDevice, kSecret));
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/" + sub["device_id"].get<std::string>()).first, 200);
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/fire_n1").first, 200);
}

TEST_F(ApiAdmin, DeletePackage_RefusedInAnOpenTask_ThenRowAndFileGo) {
  const std::string path = "/api/v1/packages/" + std::to_string(package_.package_id);
  const std::filesystem::path blob = stack_.platform().packages().BlobPath(package_);
  ASSERT_TRUE(std::filesystem::exists(blob));
  const int64_t task = CreateTask({{"package_id", package_.package_id}});
  EXPECT_EQ(Call("DELETE", path).first, 409);
  EXPECT_TRUE(std::filesystem::exists(blob));
  ASSERT_EQ(Call("POST", "/api/v1/tasks/" + std::to_string(task) + "/cancel").first, 200);
  EXPECT_EQ(Call("DELETE", path).first, 200);
  EXPECT_EQ(Call("GET", path).first, 404);
  EXPECT_FALSE(std::filesystem::exists(blob));
  auto [tst, t] = Call("GET", "/api/v1/tasks/" + std::to_string(task));
  ASSERT_EQ(tst, 200) << t;
  EXPECT_TRUE(t["package_id"].is_null());
  EXPECT_EQ(Call("DELETE", path).first, 404);
  EXPECT_EQ(Call("DELETE", "/api/v1/packages/999").first, 404);
}

// A task by target_version names no package: before it commands a device (here the device is
// offline, so nothing is sent) it still will pick one of that version, which must stay.
TEST_F(ApiAdmin, DeletePackage_RefusedWhileATaskTargetsItsVersion_AllowedOnceCancelled) {
  const std::string path = "/api/v1/packages/" + std::to_string(package_.package_id);
  // Another version of the product: no task wants it.
  host::PackageSpec spec;
  spec.version = "FOTAV3";
  spec.image = testing::MakeTestImage(
      "FOTAV3", 20000,
      kStm32f429Fire.internal_base + kStm32f429Fire.partition(PartitionId::kRunning).offset, 3);
  const std::vector<uint8_t> v3 = testing::MakePackage(spec, &key_);
  httplib::Result up =
      Client(admin_)->Post("/api/v1/products/fire/packages?file_name=v3.bin",
                           std::string(v3.begin(), v3.end()), "application/octet-stream");
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status, 201) << up->body;
  const int64_t v3_id = json::parse(up->body).value("package_id", int64_t{0});

  const int64_t task = CreateTask({{"target_version", "FOTAV2"}});
  const std::string task_path = "/api/v1/tasks/" + std::to_string(task);
  auto [tst, t] = Call("GET", task_path);
  ASSERT_EQ(tst, 200) << t;
  EXPECT_TRUE(t["package_id"].is_null()) << t;
  ASSERT_EQ(t["devices"].size(), 1u) << t;
  EXPECT_TRUE(t["devices"][0]["package_id"].is_null()) << "already dispatched: " << t;

  auto [st, body] = Call("DELETE", path);
  EXPECT_EQ(st, 409) << body;
  EXPECT_NE(body.value("error", "").find("open task " + std::to_string(task)), std::string::npos)
      << body;
  EXPECT_EQ(Call("GET", path).first, 200);
  EXPECT_TRUE(std::filesystem::exists(stack_.platform().packages().BlobPath(package_)));
  EXPECT_EQ(Call("DELETE", "/api/v1/packages/" + std::to_string(v3_id)).first, 200);

  ASSERT_EQ(Call("POST", task_path + "/cancel").first, 200);
  EXPECT_EQ(Call("DELETE", path).first, 200);
  EXPECT_EQ(Call("GET", path).first, 404);
}

TEST_F(ApiAdmin, RemoveGroupMembership) {
  ASSERT_EQ(Call("POST", "/api/v1/devices/fire_n1/groups", {{"group", "g1"}}).first, 200);
  auto [st, dev] = Call("DELETE", "/api/v1/devices/fire_n1/groups/g1");
  ASSERT_EQ(st, 200) << dev;
  EXPECT_TRUE(dev["groups"].empty());
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/fire_n1/groups/g1").first, 404);
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/nobody/groups/g1").first, 404);
}

TEST_F(ApiAdmin, RemoveProductKey_NewUploadsSignedByItRefused) {
  auto [st, prod] = Call("DELETE", "/api/v1/products/fire/keys/" + key_id_);
  ASSERT_EQ(st, 200) << prod;
  EXPECT_TRUE(prod["keys"].empty());
  EXPECT_EQ(Call("DELETE", "/api/v1/products/fire/keys/" + key_id_).first, 404);
  EXPECT_EQ(Call("DELETE", "/api/v1/products/nope/keys/" + key_id_).first, 404);
  const uint32_t load =
      kStm32f429Fire.internal_base + kStm32f429Fire.partition(PartitionId::kRunning).offset;
  host::PackageSpec spec;
  spec.version = "FOTAV3";
  spec.image = testing::MakeTestImage("FOTAV3", 20000, load, 3);
  const std::vector<uint8_t> pkg = testing::MakePackage(spec, &key_);
  auto r = Client(admin_)->Post("/api/v1/products/fire/packages?file_name=v3.bin",
                                std::string(pkg.begin(), pkg.end()), "application/octet-stream");
  EXPECT_EQ(r->status, 422) << r->body;  // the product has no signing key left
}

TEST_F(ApiAdmin, RotateSecret_BrokerTakesOnlyTheNewOne) {
  ASSERT_TRUE(CanLogin(kDevice, kSecret));
  auto [st, body] = Call("POST", "/api/v1/devices/fire_n1/secret");
  ASSERT_EQ(st, 200) << body;
  const std::string fresh = body["secret"];
  EXPECT_NE(fresh, kSecret);
  EXPECT_FALSE(CanLogin(kDevice, kSecret));
  EXPECT_TRUE(CanLogin(kDevice, fresh));

  // A chosen one; then the generated one is refused too.
  auto [st2, b2] = Call("POST", "/api/v1/devices/fire_n1/secret", {{"secret", "chosen-secret-2"}});
  ASSERT_EQ(st2, 200) << b2;
  EXPECT_EQ(b2["secret"], "chosen-secret-2");
  EXPECT_FALSE(CanLogin(kDevice, fresh));
  EXPECT_TRUE(CanLogin(kDevice, "chosen-secret-2"));
  // Sealed in the broker's table, never in clear.
  const std::string bytes = ReadBytes(stack_.platform().database_path()) +
                            ReadBytes(stack_.platform().database_path().string() + "-wal");
  EXPECT_EQ(bytes.find("chosen-secret-2"), std::string::npos);

  EXPECT_EQ(Call("POST", "/api/v1/devices/fire_n1/secret", {{"secret", "short"}}).first, 400);
  EXPECT_EQ(Call("POST", "/api/v1/devices/fire_n1/secret", {{"secret", 5}}).first, 400);
  EXPECT_EQ(Call("POST", "/api/v1/devices/nobody/secret").first, 404);
  auto [sst, sub] = Call("POST", "/api/v1/devices/fire_n1/sub-devices",
                         {{"product_id", "fire"}, {"node_id", "s1"}});
  ASSERT_EQ(sst, 201) << sub;
  EXPECT_EQ(
      Call("POST", "/api/v1/devices/" + sub["device_id"].get<std::string>() + "/secret").first,
      400);
  EXPECT_TRUE(CanLogin(kDevice, "chosen-secret-2"));
}

TEST_F(ApiAdmin, Tokens_ScopesRefuse403) {
  const std::string read = Token("read"), write = Token("write");
  EXPECT_EQ(Call("GET", "/api/v1/products", nullptr, read).first, 200);
  EXPECT_EQ(Call("GET", "/api/v1/devices/fire_n1", nullptr, read).first, 200);
  EXPECT_EQ(Call("POST", "/api/v1/products", {{"name", "x"}}, read).first, 403);
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/fire_n1", nullptr, read).first, 403);
  EXPECT_EQ(Call("POST", "/api/v1/devices/fire_n1/secret", nullptr, read).first, 403);
  EXPECT_EQ(Call("GET", "/api/v1/tokens", nullptr, read).first, 403);
  EXPECT_TRUE(CanLogin(kDevice, kSecret));  // nothing changed

  EXPECT_EQ(Call("POST", "/api/v1/products", {{"product_id", "p2"}, {"name", "x"}}, write).first,
            201);
  EXPECT_EQ(Call("GET", "/api/v1/tokens", nullptr, write).first, 403);
  EXPECT_EQ(Call("POST", "/api/v1/tokens", {{"name", "esc"}, {"scope", "admin"}}, write).first,
            403);
  EXPECT_EQ(Call("DELETE", "/api/v1/tokens/1", nullptr, write).first, 403);
  // Signing keys are admin's too: a write token can neither add nor remove one.
  EXPECT_EQ(Call("POST", "/api/v1/products/fire/keys",
                 {{"public_pem", host::PublicKeyPem(testing::TestKey().pkey())}}, write)
                .first,
            403);
  EXPECT_EQ(Call("DELETE", "/api/v1/products/fire/keys/" + key_id_, nullptr, write).first, 403);
  EXPECT_EQ(Call("GET", "/api/v1/products/fire").second["keys"].size(), 1u);
  // The first token (ota-server token, admin.token) is an admin token.
  EXPECT_EQ(Call("GET", "/api/v1/tokens").first, 200);
  // /metrics takes any valid token.
  auto m = Client(read)->Get("/metrics");
  EXPECT_EQ(m->status, 200);
}

// The broker's questions need the broker scope (or admin): a read or write token that could
// ask /broker/v1/auth would be an oracle for device secrets. A broker token asks nothing else.
TEST_F(ApiAdmin, Tokens_BrokerScopeOnlyForBrokerQuestions) {
  const std::string read = Token("read"), write = Token("write"), broker = Token("broker");
  const json auth = {{"clientid", "x"}, {"username", kDevice}, {"password", "guess"}};
  const json acl = {{"username", kDevice}, {"topic", "x"}, {"action", "publish"}};
  EXPECT_EQ(Call("POST", "/broker/v1/auth", auth, read).first, 403);
  EXPECT_EQ(Call("POST", "/broker/v1/auth", auth, write).first, 403);
  EXPECT_EQ(Call("POST", "/broker/v1/acl", acl, read).first, 403);
  auto [status, verdict] = Call("POST", "/broker/v1/auth", auth, broker);
  EXPECT_EQ(status, 200) << verdict;
  EXPECT_EQ(verdict.value("result", ""), "deny") << verdict;
  EXPECT_EQ(Call("POST", "/broker/v1/acl", acl, broker).first, 200);
  EXPECT_EQ(Call("POST", "/broker/v1/auth", auth).first, 200);  // admin
  EXPECT_EQ(Call("GET", "/api/v1/products", nullptr, broker).first, 403);
  EXPECT_EQ(Call("GET", "/api/v1/devices/" + std::string(kDevice), nullptr, broker).first, 403);
  EXPECT_EQ(Call("POST", "/api/v1/products", {{"name", "x"}}, broker).first, 403);
  EXPECT_EQ(Client(broker)->Get("/metrics")->status, 403);
  EXPECT_EQ(Call("POST", "/api/v1/tokens", {{"name", "t"}, {"scope", "root"}}).first, 400);
}

TEST_F(ApiAdmin, Tokens_ExpiredRefused401) {
  const std::string t = Token("read", 2);
  EXPECT_EQ(Call("GET", "/api/v1/products", nullptr, t).first, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));
  EXPECT_EQ(Call("GET", "/api/v1/products", nullptr, t).first, 401);
  EXPECT_EQ(Client(t)->Get("/metrics")->status, 401);
}

TEST_F(ApiAdmin, Tokens_ListedWithoutSecret_RevokedRefused401) {
  const std::string t = Token("write", 3600);
  EXPECT_EQ(Call("GET", "/api/v1/products", nullptr, t).first, 200);
  auto [st, list] = Call("GET", "/api/v1/tokens");
  ASSERT_EQ(st, 200) << list;
  ASSERT_EQ(list.size(), 2u) << list;  // admin (first start) and ours
  const json mine = list[1];
  EXPECT_EQ(mine["name"], "write-tool");
  EXPECT_EQ(mine["scope"], "write");
  EXPECT_TRUE(mine["expires"].is_number_integer());
  EXPECT_TRUE(mine["last_used"].is_number_integer());
  EXPECT_EQ(list[0]["scope"], "admin");
  EXPECT_TRUE(list[0]["expires"].is_null());
  EXPECT_EQ(list.dump().find(t), std::string::npos);
  EXPECT_FALSE(mine.contains("token"));

  const std::string id = std::to_string(mine["id"].get<int64_t>());
  EXPECT_EQ(Call("DELETE", "/api/v1/tokens/" + id).first, 200);
  EXPECT_EQ(Call("GET", "/api/v1/products", nullptr, t).first, 401);
  EXPECT_EQ(Call("DELETE", "/api/v1/tokens/" + id).first, 404);
}

TEST_F(ApiAdmin, Tokens_BadRequestsRefused) {
  EXPECT_EQ(Call("POST", "/api/v1/tokens", {{"name", "x"}, {"scope", "root"}}).first, 400);
  EXPECT_EQ(Call("POST", "/api/v1/tokens", {{"scope", "read"}}).first, 400);
  EXPECT_EQ(Call("POST", "/api/v1/tokens", {{"name", ""}, {"scope", "read"}}).first, 400);
  EXPECT_EQ(Call("POST", "/api/v1/tokens", {{"name", "x"}, {"scope", "read"}, {"expires_in_s", -1}})
                .first,
            400);
  EXPECT_EQ(
      Call("POST", "/api/v1/tokens", {{"name", "x"}, {"scope", "read"}, {"expires_in_s", "1"}})
          .first,
      400);
  EXPECT_EQ(Call("GET", "/api/v1/products", nullptr, std::string(5000, 'a')).first, 401);
}

TEST_F(ApiAdmin, Tokens_NeverStoredInClear) {
  const std::string t = Token("admin");
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(Call("GET", "/api/v1/tokens", nullptr, t).first, 200);
  const std::string bytes = ReadBytes(stack_.platform().database_path()) +
                            ReadBytes(stack_.platform().database_path().string() + "-wal");
  ASSERT_GT(bytes.size(), 0u);
  EXPECT_EQ(bytes.find(t), std::string::npos);
  EXPECT_EQ(bytes.find(t.substr(4)), std::string::npos);  // nor its random part
  EXPECT_EQ(bytes.find(admin_), std::string::npos);
}

// A data directory from before scoped tokens: its admin token is an admin token after the
// migration.
TEST(ApiTokensMigration, EarlierTokenBecomesAdmin) {
  testing::TempDir dir("ota-server-token-migration");
  const std::vector<std::string>& all = Migrations();
  {
    Database db(dir.path() / "ota.db");
    db.Migrate(std::vector<std::string>(all.begin(), all.end() - 1));
    // The hash of "ota_old-token", as the earlier CreateApiToken stored it.
    db.Prepare("INSERT INTO api_tokens (token_sha256, name, created_at) VALUES (?, 'old', 1)")
        .Bind(1, "d4ce552e6dc5682ad87fa3a20d2deb7b3c99bed4ce01bf62cba2c2060078f435")
        .Run();
  }
  Platform p(dir.path());
  std::lock_guard<std::mutex> g(p.lock());
  const json list = p.ListApiTokens();
  ASSERT_EQ(list.size(), 2u) << list;  // the old one, and none made again (admin.token is new)
  EXPECT_EQ(list[0]["name"], "old");
  EXPECT_EQ(list[0]["scope"], "admin");
  EXPECT_TRUE(list[0]["expires"].is_null());
  const std::optional<ApiCaller> old = p.LookupApiToken("ota_old-token");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->scope, "admin");
  EXPECT_EQ(old->name, "old");
  EXPECT_FALSE(p.LookupApiToken("ota_old-tokem"));
  std::string admin;
  std::ifstream(dir.path() / "admin.token") >> admin;
  const std::optional<ApiCaller> c = p.LookupApiToken(admin);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scope, "admin");
}

// ---- A deleted, disabled or re-keyed device is disconnected at once ----

constexpr auto kKickWithin = std::chrono::seconds(5);

TEST_F(ApiAdmin, DeleteDevice_ConnectedSessionClosedAtOnce) {
  auto session = Session(kDevice, kSecret);
  ASSERT_TRUE(session);
  ASSERT_TRUE(StillConnected(*session, kDevice));
  ASSERT_EQ(Call("DELETE", "/api/v1/devices/fire_n1").first, 200);
  EXPECT_TRUE(session->WaitDisconnected(kKickWithin));
  EXPECT_FALSE(CanLogin(kDevice, kSecret));
}

TEST_F(ApiAdmin, DisableDevice_ConnectedSessionClosedAtOnce_EnableLetsItBackIn) {
  auto session = Session(kDevice, kSecret);
  ASSERT_TRUE(session);
  auto [st, body] = Call("PATCH", "/api/v1/devices/fire_n1", {{"enabled", false}});
  ASSERT_EQ(st, 200) << body;
  EXPECT_TRUE(session->WaitDisconnected(kKickWithin));
  EXPECT_FALSE(CanLogin(kDevice, kSecret));
  ASSERT_EQ(Call("PATCH", "/api/v1/devices/fire_n1", {{"enabled", true}}).first, 200);
  // Enabling closes nothing: a session opened now stays.
  auto back = Session(kDevice, kSecret);
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->WaitDisconnected(std::chrono::milliseconds(1500)));
  EXPECT_TRUE(StillConnected(*back, kDevice));
}

TEST_F(ApiAdmin, RotateSecret_ConnectedSessionClosedAtOnce_OnlyTheNewSecretLogsIn) {
  auto session = Session(kDevice, kSecret);
  ASSERT_TRUE(session);
  auto [st, body] = Call("POST", "/api/v1/devices/fire_n1/secret");
  ASSERT_EQ(st, 200) << body;
  EXPECT_TRUE(session->WaitDisconnected(kKickWithin));
  EXPECT_FALSE(Session(kDevice, kSecret));
  auto fresh = Session(kDevice, body["secret"]);
  ASSERT_TRUE(fresh);
  EXPECT_FALSE(fresh->WaitDisconnected(std::chrono::milliseconds(1500)));
  EXPECT_TRUE(StillConnected(*fresh, kDevice));
}

// The change commits with its control message in the outbox; a platform that stops before
// sending it (here: not running at all) sends it when it is back.
TEST_F(ApiAdmin, DeleteDevice_PlatformAwayFromTheBroker_DisconnectWaitsInTheOutbox) {
  auto session = Session(kDevice, kSecret);
  ASSERT_TRUE(session);
  stack_.StopService();
  {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    stack_.platform().registry().DeleteDevice(kDevice);
  }
  EXPECT_EQ(stack_.platform().outbox().Size(), 1);
  EXPECT_FALSE(session->WaitDisconnected(std::chrono::milliseconds(1000)));
  EXPECT_TRUE(StillConnected(*session, kDevice));

  ASSERT_TRUE(stack_.StartService(stack_.service_options()));
  EXPECT_TRUE(session->WaitDisconnected(kKickWithin));
  // Acknowledged by the broker, so removed.
  const auto deadline = std::chrono::steady_clock::now() + kKickWithin;
  int64_t left = 1;
  while (left != 0 && std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> guard(stack_.platform().lock());
      left = stack_.platform().outbox().Size();
    }
    if (left != 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(left, 0);
}

// ---- Download tokens are bound to the device's generation ----

TEST_F(ApiAdmin, DownloadToken_DeviceDeletedAndRecreated_Refused) {
  const std::string token = IssueToken();
  ASSERT_EQ(Download(token).first, 200);
  ASSERT_EQ(Call("DELETE", "/api/v1/devices/fire_n1").first, 200);
  auto [st, created] =
      Call("POST", "/api/v1/devices",
           {{"product_id", "fire"}, {"node_id", "n1"}, {"secret", "someone-else"}});
  ASSERT_EQ(st, 201) << created;
  ASSERT_EQ(created["device_id"], kDevice);

  auto [dst, error] = Download(token);
  EXPECT_EQ(dst, 403);
  EXPECT_EQ(error, json({{"error",
                          "download token revoked (task stopped, upgrade over, device "
                          "disabled, deleted or its secret rotated)"}}));
  // The new device's own token works.
  EXPECT_EQ(Download(IssueToken()).first, 200);
}

// Rotating the secret revokes the tokens issued before (docs/server.md, "Downloads").
TEST_F(ApiAdmin, DownloadToken_SecretRotated_Refused_NewTokenWorks) {
  const std::string token = IssueToken();
  ASSERT_EQ(Download(token).first, 200);
  ASSERT_EQ(Call("POST", "/api/v1/devices/fire_n1/secret").first, 200);
  auto [dst, error] = Download(token);
  EXPECT_EQ(dst, 403);
  EXPECT_EQ(error.value("error", ""),
            "download token revoked (task stopped, upgrade over, device disabled, deleted or its "
            "secret rotated)");
  EXPECT_EQ(Download(IssueToken()).first, 200);
}

// A token as the server made them before generations: device.package.expires.task, signed
// with the download key (data_dir/download.key, 64 hex digits).
std::string LegacyToken(const std::filesystem::path& key_file, const std::string& device,
                        int64_t package_id, std::time_t expires) {
  const std::string hex = ReadBytes(key_file).substr(0, 64);
  std::vector<uint8_t> key;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    key.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  const std::string body =
      device + "." + std::to_string(package_id) + "." + std::to_string(expires) + ".0";
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  return body + "." + ToHex(std::span<const uint8_t>(mac, len));
}

// Tokens issued before generations stay good for the devices made before them (generation 0),
// and for nothing else.
TEST_F(ApiAdmin, DownloadToken_IssuedBeforeGenerations_OnlyForAGenerationZeroDevice) {
  const std::string legacy = LegacyToken(stack_.dir() / "download.key", kDevice,
                                         package_.package_id, std::time(nullptr) + 600);
  EXPECT_EQ(Download(legacy).first, 403);  // fire_n1 was made with a generation
  {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    stack_.platform()
        .db()
        .Prepare("UPDATE devices SET generation = 0 WHERE device_id = ?")
        .Bind(1, kDevice)
        .Run();
  }
  EXPECT_EQ(Download(legacy).first, 200);
  ASSERT_EQ(Call("POST", "/api/v1/devices/fire_n1/secret").first, 200);
  EXPECT_EQ(Download(legacy).first, 403);
}

}  // namespace
}  // namespace ota::server
