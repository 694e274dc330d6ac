// Huawei's device SDKs against the whole platform: a real Mosquitto with the auth plugin, a real
// ota-server (HTTPS, MQTT bridge, task ticker) on free loopback ports, and devices that behave
// like the SDKs where they differ from our agent (huawei_sdk_device.hpp): they never subscribe,
// log in with the C SDK's bumped timestamps or with HMAC-SM3, download with bare-LF requests and
// take the file name from Content-Disposition. Each runs a whole firmware upgrade.
#include <gtest/gtest.h>
#include <httplib.h>

#include <ctime>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "huawei_sdk_device.hpp"
#include "mosquitto_process.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/host/keys.hpp"
#include "ota/image.hpp"
#include "ota/server/service.hpp"
#include "temp_dir.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;
using testing::HuaweiSdkDevice;

const BoardProfile& kBoard = kStm32f429Fire;

// Today's date at hour 23 (UTC), the stamp the C SDK bumps to "hour 24".
std::string Today23() {
  return testing::UtcHour().substr(0, 8) + "23";
}

// A secret whose C SDK login from `timestamp` is bumped at least once (its MAC has a zero byte):
// about one secret in nine.
std::string SecretThatBumps(const std::string& timestamp, int sig_type) {
  for (int i = 0;; ++i) {
    const std::string secret = "sdk-secret-" + std::to_string(i);
    if (testing::CSdkLogin(secret, timestamp, sig_type).bumps > 0) return secret;
  }
}

class HuaweiSdkCompat : public ::testing::Test {
 protected:
  void SetUp() override {
    platform_ = std::make_unique<Platform>(dir_.path());
    Registry& reg = platform_->registry();
    const json model = {{"services",
                         {{{"service_id", "Smoke"},
                           {"properties", {{{"name", "Smoke_value"}, {"type", "int"}}}}}}}};
    reg.CreateProduct("fire", "FIRE", "embedfire", "MQTT", model);
    reg.AddProductKey("fire", host::PublicKeyPem(key_.pkey()), false);
    const uint32_t load = kBoard.internal_base + kBoard.partition(PartitionId::kRunning).offset;
    host::PackageSpec full;
    full.version = "v2.0";
    full.image = testing::MakeTestImage("v2.0", 30000, load, 2);
    full_ = testing::MakePackage(full, &key_);
    full_id_ = platform_->packages().Upload("fire", full_, "fire-v2.0.bin").package_id;

    std::ofstream(dir_ / "platform.pw") << "platform-secret\n";
    broker_ = std::make_unique<testing::MosquittoProcess>(
        dir_.path(), std::vector<std::string>{
                         std::string("plugin ") + OTA_AUTH_PLUGIN,
                         "plugin_opt_registry " + platform_->database_path().string(),
                         "plugin_opt_secret_key " + platform_->secret_key_path().string(),
                         "plugin_opt_platform_password_file " + (dir_ / "platform.pw").string()});
    ASSERT_TRUE(broker_->running());
    ServiceOptions o;
    o.http_port = 0;
    o.download_port = 0;
    o.mqtt.port = broker_->port();
    o.mqtt.password = "platform-secret";
    o.tick_ms = 100;
    service_ = std::make_unique<Service>(*platform_, o);
    std::string error;
    ASSERT_TRUE(service_->Start(&error)) << error;
    std::ifstream(dir_ / "admin.token") >> token_;
  }
  void TearDown() override {
    service_.reset();
    if (HasFailure() && broker_) std::fprintf(stderr, "broker log:\n%s\n", broker_->Log().c_str());
    broker_.reset();
  }

