// Gateways with sub-devices and software (SOTA) tasks against the whole platform: a real
// Mosquitto with the auth plugin, a real ota-server on free loopback ports, a gateway that
// speaks for its sub-devices over its own topics, and downloads over HTTPS.
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "mqtt_test_client.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/host/keys.hpp"
#include "ota/image.hpp"
#include "ota/server/hex.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;
using testing::MqttTestClient;

constexpr const char* kGateway = "fire_gw";
constexpr const char* kSub = "fire_s1";
constexpr const char* kOtherGateway = "fire_gw2";
constexpr const char* kOtherSub = "fire_s2";
constexpr const char* kPlain = "fire_n1";  // logs in itself, no gateway
constexpr const char* kSecret = "device-secret-1";

std::string Sha256Hex(const std::string& data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
  return ToHex(std::span<const uint8_t>(d, n));
}

// A detached ECDSA-SHA256 signature (DER), as `openssl dgst -sha256 -sign` makes it.
std::vector<uint8_t> SignDetached(EVP_PKEY* key, const std::string& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::vector<uint8_t> sig;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const uint8_t*>(data.data()),
                     data.size()) == 1) {
    sig.resize(len);
    if (EVP_DigestSign(ctx, sig.data(), &len, reinterpret_cast<const uint8_t*>(data.data()),
                       data.size()) == 1) {
      sig.resize(len);
    } else {
      sig.clear();
    }
  }
  EVP_MD_CTX_free(ctx);
  return sig;
}

// A device that logs in itself (a gateway or a plain device), as a test script.
class Client {
 public:
  Client(int port, const std::filesystem::path& ca, std::string id)
      : port_(port), ca_(ca), id_(std::move(id)) {
    client_ = std::make_unique<MqttTestClient>(id_ + "_0_0_" + testing::UtcHour());
    EXPECT_EQ(client_->Connect(port_, id_, broker::IotdaPassword(kSecret, testing::UtcHour())), 0);
    EXPECT_EQ(client_->Subscribe("$oc/devices/" + id_ + "/sys/events/down"), 1);
  }

  // The next $ota event of `type` this client receives; its envelope's object_device_id goes
  // to `object`.
  std::optional<json> Expect(const std::string& type, std::string* object = nullptr,
                             int timeout_ms = 8000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& m : client_->Receive(std::chrono::milliseconds(50))) {
        EXPECT_EQ(m.topic, "$oc/devices/" + id_ + "/sys/events/down");
        const json env = json::parse(m.payload);
        for (const auto& s : env["services"]) {
          if (s["event_type"] != type) continue;
          if (object != nullptr) *object = env.value("object_device_id", "");
          return s["paras"];
        }
      }
    }
    return std::nullopt;
  }

  // An events/up envelope about `object` (json() leaves object_device_id out).
  void Event(const json& object, const std::string& service, const std::string& type,
             const json& paras) {
    json env = {{"services", {{{"service_id", service}, {"event_type", type}, {"paras", paras}}}}};
    if (!object.is_null()) env["object_device_id"] = object;
    Raw("/sys/events/up", env.dump());
  }
  void Ota(const json& object, const std::string& type, const json& paras) {
    Event(object, "$ota", type, paras);
  }
  void Raw(const std::string& suffix, const std::string& payload) {
    ASSERT_TRUE(client_->Publish("$oc/devices/" + id_ + suffix, payload));
  }

  // GET of the whole file at `path` (default: the URL's) with `token` (default: the grant's).
  httplib::Result Get(const json& paras, const std::string& path = "",
                      const std::string& token = "") {
    const std::string url = paras["url"];
    httplib::SSLClient http("127.0.0.1", std::stoi(url.substr(url.rfind(':') + 1)));
    http.set_ca_cert_path(ca_.c_str());
    http.enable_server_certificate_verification(true);
    http.set_bearer_token_auth(
        (token.empty() ? paras["access_token"].get<std::string>() : token).c_str());
    return http.Get(
        (path.empty() ? url.substr(url.find('/', std::string("https://").size())) : path).c_str());
  }

 private:
  int port_;
  std::filesystem::path ca_;
  std::string id_;
  std::unique_ptr<MqttTestClient> client_;
};

