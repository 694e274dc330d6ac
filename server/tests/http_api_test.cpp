// The platform's HTTPS API on a free loopback port, through a real TLS client that checks the
// server against the CA the platform made: operator auth, products, keys, devices, package
// uploads (verified signatures), downloads with tokens and Range, and bad input.
#include <gtest/gtest.h>

#include <httplib.h>
#include <atomic>

#include <openssl/rsa.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "mqtt_test_client.hpp"
#include "ota/broker/credential_store.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/host/keys.hpp"
#include "ota/server/http_api.hpp"
#include "ota/server/platform.hpp"
#include "temp_dir.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;

const BoardProfile& kBoard = kStm32f429Fire;

uint32_t LoadAddress() {
  return kBoard.internal_base + kBoard.partition(PartitionId::kRunning).offset;
}

class Server {
 public:
  explicit Server(const std::filesystem::path& dir)
      : platform_(std::make_unique<Platform>(dir)),
        api_(std::make_unique<HttpApi>(*platform_, nullptr)) {
    port_ = api_->Bind("127.0.0.1", 0);
    download_port_ = api_->BindDownloads("127.0.0.1", 0);
    thread_ = std::thread([this] { api_->Serve(); });
    download_thread_ = std::thread([this] { api_->ServeDownloads(); });
    std::ifstream(dir / "admin.token") >> token_;
  }
  ~Server() {
    api_->Stop();
    thread_.join();
    download_thread_.join();
  }
  Platform& platform() { return *platform_; }
  int port() const { return port_; }
  int download_port() const { return download_port_; }
  const std::string& token() const { return token_; }

  // The operator API's client, or with `downloads` the device download listener's.
  std::unique_ptr<httplib::SSLClient> Client(bool downloads = false) const {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", downloads ? download_port_ : port_);
    c->set_ca_cert_path(platform_->tls().ca_cert.c_str());
    c->enable_server_certificate_verification(true);
    return c;
  }

 private:
  std::unique_ptr<Platform> platform_;
  std::unique_ptr<HttpApi> api_;
  int port_ = -1, download_port_ = -1;
  std::thread thread_, download_thread_;
  std::string token_;
};

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>(dir_.path());
    ASSERT_GT(server_->port(), 0);
    client_ = server_->Client();
    client_->set_bearer_token_auth(server_->token().c_str());
  }

  httplib::Result Post(const std::string& path, const json& body) {
    return client_->Post(path.c_str(), body.dump(), "application/json");
  }
  httplib::Result Patch(const std::string& path, const json& body) {
    return client_->Patch(path.c_str(), body.dump(), "application/json");
  }
  static json J(const httplib::Result& r) { return json::parse(r->body); }

  // A product with one signing key (key_) and one device.
  void MakeProduct() {
    const json model = {{"services",
                         {{{"service_id", "DeviceStatus"},
                           {"properties", {{{"name", "radioValue"}, {"type", "int"}}}}}}}};
    auto r = Post("/api/v1/products", {{"product_id", "fire"},
                                       {"name", "FIRE board"},
                                       {"manufacturer", "embedfire"},
                                       {"model", model}});
    ASSERT_EQ(r->status, 201) << r->body;
    r = Post("/api/v1/products/fire/keys",
             {{"public_pem", host::PublicKeyPem(key_.pkey())}, {"may_downgrade", false}});
    ASSERT_EQ(r->status, 201) << r->body;
    r = Post("/api/v1/devices", {{"product_id", "fire"}, {"node_id", "n1"}});
    ASSERT_EQ(r->status, 201) << r->body;
    secret_ = J(r)["secret"];
  }

  std::vector<uint8_t> SignedFull(const char* version, uint32_t seed, const testing::TestKey& k) {
    host::PackageSpec spec;
    spec.version = version;
    spec.image = testing::MakeTestImage(version, 20000, LoadAddress(), seed);
    return testing::MakePackage(spec, &k);
  }

  httplib::Result Upload(const std::vector<uint8_t>& pkg, const std::string& product = "fire") {
    return client_->Post(("/api/v1/products/" + product + "/packages?file_name=p.bin").c_str(),
                         std::string(pkg.begin(), pkg.end()), "application/octet-stream");
  }

  testing::TempDir dir_{"ota-server-api"};
  std::unique_ptr<Server> server_;
  std::unique_ptr<httplib::SSLClient> client_;
  testing::TestKey key_;
  std::string secret_;
};

