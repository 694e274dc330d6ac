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
#include "ota/host/image_builder.hpp"
#include "ota/host/keys.hpp"
#include "ota/image.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;
using testing::HuaweiSdkDevice;

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
    stack_.AddFireProduct(key_.pkey(),
                          {{"services",
                            {{{"service_id", "Smoke"},
                              {"properties", {{{"name", "Smoke_value"}, {"type", "int"}}}}}}}});
    host::PackageSpec full;
    full.version = "v2.0";
    full.image = testing::MakeTestImage("v2.0", 30000, testing::FireAppAddress(), 2);
    full_ = testing::MakePackage(full, &key_);
    full_id_ = stack_.platform().packages().Upload("fire", full_, "fire-v2.0.bin").package_id;

    ASSERT_TRUE(stack_.Start());
  }

  // Registers node `node` of product fire with `secret`; returns the device ID.
  std::string Register(const std::string& node, const std::string& secret) {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    return stack_.platform().registry().CreateDevice("fire", node, "", secret).first.device_id;
  }
  int64_t CreateTask(const std::vector<std::string>& devices) {
    TaskSpec spec;
    spec.product_id = "fire";
    spec.target_version = "v2.0";
    spec.devices = devices;
    return stack_.CreateTask(spec);
  }
  std::string DeviceStatus(int64_t task, const std::string& device) {
    const json t = stack_.Task(task);
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
    testing::ApiAnswer a = stack_.Call("POST", path, body);
    return {a.status, std::move(a.body)};
  }

  testing::PlatformStack stack_{"ota-huawei-sdk"};
  std::filesystem::path sdk_dir_ = stack_.dir() / "sdk-downloads";
  testing::TestKey key_;
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
  ASSERT_EQ(dev.Connect(stack_.broker().port()), 0) << "client id " << dev.client_id();
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
  ASSERT_EQ(sm3.Connect(stack_.broker().port()), 0) << "client id " << sm3.client_id();
  ASSERT_EQ(sha.Connect(stack_.broker().port()), 0) << "client id " << sha.client_id();
  const int64_t task = CreateTask({sm3.device_id(), sha.device_id()});
  EXPECT_TRUE(RunUntilSuccess(task, {&sm3, &sha}))
      << DeviceStatus(task, sm3.device_id()) << " / " << DeviceStatus(task, sha.device_id());
  ExpectWholeDownload(sm3);
  ExpectWholeDownload(sha);
}

TEST_F(HuaweiSdkCompat, PropertyReport_FromANeverSubscribedDevice_Stored) {
  const std::string id = Register("c-sdk-props", "props-secret");
  HuaweiSdkDevice dev(id, "props-secret", 0, testing::UtcHour(), sdk_dir_);
  ASSERT_EQ(dev.Connect(stack_.broker().port()), 0);
  // properties_test.c: Smoke.Smoke_value as an int, no event_time.
  ASSERT_TRUE(dev.Publish(
      "/sys/properties/report",
      {{"services", {{{"service_id", "Smoke"}, {"properties", {{"Smoke_value", 42}}}}}}}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  json props;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> g(stack_.platform().lock());
      props = stack_.platform().registry().Properties(id);
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
  ASSERT_EQ(dev.Connect(stack_.broker().port()), 0);
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