class GatewaySota : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_.AddFireProduct(key_.pkey());
    Registry& reg = stack_.registry();
    reg.CreateDevice("fire", "gw", "", kSecret);
    reg.CreateDevice("fire", "gw2", "", kSecret);
    reg.CreateDevice("fire", "n1", "", kSecret);
    reg.CreateDevice("fire", "s1", "", "", kGateway);
    reg.CreateDevice("fire", "s2", "", "", kOtherGateway);
    const uint32_t load = testing::FireAppAddress();
    std::vector<uint8_t> v2 = testing::MakeTestImage("FOTAV2", 31000, load, 2);
    host::PackageSpec full;
    full.version = "FOTAV2";
    full.image = v2;
    full_ = testing::MakePackage(full, &key_);
    full_id_ = stack_.platform().packages().Upload("fire", full_, "appv2c.bin").package_id;

    ASSERT_TRUE(stack_.Start());
  }

  // Returns once the platform saw the device connect: its subscriptions are in place, so what
  // the device publishes next reaches it.
  std::unique_ptr<Client> Connect(const std::string& id) {
    auto c = std::make_unique<Client>(stack_.broker().port(), stack_.platform().tls().ca_cert, id);
    EXPECT_TRUE(WaitFor([&] { return GetDevice(id).online; })) << id << " never seen online";
    return c;
  }
  std::unique_ptr<httplib::SSLClient> Api() { return stack_.Client(stack_.admin_token()); }
  json Task(int64_t id) { return stack_.Task(id); }
  Device GetDevice(const std::string& id) { return stack_.GetDevice(id); }
  int64_t Counter(const std::string& name) { return stack_.Counter(name); }
  bool WaitFor(const std::function<bool()>& done, int timeout_ms = 8000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done();
  }
  bool WaitDeviceStatus(int64_t task, const std::string& status) {
    return WaitFor([&] { return Task(task)["devices"][0]["status"] == status; });
  }

  testing::PlatformStack stack_{"ota-gateway-sota"};
  testing::TestKey key_;
  std::vector<uint8_t> full_;
  int64_t full_id_ = 0;
};