TEST_F(HttpApiTest, OperatorToken_Required) {
  auto anon = server_->Client();
  EXPECT_EQ(anon->Get("/api/v1/products")->status, 401);
  anon->set_bearer_token_auth("ota_not-a-token");
  EXPECT_EQ(anon->Get("/api/v1/products")->status, 401);
  EXPECT_EQ(client_->Get("/api/v1/products")->status, 200);
}

TEST_F(HttpApiTest, Products_CreateGetListAndRefusals) {
  MakeProduct();
  auto r = client_->Get("/api/v1/products/fire");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(J(r)["name"], "FIRE board");
  EXPECT_EQ(J(r)["keys"].size(), 1u);
  EXPECT_EQ(Post("/api/v1/products", {{"product_id", "fire"}, {"name", "again"}})->status, 409);
  EXPECT_EQ(Post("/api/v1/products", {{"name", "x"}, {"model", {{"services", 3}}}})->status, 400);
  EXPECT_EQ(client_->Post("/api/v1/products", "{not json", "application/json")->status, 400);
  EXPECT_EQ(client_->Get("/api/v1/products/nope")->status, 404);
  // The refusals stored nothing.
  EXPECT_EQ(J(client_->Get("/api/v1/products")).size(), 1u);
}

TEST_F(HttpApiTest, Keys_OnlyP256) {
  MakeProduct();
  EVP_PKEY* rsa = EVP_RSA_gen(2048);
  auto r = Post("/api/v1/products/fire/keys", {{"public_pem", host::PublicKeyPem(rsa)}});
  EVP_PKEY_free(rsa);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(J(r)["error"].get<std::string>().find("wrong key type"), std::string::npos);
  EXPECT_EQ(
      Post("/api/v1/products/fire/keys", {{"public_pem", host::PublicKeyPem(key_.pkey())}})->status,
      409);
}

TEST_F(HttpApiTest, Devices_SecretReachesTheBrokerSealed) {
  MakeProduct();
  auto r = client_->Get("/api/v1/devices/fire_n1");
  ASSERT_EQ(r->status, 200);
  EXPECT_FALSE(J(r).contains("secret")) << "the secret is only shown at creation";
  std::string error;
  const auto box = broker::SecretBox::FromKeyFile(server_->platform().secret_key_path(), &error);
  auto store =
      broker::CredentialStore::Open(server_->platform().database_path(), false, *box, &error);
  ASSERT_TRUE(store) << error;
  EXPECT_EQ(store->Lookup("fire_n1")->secret, secret_);
  r = client_->Patch("/api/v1/devices/fire_n1", json{{"enabled", false}}.dump(),
                     "application/json");
  ASSERT_EQ(r->status, 200);
  EXPECT_FALSE(store->Lookup("fire_n1")->enabled);
  EXPECT_EQ(Post("/api/v1/devices", {{"product_id", "fire"}, {"node_id", "n1"}})->status, 409);
  EXPECT_EQ(Post("/api/v1/devices", {{"product_id", "nope"}, {"node_id", "n2"}})->status, 404);
  EXPECT_EQ(Post("/api/v1/devices", {{"product_id", "fire"}, {"node_id", "a/b"}})->status, 400);
  // Secrets never land in the database in the clear.
  std::ifstream db(server_->platform().database_path(), std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(db)), std::istreambuf_iterator<char>());
  EXPECT_EQ(raw.find(secret_), std::string::npos);
}

TEST_F(HttpApiTest, Packages_VerifiedBeforeStored) {
  MakeProduct();
  const auto good = SignedFull("FOTAV2", 2, key_);
  auto r = Upload(good);
  ASSERT_EQ(r->status, 201) << r->body;
  const json rec = J(r);
  EXPECT_EQ(rec["kind"], "full");
  EXPECT_EQ(rec["version"], "FOTAV2");
  EXPECT_TRUE(std::filesystem::exists(dir_ / ("blobs/" + rec["sha256"].get<std::string>())));

  EXPECT_EQ(Upload(good)->status, 409);  // the same file again
  testing::TestKey stranger;
  r = Upload(SignedFull("FOTAV3", 3, stranger));
  EXPECT_EQ(r->status, 422);
  EXPECT_NE(r->body.find("bad-signature"), std::string::npos) << r->body;
  host::PackageSpec spec;
  spec.version = "FOTAV4";
  spec.image = testing::MakeTestImage("FOTAV4", 20000, LoadAddress(), 4);
  EXPECT_EQ(Upload(testing::MakePackage(spec, nullptr))->status, 422);  // unsigned
  auto tampered = SignedFull("FOTAV5", 5, key_);
  tampered[200] ^= 1;
  EXPECT_EQ(Upload(tampered)->status, 422);
  EXPECT_EQ(Upload(std::vector<uint8_t>(100, 7))->status, 422);  // not a package
  EXPECT_EQ(Upload(good, "nope")->status, 404);
  EXPECT_EQ(J(client_->Get("/api/v1/packages")).size(), 1u) << "a refusal stored something";
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_ / "blobs"),
                          std::filesystem::directory_iterator()),
            1);
}