  // Registers node `node` of product fire with `secret`; returns the device ID.
  std::string Register(const std::string& node, const std::string& secret) {
    std::lock_guard<std::mutex> g(platform_->lock());
    return platform_->registry().CreateDevice("fire", node, "", secret).first.device_id;
  }
  int64_t CreateTask(const std::vector<std::string>& devices) {
    TaskSpec spec;
    spec.product_id = "fire";
    spec.target_version = "v2.0";
    spec.devices = devices;
    std::lock_guard<std::mutex> g(platform_->lock());
    return service_->tasks().Create(spec, std::time(nullptr));
  }
  std::string DeviceStatus(int64_t task, const std::string& device) {
    std::lock_guard<std::mutex> g(platform_->lock());
    const json t = service_->tasks().Get(task);
    for (const json& d : t["devices"]) {
      if (d["device_id"] == device) return d["status"];
    }
    return "(not in the task)";
  }
  // Runs the devices as the SDK demos do until each is Success in `task` (or time runs out).
  bool RunUntilSuccess(int64_t task, const std::vector<HuaweiSdkDevice*>& devices,
                       int timeout_ms = 20000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      bool all = true;
      for (HuaweiSdkDevice* d : devices) {
        d->Run(std::chrono::milliseconds(100));
        all = all && DeviceStatus(task, d->device_id()) == "Success";
      }
      if (all) return true;
    }
    return false;
  }
  void ExpectWholeDownload(const HuaweiSdkDevice& d) {
    ASSERT_TRUE(d.last_download().has_value()) << d.device_id() << " never got firmware_upgrade";
    const testing::SdkDownload& dl = *d.last_download();
    EXPECT_EQ(dl.error, "") << dl.first_record;
    EXPECT_EQ(dl.status, 200) << "the C SDK reads only 200";
    EXPECT_EQ(dl.body, std::string(full_.begin(), full_.end()));
    EXPECT_EQ(dl.file_name, "fire-v2.0.bin") << "unquoted basename from Content-Disposition";
    EXPECT_TRUE(std::filesystem::exists(sdk_dir_ / "fire-v2.0.bin"));
    EXPECT_EQ(d.last_result_code(), 0) << "the SHA-256 of the file equals sign";
  }

  // An operator's REST call (it may wait for a device's answer).
  std::pair<int, json> Call(const std::string& path, const json& body) {
    httplib::SSLClient api("127.0.0.1", service_->http_port());
    api.set_ca_cert_path(platform_->tls().ca_cert.c_str());
    api.enable_server_certificate_verification(true);
    api.set_bearer_token_auth(token_.c_str());
    api.set_read_timeout(30);
    httplib::Result r = api.Post(path.c_str(), body.dump(), "application/json");
    if (!r) return {-1, nullptr};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  testing::TempDir dir_{"ota-huawei-sdk"};
  std::string token_;
  std::filesystem::path sdk_dir_ = dir_ / "sdk-downloads";
  testing::TestKey key_;
  std::unique_ptr<Platform> platform_;
  std::unique_ptr<testing::MosquittoProcess> broker_;
  std::unique_ptr<Service> service_;
  std::vector<uint8_t> full_;
  int64_t full_id_ = 0;
};

TEST_F(HuaweiSdkCompat, CSdkDevice_Hour24StampNeverSubscribes_WholeUpgradeSucceeds) {
  std::filesystem::create_directories(sdk_dir_);
  // Sig 0 (the C SDK's default): the stamp is only the HMAC key, whatever its hour.
  const std::string secret = SecretThatBumps(Today23(), 0);
  const std::string id = Register("c-sdk-1", secret);
  HuaweiSdkDevice dev(id, secret, 0, Today23(), sdk_dir_);
  ASSERT_GE(dev.login().bumps, 1);
  ASSERT_EQ(dev.login().timestamp.substr(8), std::to_string(23 + dev.login().bumps));
  ASSERT_EQ(dev.Connect(broker_->port()), 0) << "client id " << dev.client_id();
  const int64_t task = CreateTask({id});
  EXPECT_TRUE(RunUntilSuccess(task, {&dev})) << "status " << DeviceStatus(task, id);
  ExpectWholeDownload(dev);
  EXPECT_EQ(dev.downloads(), 1) << "downloaded exactly once";
}

TEST_F(HuaweiSdkCompat, Sm3AndSha256SigTypes_NeverSubscribe_WholeUpgradeSucceeds) {
  std::filesystem::create_directories(sdk_dir_);
  // Sig 1 and 2 are checked against the broker's time window: the current hour.
  HuaweiSdkDevice sm3(Register("c-sdk-sm3", "sm3-secret"), "sm3-secret", 2, testing::UtcHour(),
                      sdk_dir_);
  HuaweiSdkDevice sha(Register("c-sdk-sha", "sha-secret"), "sha-secret", 1, testing::UtcHour(),
                      sdk_dir_);
  ASSERT_EQ(sm3.Connect(broker_->port()), 0) << "client id " << sm3.client_id();
  ASSERT_EQ(sha.Connect(broker_->port()), 0) << "client id " << sha.client_id();
  const int64_t task = CreateTask({sm3.device_id(), sha.device_id()});
  EXPECT_TRUE(RunUntilSuccess(task, {&sm3, &sha}))
      << DeviceStatus(task, sm3.device_id()) << " / " << DeviceStatus(task, sha.device_id());
  ExpectWholeDownload(sm3);
  ExpectWholeDownload(sha);
}