TEST_F(GatewaySota, GatewayReportsForItsSubDevice_RefusedForAForeignDevice) {
  auto gw = Connect(kGateway);
  const json props = {
      {"services", {{{"service_id", "DeviceStatus"}, {"properties", {{"radioValue", 7}}}}}}};
  gw->Raw("/sys/gateway/sub_devices/properties/report",
          json{{"devices", {{{"device_id", kSub}, {"services", props["services"]}}}}}.dump());
  ASSERT_TRUE(WaitFor([&] { return Counter("property_reports") == 1; }));
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    EXPECT_EQ(stack_.platform().registry().Properties(kSub)["DeviceStatus"]["radioValue"], 7);
    EXPECT_TRUE(stack_.platform().registry().Properties(kGateway).empty());
  }
  // Another gateway's sub-device, or a device that logs in itself: the whole report is
  // refused, the gateway's own sub-device in it included.
  gw->Raw("/sys/gateway/sub_devices/properties/report",
          json{{"devices",
                {{{"device_id", kSub}, {"services", props["services"]}},
                 {{"device_id", kOtherSub}, {"services", props["services"]}}}}}
              .dump());
  gw->Raw("/sys/gateway/sub_devices/properties/report",
          json{{"devices", {{{"device_id", kPlain}, {"services", props["services"]}}}}}.dump());
  ASSERT_TRUE(WaitFor([&] { return Counter("rejected_property_reports") == 2; }));
  // Events about a device that is not its sub-device: refused, nothing applied.
  gw->Ota(kPlain, "version_report", {{"fw_version", "EVIL"}});
  gw->Ota(kOtherSub, "version_report", {{"fw_version", "EVIL"}});
  gw->Ota(42, "version_report", {{"fw_version", "EVIL"}});
  ASSERT_TRUE(WaitFor([&] { return Counter("rejected_events") == 3; }));
  // Its own sub-device's version, and "-1" (the C SDK's "no device") for the gateway itself.
  gw->Ota(kSub, "version_report", {{"fw_version", "SUBV1"}, {"sw_version", "APPV1"}});
  gw->Ota("-1", "version_report", {{"fw_version", "GWV1"}});
  ASSERT_TRUE(WaitFor([&] { return GetDevice(kGateway).fw_version == "GWV1"; }));
  std::lock_guard<std::mutex> g(stack_.platform().lock());
  Registry& reg = stack_.platform().registry();
  EXPECT_EQ(reg.Properties(kOtherSub), json::object());
  EXPECT_EQ(reg.Properties(kPlain), json::object());
  EXPECT_EQ(reg.Properties(kSub)["DeviceStatus"]["radioValue"], 7);
  EXPECT_EQ(reg.GetDevice(kPlain).fw_version, "");
  EXPECT_EQ(reg.GetDevice(kOtherSub).fw_version, "");
  EXPECT_EQ(reg.GetDevice(kSub).fw_version, "SUBV1");
  EXPECT_EQ(reg.GetDevice(kSub).sw_version, "APPV1");
  EXPECT_EQ(reg.Counter("property_reports"), 1);
}

TEST_F(GatewaySota, SubDeviceOnline_FollowsTheGatewaysStatusEvents) {
  auto gw = Connect(kGateway);
  ASSERT_TRUE(WaitFor([&] { return GetDevice(kGateway).online; }));
  EXPECT_FALSE(GetDevice(kSub).online) << "not until the gateway says so";
  gw->Event(nullptr, "$sub_device_manager", "sub_device_update_status",
            {{"device_statuses", {{{"device_id", kSub}, {"status", "ONLINE"}}}}});
  ASSERT_TRUE(WaitFor([&] { return GetDevice(kSub).online; }));
  // A status for another gateway's sub-device: refused whole.
  gw->Event(nullptr, "$sub_device_manager", "sub_device_update_status",
            {{"device_statuses",
              {{{"device_id", kSub}, {"status", "OFFLINE"}},
               {{"device_id", kOtherSub}, {"status", "ONLINE"}}}}});
  ASSERT_TRUE(WaitFor([&] { return Counter("rejected_events") == 1; }));
  EXPECT_TRUE(GetDevice(kSub).online);
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    EXPECT_FALSE(stack_.platform().registry().GetDevice(kOtherSub).online);
  }
  // The gateway gone: its sub-devices are unreachable, whatever it last said.
  gw.reset();
  ASSERT_TRUE(WaitFor([&] { return !GetDevice(kGateway).online; }));
  EXPECT_FALSE(GetDevice(kSub).online);
}