TEST_F(HttpApiTest, Downloads_TokenAndRanges) {
  MakeProduct();
  const auto pkg = SignedFull("FOTAV2", 2, key_);
  const int64_t id = J(Upload(pkg))["package_id"];
  const auto pkg2 = SignedFull("FOTAV3", 3, key_);
  const int64_t id2 = J(Upload(pkg2))["package_id"];
  auto r = Post("/api/v1/packages/" + std::to_string(id) + "/download-tokens",
                {{"device_id", "fire_n1"}, {"expires", 60}});
  ASSERT_EQ(r->status, 201) << r->body;
  const json grant = J(r);
  EXPECT_EQ(grant["file_size"], pkg.size());
  const std::string path = "/download/devices/fire_n1/packages/" + std::to_string(id);
  EXPECT_EQ(grant["url"], "https://127.0.0.1:" + std::to_string(server_->download_port()) + path);
  EXPECT_EQ(client_->Get(path.c_str())->status, 404) << "downloads are not on the API listener";

  auto dev = server_->Client(true);
  EXPECT_EQ(dev->Get(path.c_str())->status, 401);  // no token
  dev->set_bearer_token_auth(grant["access_token"].get<std::string>().c_str());
  r = dev->Get(path.c_str());
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->body, std::string(pkg.begin(), pkg.end()));
  // The SDKs take the file name from here (streamed answers carry it too), unquoted: Huawei's
  // C SDK would keep the quotes in the name.
  EXPECT_EQ(r->get_header_value("Content-Disposition"),
            "attachment; filename=" + grant["file_name"].get<std::string>());
  r = dev->Get(path.c_str(), {{"Range", "bytes=100-199"}});
  ASSERT_EQ(r->status, 206);
  EXPECT_EQ(r->get_header_value("Content-Range"), "bytes 100-199/" + std::to_string(pkg.size()));
  EXPECT_EQ(r->body, std::string(pkg.begin() + 100, pkg.begin() + 200));
  r = dev->Get(path.c_str(), {{"Range", "bytes=" + std::to_string(pkg.size() + 10) + "-"}});
  EXPECT_EQ(r->status, 416);
  // The token names one package.
  EXPECT_EQ(dev->Get(("/download/devices/fire_n1/packages/" + std::to_string(id2)).c_str())->status,
            403);
  // Another device's token, used on this device's URL.
  ASSERT_EQ(Post("/api/v1/devices", {{"product_id", "fire"}, {"node_id", "n2"}})->status, 201);
  r = Post("/api/v1/packages/" + std::to_string(id) + "/download-tokens",
           {{"device_id", "fire_n2"}, {"expires", 60}});
  dev->set_bearer_token_auth(J(r)["access_token"].get<std::string>().c_str());
  r = dev->Get(path.c_str());
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("another device"), std::string::npos);
  // A forged or expired token.
  std::string forged = grant["access_token"];
  forged[0] = forged[0] == 'x' ? 'y' : 'x';
  dev->set_bearer_token_auth(forged.c_str());
  EXPECT_EQ(dev->Get(path.c_str())->status, 401);
  const std::string expired =
      server_->platform().download_tokens().Issue("fire_n1", id, std::time(nullptr) - 1);
  dev->set_bearer_token_auth(expired.c_str());
  EXPECT_EQ(dev->Get(path.c_str())->status, 401);
  // A disabled device's valid token no longer downloads; enabled again, it does.
  dev->set_bearer_token_auth(grant["access_token"].get<std::string>().c_str());
  ASSERT_EQ(Patch("/api/v1/devices/fire_n1", {{"enabled", false}})->status, 200);
  r = dev->Get(path.c_str());
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("revoked"), std::string::npos) << r->body;
  ASSERT_EQ(Patch("/api/v1/devices/fire_n1", {{"enabled", true}})->status, 200);
  EXPECT_EQ(dev->Get(path.c_str())->status, 200);
  // Tokens the API hands out live at most 7 days.
  EXPECT_EQ(Post("/api/v1/packages/" + std::to_string(id) + "/download-tokens",
                 {{"device_id", "fire_n1"}, {"expires", 8 * 24 * 3600}})
                ->status,
            400);
}