TEST_F(HuaweiSdkCompat, PropertyReport_FromANeverSubscribedDevice_Stored) {
  const std::string id = Register("c-sdk-props", "props-secret");
  HuaweiSdkDevice dev(id, "props-secret", 0, testing::UtcHour(), sdk_dir_);
  ASSERT_EQ(dev.Connect(broker_->port()), 0);
  // properties_test.c: Smoke.Smoke_value as an int, no event_time.
  ASSERT_TRUE(dev.Publish(
      "/sys/properties/report",
      {{"services", {{{"service_id", "Smoke"}, {"properties", {{"Smoke_value", 42}}}}}}}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  json props;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> g(platform_->lock());
      props = platform_->registry().Properties(id);
    }
    if (props.dump().find("42") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(props.dump().find("Smoke_value"), std::string::npos) << props.dump();
  EXPECT_NE(props.dump().find("42"), std::string::npos) << props.dump();
}

TEST_F(HuaweiSdkCompat, PythonSdkOnConnect_TimeSyncShadowAndCommandReachANeverSubscribedDevice) {
  const std::string id = Register("py-sdk-1", "py-secret");
  HuaweiSdkDevice dev(id, "py-secret", 0, testing::UtcHour(), sdk_dir_);
  ASSERT_EQ(dev.Connect(broker_->port()), 0);
  const auto event = [&](const char* service, const char* type, const json& paras) {
    return json{{"object_device_id", id},
                {"services",
                 {{{"service_id", service},
                   {"event_type", type},
                   {"event_time", nullptr},
                   {"paras", paras}}}}};
  };
  // What the Python SDK sends on every connect: its version, a time request (digits as a
  // string) and a shadow request.
  ASSERT_TRUE(dev.Publish("/sys/events/up", event("$sdk_info", "sdk_info_report",
                                                  {{"device_sdk_version", "Python_v1.2.0"}})));
  ASSERT_TRUE(dev.Publish("/sys/events/up", event("$time_sync", "time_sync_request",
                                                  {{"device_send_time", "1700000000123"}})));
  ASSERT_TRUE(dev.Publish("/sys/shadow/get/request_id=py-req-1", {{"object_device_id", id}}));
  bool time_answered = false, shadow_answered = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  while (std::chrono::steady_clock::now() < deadline && !(time_answered && shadow_answered)) {
    for (const testing::ReceivedMessage& m : dev.Run(std::chrono::milliseconds(100))) {
      const json j = json::parse(m.payload, nullptr, false);
      if (m.topic == "$oc/devices/" + id + "/sys/events/down" &&
          j["services"][0]["event_type"] == "time_sync_response") {
        time_answered = true;
        EXPECT_EQ(j["services"][0]["paras"]["device_send_time"], 1700000000123LL);
      }
      if (m.topic == "$oc/devices/" + id + "/sys/shadow/get/response/request_id=py-req-1") {
        shadow_answered = true;
        EXPECT_TRUE(j["shadow"].is_array()) << m.payload;
      }
    }
  }
  EXPECT_TRUE(time_answered) << "time_sync_response reaches a device that never subscribed";
  EXPECT_TRUE(shadow_answered) << "the shadow answer reaches a device that never subscribed";

  // A command from the operator, answered by the device with the request ID from the topic.
  auto pending = std::async(std::launch::async, [&] {
    return Call("/api/v1/devices/" + id + "/commands",
                {{"service_id", "Smoke"}, {"command_name", "beep"}, {"paras", {{"times", 2}}}});
  });
  const std::string prefix = "$oc/devices/" + id + "/sys/commands/request_id=";
  bool answered = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  while (std::chrono::steady_clock::now() < until && !answered) {
    for (const testing::ReceivedMessage& m : dev.Run(std::chrono::milliseconds(50))) {
      if (m.topic.rfind(prefix, 0) != 0) continue;
      const std::string rid = m.topic.substr(prefix.size());
      EXPECT_EQ(json::parse(m.payload)["command_name"], "beep");
      ASSERT_TRUE(
          dev.Publish("/sys/commands/response/request_id=" + rid,
                      {{"result_code", 0}, {"response_name", "beep"}, {"paras", {{"ok", 1}}}}));
      answered = true;
    }
  }
  EXPECT_TRUE(answered) << "the command reaches a device that never subscribed";
  const auto [status, body] = pending.get();
  EXPECT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["status"], "succeeded") << body.dump();
  EXPECT_EQ(body["response"]["paras"]["ok"], 1) << body.dump();
}

}  // namespace
}  // namespace ota::server