TEST_F(GatewaySota, FirmwareTaskOnASubDevice_RunsThroughItsGateway) {
  auto gw = Connect(kGateway);
  TaskSpec spec;
  spec.product_id = "fire";
  spec.target_version = "FOTAV2";
  spec.devices = {kSub};
  int64_t task = 0;
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    task = stack_.service().tasks().Create(spec, std::time(nullptr));
  }
  std::string object;
  ASSERT_TRUE(gw->Expect("version_query", &object).has_value());
  EXPECT_EQ(object, kSub) << "sent to the gateway's topic, naming the sub-device";
  gw->Ota(kSub, "version_report", {{"fw_version", "FOTAV1"}});
  const std::optional<json> up = gw->Expect("firmware_upgrade", &object);
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(object, kSub);
  EXPECT_EQ((*up)["file_size"], full_.size());
  // The token downloads the sub-device's package at the sub-device's URL only.
  const std::string other_url =
      "/download/devices/" + std::string(kGateway) + "/packages/" + std::to_string(full_id_);
  auto r = gw->Get(*up, other_url);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << "a sub-device's token is not the gateway's";
  r = gw->Get(*up);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, std::string(full_.begin(), full_.end()));
  EXPECT_EQ(Sha256Hex(r->body), (*up)["sign"]);
  gw->Ota(kSub, "upgrade_progress_report",
          {{"result_code", 0}, {"progress", 50}, {"version", "FOTAV1"}});
  ASSERT_TRUE(WaitFor([&] { return Task(task)["devices"][0]["progress"] == 50; }));
  // The gateway's own report about itself does not touch the sub-device's row.
  gw->Ota(nullptr, "upgrade_progress_report", {{"result_code", 0}, {"version", "FOTAV2"}});
  gw->Ota(kSub, "upgrade_progress_report",
          {{"result_code", 0}, {"progress", 100}, {"version", "FOTAV2"}});
  ASSERT_TRUE(WaitDeviceStatus(task, "Success"));
  EXPECT_EQ(GetDevice(kSub).fw_version, "FOTAV2");
  EXPECT_EQ(GetDevice(kGateway).fw_version, "");
  EXPECT_EQ(Task(task)["devices"][0]["device_id"], kSub);
}

TEST_F(GatewaySota, DisabledGateway_RevokesItsSubDevicesDownloads) {
  auto gw = Connect(kGateway);
  TaskSpec spec;
  spec.product_id = "fire";
  spec.package_id = full_id_;
  spec.devices = {kSub};
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    stack_.service().tasks().Create(spec, std::time(nullptr));
  }
  ASSERT_TRUE(gw->Expect("version_query").has_value());
  gw->Ota(kSub, "version_report", {{"fw_version", "FOTAV1"}});
  const std::optional<json> up = gw->Expect("firmware_upgrade");
  ASSERT_TRUE(up.has_value());
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    stack_.platform().registry().SetDeviceEnabled(kGateway, false);
  }
  auto r = gw->Get(*up);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
}