// Devices that hold connections open or read at 1 KB/s sit next to devices downloading and an
// operator using the API: the downloads go on at their pace, and the API (its own listener)
// does not notice. Latencies are compared with generous bounds (loopback answers in ~10 ms).
TEST_F(HttpApiTest, SlowAndIdleDevices_StarveNeitherOtherDownloadsNorTheApi) {
  MakeProduct();
  host::PackageSpec spec;
  spec.version = "FOTAV4";
  spec.image = testing::MakeTestImage("FOTAV4", 400000, LoadAddress(), 4);
  const auto big = testing::MakePackage(spec, &key_);
  const int64_t id = J(Upload(big))["package_id"];
  const json grant = J(Post("/api/v1/packages/" + std::to_string(id) + "/download-tokens",
                            {{"device_id", "fire_n1"}, {"expires", 600}}));
  const std::string url = grant["url"];
  const std::string path = url.substr(url.find("/download/"));
  const std::string token = grant["access_token"];
  auto device = [&] {
    auto c = server_->Client(true);
    c->set_bearer_token_auth(token.c_str());
    c->set_keep_alive(true);
    return c;
  };

  // Each slow device is another device: one device gets at most 4 downloads at once.
  std::vector<std::string> slow_tokens;
  for (int i = 0; i < 8; ++i) {
    const std::string node = "slow" + std::to_string(i);
    ASSERT_EQ(Post("/api/v1/devices", {{"product_id", "fire"}, {"node_id", node}})->status, 201);
    slow_tokens.push_back(
        J(Post("/api/v1/packages/" + std::to_string(id) + "/download-tokens",
               {{"device_id", "fire_" + node}, {"expires", 600}}))["access_token"]);
  }
  std::atomic<bool> stop{false};
  std::atomic<size_t> trickled{0};
  std::vector<std::thread> slow;
  for (int i = 0; i < 8; ++i) {  // the whole 400 KB package, read at about 1 KB/s
    slow.emplace_back([&, i] {
      auto c = server_->Client(true);
      c->set_bearer_token_auth(slow_tokens[i].c_str());
      const std::string slow_path =
          "/download/devices/fire_slow" + std::to_string(i) + path.substr(path.find("/packages/"));
      c->set_read_timeout(120, 0);
      c->Get(slow_path.c_str(), [&](const char*, size_t len) {
        trickled += len;
        for (size_t waited = 0; waited < len && !stop; waited += 64)
          std::this_thread::sleep_for(std::chrono::milliseconds(62));
        return !stop.load();
      });
    });
  }
  std::vector<std::unique_ptr<httplib::SSLClient>> idle;
  for (int i = 0; i < 40; ++i) {  // one range each, then silence with the connection open
    idle.push_back(device());
    auto r = idle.back()->Get(path.c_str(), {{"Range", "bytes=0-4095"}});
    ASSERT_TRUE(r && r->status == 206);
  }

  auto worst_ms = [](int n, const std::function<bool()>& request) {
    double worst = 0;
    for (int i = 0; i < n; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      EXPECT_TRUE(request());
      worst = std::max(
          worst,
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return worst;
  };
  // Other devices download as the agent does: 4 KB ranges on a new connection each.
  const double download_ms = worst_ms(20, [&] {
    auto c = device();
    std::string body;
    for (int block = 0; block < 8; ++block) {
      const int from = block * 4096;
      auto r =
          c->Get(path.c_str(),
                 {{"Range", "bytes=" + std::to_string(from) + "-" + std::to_string(from + 4095)}});
      if (!r || r->status != 206) return false;
      body += r->body;
    }
    return body == std::string(big.begin(), big.begin() + 8 * 4096);
  });
  const double api_ms = worst_ms(20, [&] {
    auto r = client_->Get("/api/v1/devices?product_id=fire");
    return r && r->status == 200;
  });
  stop = true;
  for (std::thread& t : slow)
    t.join();
  EXPECT_GT(trickled.load(), 0u);
  EXPECT_LT(download_ms, 1500) << "a device's 32 KB download waited behind slow or idle ones";
  EXPECT_LT(api_ms, 500) << "the operator API waited behind device connections";
  std::printf(
      "slow-idle: 8 slow + 40 idle devices; worst 32 KB download %.0f ms, worst API "
      "call %.0f ms\n",
      download_ms, api_ms);
}

TEST(DownloadSlots, OneDevice_AtMostFourAtOnce_GivenBackWithTheResponse) {
  DownloadSlots slots;
  std::vector<std::shared_ptr<DownloadSlots::Slot>> held;
  for (int i = 0; i < kMaxDownloadsPerDevice; ++i) {
    held.push_back(slots.Take("fire_n1"));
    ASSERT_NE(held.back(), nullptr);
  }
  EXPECT_EQ(slots.Take("fire_n1"), nullptr) << "a fifth download at once";
  EXPECT_NE(slots.Take("fire_n2"), nullptr) << "another device is not held back";
  held.pop_back();  // one response written
  EXPECT_NE(slots.Take("fire_n1"), nullptr);
  held.clear();
  EXPECT_EQ(slots.active("fire_n1"), 0);
}

TEST_F(HttpApiTest, BrokerHttpAuth_SameRulesAsThePlugin) {
  MakeProduct();
  const std::string hour = testing::UtcHour();
  const std::string client = std::string("fire_n1_0_1_") + hour;
  auto r = Post("/broker/v1/auth", {{"clientid", client},
                                    {"username", "fire_n1"},
                                    {"password", broker::IotdaPassword(secret_, hour)}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(J(r)["result"], "allow");
  r = Post("/broker/v1/auth",
           {{"clientid", client}, {"username", "fire_n1"}, {"password", "nope"}});
  EXPECT_EQ(J(r)["result"], "deny");
  EXPECT_EQ(J(r)["reason"], "bad username or password");
  r = Post("/broker/v1/acl", {{"username", "fire_n1"},
                              {"topic", "$oc/devices/fire_n1/sys/events/up"},
                              {"action", "publish"}});
  EXPECT_EQ(J(r)["result"], "allow");
  r = Post("/broker/v1/acl", {{"username", "fire_n1"},
                              {"topic", "$oc/devices/other/sys/events/up"},
                              {"action", "subscribe"}});
  EXPECT_EQ(J(r)["result"], "deny");
  auto anon = server_->Client();
  EXPECT_EQ(anon->Post("/broker/v1/auth", "{}", "application/json")->status, 401);
}

TEST_F(HttpApiTest, SecondServerOnTheSamePorts_RefusedNotShared) {
  // cpp-httplib's default SO_REUSEPORT would let it bind and take part of the connections.
  testing::TempDir other_dir("ota-http-api-other");
  Platform other(other_dir.path());
  HttpApi api(other, nullptr);
  EXPECT_EQ(api.Bind("127.0.0.1", server_->port()), -1);
  EXPECT_EQ(api.BindDownloads("127.0.0.1", server_->download_port()), -1);
}

TEST_F(HttpApiTest, State_SurvivesRestart) {
  MakeProduct();
  const std::string token = server_->token();
  server_.reset();
  server_ = std::make_unique<Server>(dir_.path());
  EXPECT_EQ(server_->token(), token);
  client_ = server_->Client();
  client_->set_bearer_token_auth(token.c_str());
  EXPECT_EQ(client_->Get("/api/v1/devices/fire_n1")->status, 200);
}

TEST(Registry, PropertiesValidatedAgainstTheModel) {
  testing::TempDir dir("ota-server-props");
  Platform p(dir.path());
  const json model = {{"services",
                       {{{"service_id", "DeviceStatus"},
                         {"properties", {{{"name", "radioValue"}, {"type", "int"}}}}}}}};
  p.registry().CreateProduct("fire", "FIRE", "", "MQTT", model);
  p.registry().CreateDevice("fire", "n1", "", "");
  p.registry().StoreProperties(
      "fire_n1",
      json::parse(R"({"services":[{"service_id":"DeviceStatus",)"
                  R"("properties":{"radioValue":2},"event_time":"20200518T081250Z"}]})"));
  EXPECT_EQ(p.registry().Properties("fire_n1")["DeviceStatus"]["radioValue"], 2);
  for (const char* bad :
       {R"({"services":[{"service_id":"DeviceStatus","properties":{"radioValue":"high"}}]})",
        R"({"services":[{"service_id":"DeviceStatus","properties":{"other":1}}]})",
        R"({"services":[{"service_id":"Nope","properties":{"radioValue":1}}]})",
        R"({"services":"x"})"}) {
    EXPECT_THROW(p.registry().StoreProperties("fire_n1", json::parse(bad)), ApiError) << bad;
  }
  EXPECT_EQ(p.registry().Properties("fire_n1")["DeviceStatus"]["radioValue"], 2)
      << "a rejected report changed stored state";
}

}  // namespace
}  // namespace ota::server