TEST_F(GatewaySota, SoftwareTask_ComparesSwVersionAndSendsSoftwareUpgrade) {
  const std::string app(20000, 'A');
  const std::string sig = ToHex(SignDetached(key_.pkey(), app));
  ASSERT_FALSE(sig.empty());
  auto api_client = Api();
  httplib::SSLClient& api = *api_client;
  const std::string base = "/api/v1/products/fire/packages?category=software&file_name=app.tar";
  // Unsigned, signed over other bytes, or by a key the product does not have: refused.
  auto r = api.Post((base + "&version=APP2").c_str(), app, "application/octet-stream");
  EXPECT_EQ(r->status, 400) << r->body;
  r = api.Post((base + "&version=APP2&signature=" + sig).c_str(), app + "x",
               "application/octet-stream");
  EXPECT_EQ(r->status, 422) << r->body;
  testing::TestKey stranger;
  r = api.Post(
      (base + "&version=APP2&signature=" + ToHex(SignDetached(stranger.pkey(), app))).c_str(), app,
      "application/octet-stream");
  EXPECT_EQ(r->status, 422) << r->body;
  r = api.Post((base + "&version=APP2&signature=" + sig).c_str(), app, "application/octet-stream");
  ASSERT_EQ(r->status, 201) << r->body;
  const json pkg = json::parse(r->body);
  EXPECT_EQ(pkg["category"], "software");
  EXPECT_EQ(pkg["sha256"], Sha256Hex(app));
  // A firmware task cannot use it, nor find a firmware package for its version.
  r = api.Post(
      "/api/v1/tasks",
      json{{"product_id", "fire"}, {"package_id", pkg["package_id"]}, {"devices", {kPlain}}}.dump(),
      "application/json");
  EXPECT_EQ(r->status, 400) << r->body;
  r = api.Post(
      "/api/v1/tasks",
      json{{"product_id", "fire"}, {"target_version", "APP2"}, {"devices", {kPlain}}}.dump(),
      "application/json");
  EXPECT_EQ(r->status, 400) << r->body;

  auto dev = Connect(kPlain);
  r = api.Post("/api/v1/tasks",
               json{{"product_id", "fire"},
                    {"kind", "software"},
                    {"target_version", "APP2"},
                    {"devices", {kPlain}}}
                   .dump(),
               "application/json");
  ASSERT_EQ(r->status, 201) << r->body;
  const json created = json::parse(r->body);
  EXPECT_EQ(created["kind"], "software");
  const int64_t task = created["task_id"];
  // One open upgrade per device, of either kind.
  r = api.Post(
      "/api/v1/tasks",
      json{{"product_id", "fire"}, {"target_version", "FOTAV2"}, {"devices", {kPlain}}}.dump(),
      "application/json");
  EXPECT_EQ(r->status, 409) << r->body;

  ASSERT_TRUE(dev->Expect("version_query").has_value());
  // The firmware is on "APP2" by chance: a software task looks at sw_version only.
  dev->Ota(kPlain, "version_report", {{"fw_version", "APP2"}, {"sw_version", "APP1"}});
  std::optional<json> up = dev->Expect("software_upgrade");
  ASSERT_TRUE(up.has_value());
  EXPECT_FALSE(dev->Expect("firmware_upgrade", nullptr, 300).has_value());
  EXPECT_EQ((*up)["version"], "APP2");
  EXPECT_EQ((*up)["sign"], Sha256Hex(app));
  EXPECT_EQ((*up)["file_name"], "app.tar");
  auto file = dev->Get(*up);
  ASSERT_TRUE(file);
  ASSERT_EQ(file->status, 200);
  EXPECT_EQ(file->body, app);
  dev->Ota(kPlain, "upgrade_progress_report",
           {{"result_code", 0}, {"progress", 100}, {"version", "APP2"}});
  ASSERT_TRUE(WaitDeviceStatus(task, "Success"));
  const Device d = GetDevice(kPlain);
  EXPECT_EQ(d.sw_version, "APP2");
  EXPECT_EQ(d.fw_version, "APP2") << "the firmware's version is left as reported";
}

TEST_F(GatewaySota, SoftwareTask_AlreadyOnTheSwVersionSucceedsAtOnce) {
  const std::string app(5000, 'B');
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    stack_.platform().packages().UploadSoftware("fire",
                                                std::vector<uint8_t>(app.begin(), app.end()), "",
                                                "APP3", SignDetached(key_.pkey(), app));
  }
  auto gw = Connect(kGateway);
  TaskSpec spec;
  spec.kind = "software";
  spec.product_id = "fire";
  spec.target_version = "APP3";
  spec.devices = {kSub};
  int64_t task = 0;
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    task = stack_.service().tasks().Create(spec, std::time(nullptr));
  }
  ASSERT_TRUE(gw->Expect("version_query").has_value());
  gw->Ota(kSub, "version_report", {{"fw_version", "FOTAV1"}, {"sw_version", "APP3"}});
  ASSERT_TRUE(WaitDeviceStatus(task, "Success"));
  EXPECT_FALSE(gw->Expect("software_upgrade", nullptr, 300).has_value());
}

TEST_F(GatewaySota, VersionReportWithOnlyOneVersion_KeepsTheOtherStored) {
  const std::string app(5000, 'C');
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    stack_.platform().packages().UploadSoftware("fire",
                                                std::vector<uint8_t>(app.begin(), app.end()), "",
                                                "APP4", SignDetached(key_.pkey(), app));
  }
  auto gw = Connect(kGateway);
  // A first report names both; a later one (as the C SDK may send) only the firmware's.
  gw->Ota(kSub, "version_report", {{"fw_version", "FOTAV1"}, {"sw_version", "APP4"}});
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    return stack_.platform().registry().GetDevice(kSub).sw_version == "APP4";
  }));
  TaskSpec spec;
  spec.kind = "software";
  spec.product_id = "fire";
  spec.target_version = "APP4";
  spec.devices = {kSub};
  int64_t task = 0;
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    task = stack_.service().tasks().Create(spec, std::time(nullptr));
  }
  ASSERT_TRUE(gw->Expect("version_query").has_value());
  gw->Ota(kSub, "version_report", {{"fw_version", "FOTAV2"}});
  ASSERT_TRUE(WaitDeviceStatus(task, "Success")) << "the stored sw_version APP4 is the target";
  EXPECT_FALSE(gw->Expect("software_upgrade", nullptr, 300).has_value());
  std::lock_guard<std::mutex> g(stack_.platform().lock());
  const Device d = stack_.platform().registry().GetDevice(kSub);
  EXPECT_EQ(d.fw_version, "FOTAV2");
  EXPECT_EQ(d.sw_version, "APP4");
}

TEST_F(GatewaySota, SubDevice_HasNoCredentialsAndCannotLogIn) {
  auto api_client = Api();
  httplib::SSLClient& api = *api_client;
  auto r =
      api.Post("/api/v1/devices/fire_gw/sub-devices",
               json{{"product_id", "fire"}, {"node_id", "s3"}, {"secret", "a-secret-123"}}.dump(),
               "application/json");
  EXPECT_EQ(r->status, 400) << "no secret for a sub-device: " << r->body;
  r = api.Post("/api/v1/devices",
               json{{"product_id", "fire"}, {"node_id", "s4"}, {"gateway_id", kSub}}.dump(),
               "application/json");
  EXPECT_EQ(r->status, 400) << "a sub-device is no gateway: " << r->body;
  r = api.Post("/api/v1/devices/fire_gw/sub-devices",
               json{{"product_id", "fire"}, {"node_id", "s3"}}.dump(), "application/json");
  ASSERT_EQ(r->status, 201) << r->body;
  const json sub = json::parse(r->body);
  EXPECT_EQ(sub["gateway_id"], kGateway);
  EXPECT_FALSE(sub.contains("secret"));
  r = api.Get("/api/v1/devices/fire_gw/sub-devices");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body).size(), 2u);
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    EXPECT_FALSE(stack_.platform().registry().Credential("fire_s3").has_value());
  }
  // No password logs a sub-device in: not the empty one, not its gateway's.
  for (const std::string& password :
       {std::string(), broker::IotdaPassword(kSecret, testing::UtcHour())}) {
    MqttTestClient c(std::string("fire_s3_0_0_") + testing::UtcHour());
    EXPECT_NE(c.Connect(stack_.broker().port(), "fire_s3", password), 0);
  }
  // Nor over the HTTP auth hook for other brokers.
  r = api.Post("/broker/v1/auth",
               json{{"clientid", std::string("fire_s3_0_0_") + testing::UtcHour()},
                    {"username", "fire_s3"},
                    {"password", broker::IotdaPassword(kSecret, testing::UtcHour())}}
                   .dump(),
               "application/json");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["result"], "deny");
  // Disabling a sub-device works without a credential; events about it are then refused.
  r = api.Patch("/api/v1/devices/fire_s1", json{{"enabled", false}}.dump(), "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  auto gw = Connect(kGateway);
  gw->Ota(kSub, "version_report", {{"fw_version", "X"}});
  ASSERT_TRUE(WaitFor([&] { return Counter("rejected_events") == 1; }));
  EXPECT_EQ(GetDevice(kSub).fw_version, "");
}

}  // namespace
}  // namespace ota::server
