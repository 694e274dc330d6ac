// A scripted device against the whole platform: a real Mosquitto with the auth plugin, a real
// ota-server (HTTPS + MQTT bridge + task ticker) on free loopback ports, and a device that
// speaks IoTDA over MQTT and downloads over HTTPS in ranges.
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
#include "ota/server/service.hpp"
#include "platform_stack.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;
using testing::MqttTestClient;

constexpr const char* kDevice = "fire_n1";
constexpr const char* kSecret = "device-secret-1";

std::string Sha256Hex(const std::string& data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (unsigned int i = 0; i < n; ++i) {
    s.push_back(kDigits[d[i] >> 4]);
    s.push_back(kDigits[d[i] & 15]);
  }
  return s;
}

// The device side of the IoTDA protocol, as a test script.
class ScriptedDevice {
 public:
  ScriptedDevice(int port, const std::filesystem::path& ca) : port_(port), ca_(ca) { Connect(); }

  void Connect() {
    client_ = std::make_unique<MqttTestClient>(std::string(kDevice) + "_0_0_" + testing::UtcHour());
    ASSERT_EQ(client_->Connect(port_, kDevice, broker::IotdaPassword(kSecret, testing::UtcHour())),
              0);
    ASSERT_EQ(client_->Subscribe(std::string("$oc/devices/") + kDevice + "/sys/events/down"), 1);
  }
  void Reboot() {
    client_.reset();
    Connect();
  }

  // Waits for the next $ota event of `type` sent to this device; returns its paras.
  std::optional<json> Expect(const std::string& type, int timeout_ms = 8000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& m : client_->Receive(std::chrono::milliseconds(50))) {
        const json env = json::parse(m.payload);
        for (const auto& s : env["services"]) {
          if (s["event_type"] == type) return s["paras"];
        }
      }
    }
    return std::nullopt;
  }

  void Event(const std::string& type, const json& paras) {
    const json env = {{"object_device_id", kDevice},
                      {"services",
                       {{{"service_id", "$ota"},
                         {"event_type", type},
                         {"event_time", "20251125T120000Z"},
                         {"paras", paras}}}}};
    ASSERT_TRUE(
        client_->Publish(std::string("$oc/devices/") + kDevice + "/sys/events/up", env.dump()));
  }
  void Raw(const std::string& suffix, const std::string& payload) {
    ASSERT_TRUE(client_->Publish(std::string("$oc/devices/") + kDevice + suffix, payload));
  }

  // Downloads `paras.url` in 4 KB ranges with the bearer token, as the agent does.
  std::string Download(const json& paras) {
    const std::string url = paras["url"];
    const std::string path = url.substr(url.find('/', std::string("https://").size()));
    httplib::SSLClient http("127.0.0.1", std::stoi(url.substr(url.rfind(':') + 1)));
    http.set_ca_cert_path(ca_.c_str());
    http.enable_server_certificate_verification(true);
    http.set_bearer_token_auth(paras["access_token"].get<std::string>().c_str());
    const int64_t size = paras["file_size"];
    std::string file;
    while (static_cast<int64_t>(file.size()) < size) {
      const int64_t end = std::min<int64_t>(size, static_cast<int64_t>(file.size()) + 4096) - 1;
      auto r =
          http.Get(path.c_str(),
                   {{"Range", "bytes=" + std::to_string(file.size()) + "-" + std::to_string(end)}});
      if (!r || r->status != 206) return {};
      file += r->body;
    }
    return file;
  }

 private:
  int port_;
  std::filesystem::path ca_;
  std::unique_ptr<MqttTestClient> client_;
};

class DeviceFlow : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_.AddFireProduct(key_.pkey());
    Registry& reg = stack_.registry();
    reg.CreateDevice("fire", "n1", "", kSecret);
    const uint32_t load = testing::FireAppAddress();
    v1_ = testing::MakeTestImage("FOTAV1", 30000, load, 1);
    v2_ = testing::MakeTestImage("FOTAV2", 31000, load, 2);
    std::copy(v1_.begin() + 0x400, v1_.begin() + 25000, v2_.begin() + 0x400);
    v2_.resize(v2_.size() - kImageTrailerSize);
    std::fill(v2_.begin() + kImageHeaderOffset, v2_.begin() + kImageHeaderOffset + kImageHeaderSize,
              0);
    v2_ = host::StampImage(std::move(v2_), "FOTAV2", load).image;
    host::PackageSpec full;
    full.version = "FOTAV2";
    full.image = v2_;
    full_ = testing::MakePackage(full, &key_);
    host::PackageSpec diff = full;
    diff.kind = PackageKind::kDiff;
    diff.from_version = "FOTAV1";
    diff.source = v1_;
    diff_ = testing::MakePackage(diff, &key_);
    full_id_ = stack_.platform().packages().Upload("fire", full_, "appv2c.bin").package_id;
    diff_id_ = stack_.platform().packages().Upload("fire", diff_, "appv1v2.bin").package_id;

    ASSERT_TRUE(stack_.Start());
  }

  json Task(int64_t id) { return stack_.Task(id); }
  // A task that takes fire_n1 to FOTAV2 (diff or full chosen by the platform).
  static TaskSpec ToFotaV2() {
    TaskSpec spec;
    spec.product_id = "fire";
    spec.target_version = "FOTAV2";
    spec.devices = {kDevice};
    return spec;
  }
  int64_t CreateTask(const TaskSpec& spec) { return stack_.CreateTask(spec); }
  // Polls until the device's state in the task is `status`.
  bool WaitDeviceStatus(int64_t task, const std::string& status, int timeout_ms = 8000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Task(task)["devices"][0]["status"] == status) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  testing::PlatformStack stack_{"ota-device-flow"};
  testing::TestKey key_;
  std::vector<uint8_t> v1_, v2_, full_, diff_;
  int64_t full_id_ = 0, diff_id_ = 0;
};

TEST_F(DeviceFlow, WholeTask_QueryReportDiffDownloadRebootSuccess) {
  ScriptedDevice dev(stack_.broker().port(), stack_.platform().tls().ca_cert);
  const int64_t task = CreateTask(ToFotaV2());

  ASSERT_TRUE(dev.Expect("version_query").has_value());
  dev.Event("version_report", {{"fw_version", "FOTAV1"}, {"sw_version", "SOTAV1"}});
  const std::optional<json> up = dev.Expect("firmware_upgrade");
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ((*up)["version"], "FOTAV2");
  EXPECT_EQ((*up)["file_size"], diff_.size()) << "a device on FOTAV1 gets the diff";
  const std::string file = dev.Download(*up);
  ASSERT_EQ(file.size(), diff_.size());
  EXPECT_EQ(Sha256Hex(file), (*up)["sign"]) << "sign is the SHA-256 of the file";
  EXPECT_EQ(file, std::string(diff_.begin(), diff_.end()));
  dev.Event("upgrade_progress_report",
            {{"result_code", 0}, {"progress", 100}, {"version", "FOTAV1"}});
  ASSERT_TRUE(WaitDeviceStatus(task, "Processing"));
  dev.Reboot();
  dev.Event("version_report", {{"fw_version", "FOTAV2"}, {"sw_version", "SOTAV1"}});
  dev.Event("upgrade_progress_report",
            {{"result_code", 0}, {"progress", 100}, {"version", "FOTAV2"}});
  ASSERT_TRUE(WaitDeviceStatus(task, "Success"));
  const json t = Task(task);
  EXPECT_EQ(t["status"], "Success");
  EXPECT_EQ(t["devices"][0]["package_id"], diff_id_);
  std::lock_guard<std::mutex> g(stack_.platform().lock());
  EXPECT_EQ(stack_.platform().registry().GetDevice(kDevice).fw_version, "FOTAV2");
}

TEST_F(DeviceFlow, AlreadyOnTarget_CountsAsSuccess) {
  ScriptedDevice dev(stack_.broker().port(), stack_.platform().tls().ca_cert);
  TaskSpec spec;
  spec.product_id = "fire";
  spec.target_version = "FOTAV2";
  spec.whole_product = true;
  const int64_t task = CreateTask(spec);
  ASSERT_TRUE(dev.Expect("version_query").has_value());
  dev.Event("version_report", {{"fw_version", "FOTAV2"}});
  ASSERT_TRUE(WaitDeviceStatus(task, "Success"));
  EXPECT_FALSE(dev.Expect("firmware_upgrade", 300).has_value());
}

TEST_F(DeviceFlow, DeviceFailure_RetriedThenSucceeds) {
  ScriptedDevice dev(stack_.broker().port(), stack_.platform().tls().ca_cert);
  TaskSpec spec = ToFotaV2();
  spec.retry_count = 1;
  spec.retry_interval = 1;
  const int64_t task = CreateTask(spec);
  ASSERT_TRUE(dev.Expect("version_query").has_value());
  dev.Event("version_report", {{"fw_version", "FOTAV3"}});  // no diff from FOTAV3: full
  std::optional<json> up = dev.Expect("firmware_upgrade");
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ((*up)["file_size"], full_.size());
  dev.Event("upgrade_progress_report",
            {{"result_code", 7}, {"version", "FOTAV3"}, {"description", "verify failed"}});
  ASSERT_TRUE(WaitDeviceStatus(task, "FailWaitRetry"));
  ASSERT_TRUE(dev.Expect("version_query", 5000).has_value()) << "the retry asks again";
  dev.Event("version_report", {{"fw_version", "FOTAV3"}});
  ASSERT_TRUE(dev.Expect("firmware_upgrade").has_value());
  dev.Event("upgrade_progress_report", {{"result_code", 0}, {"version", "FOTAV2"}});
  ASSERT_TRUE(WaitDeviceStatus(task, "Success"));
  EXPECT_EQ(Task(task)["devices"][0]["attempts"], 1);
}

TEST_F(DeviceFlow, NoRetriesLeft_Fails) {
  ScriptedDevice dev(stack_.broker().port(), stack_.platform().tls().ca_cert);
  const int64_t task = CreateTask(ToFotaV2());
  ASSERT_TRUE(dev.Expect("version_query").has_value());
  dev.Event("version_report", {{"fw_version", "FOTAV1"}});
  ASSERT_TRUE(dev.Expect("firmware_upgrade").has_value());
  dev.Event("upgrade_progress_report", {{"result_code", 10}, {"version", "FOTAV1"}});
  ASSERT_TRUE(WaitDeviceStatus(task, "Fail"));
  EXPECT_EQ(Task(task)["status"], "Fail");
  EXPECT_EQ(Task(task)["devices"][0]["result_code"], 10);
}

TEST_F(DeviceFlow, ServerRestartMidTask_Continues) {
  ScriptedDevice dev(stack_.broker().port(), stack_.platform().tls().ca_cert);
  const int64_t task = CreateTask(ToFotaV2());
  ASSERT_TRUE(dev.Expect("version_query").has_value());
  dev.Event("version_report", {{"fw_version", "FOTAV1"}});
  const std::optional<json> up = dev.Expect("firmware_upgrade");
  ASSERT_TRUE(up.has_value());
  ASSERT_TRUE(WaitDeviceStatus(task, "Processing"));

  const int port = stack_.service().http_port();
  const int downloads = stack_.service().download_port();
  stack_.ReopenPlatform();  // the server goes away mid-task ...
  ServiceOptions o = stack_.service_options();
  o.http_port = port;
  o.download_port = downloads;
  // ... and comes back on the same data directory and address
  ASSERT_TRUE(stack_.StartService(o));
  EXPECT_EQ(dev.Download(*up).size(), diff_.size()) << "the download token still works";
  dev.Reboot();
  dev.Event("upgrade_progress_report", {{"result_code", 0}, {"version", "FOTAV2"}});
  ASSERT_TRUE(WaitDeviceStatus(task, "Success"));
}

TEST_F(DeviceFlow, TasksOverRest_CreateShowStop) {
  httplib::SSLClient api("127.0.0.1", stack_.service().http_port());
  api.set_ca_cert_path(stack_.platform().tls().ca_cert.c_str());
  api.enable_server_certificate_verification(true);
  std::string token;
  std::ifstream(stack_.dir() / "admin.token") >> token;
  api.set_bearer_token_auth(token.c_str());
  auto r = api.Post(
      "/api/v1/tasks",
      json{{"product_id", "fire"}, {"target_version", "FOTAV9"}, {"devices", {kDevice}}}.dump(),
      "application/json");
  EXPECT_EQ(r->status, 400) << "no package for FOTAV9: " << r->body;
  r = api.Post("/api/v1/tasks",
               json{{"product_id", "fire"},
                    {"package_id", full_id_},
                    {"groups", json::array()},
                    {"devices", {kDevice}},
                    {"retry_count", 2},
                    {"start_at", std::time(nullptr) + 3600}}
                   .dump(),
               "application/json");
  ASSERT_EQ(r->status, 201) << r->body;
  const json task = json::parse(r->body);
  EXPECT_EQ(task["target_version"], "FOTAV2");
  EXPECT_EQ(task["status"], "Waiting");
  EXPECT_EQ(task["state"], "scheduled");
  EXPECT_EQ(task["counts"]["Waiting"], 1);
  const std::string path = "/api/v1/tasks/" + std::to_string(task["task_id"].get<int64_t>());
  EXPECT_EQ(json::parse(api.Get(path.c_str())->body)["devices"][0]["status"], "Waiting");
  EXPECT_FALSE(json::parse(api.Get((path + "?devices=false").c_str())->body).contains("devices"));
  r = api.Post((path + "/stop").c_str(), "", "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["status"], "Stopped");
  EXPECT_EQ(json::parse(api.Get(path.c_str())->body)["devices"][0]["status"], "Stopped");
  EXPECT_EQ(json::parse(api.Get("/api/v1/tasks")->body).size(), 1u);
  // A task that has ended is not relabelled.
  r = api.Post((path + "/stop").c_str(), "", "application/json");
  EXPECT_EQ(r->status, 409) << r->body;
}

TEST_F(DeviceFlow, BadMessages_RejectedCountedAndNotStored) {
  ScriptedDevice dev(stack_.broker().port(), stack_.platform().tls().ca_cert);
  dev.Raw("/sys/properties/report",
          R"({"services":[{"service_id":"DeviceStatus","properties":{"radioValue":3}}]})");
  dev.Raw("/sys/properties/report", "{not json");
  dev.Raw("/sys/properties/report",
          R"({"services":[{"service_id":"DeviceStatus","properties":{"radioValue":"loud"}}]})");
  dev.Raw("/sys/properties/report", std::string(70000, ' '));
  dev.Event("firmware_party", {});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int64_t rejected = 0, events = 0, oversized = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> g(stack_.platform().lock());
      rejected = stack_.platform().registry().Counter("rejected_property_reports");
      events = stack_.platform().registry().Counter("rejected_events");
      oversized = stack_.platform().registry().Counter("rejected_oversized");
    }
    if (rejected == 2 && events == 1 && oversized == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(rejected, 2);
  EXPECT_EQ(events, 1);
  // This broker has no packet limit: the platform drops the 70000 bytes before copying them.
  EXPECT_EQ(oversized, 1);
  std::lock_guard<std::mutex> g(stack_.platform().lock());
  EXPECT_EQ(stack_.platform().registry().Properties(kDevice)["DeviceStatus"]["radioValue"], 3);
  EXPECT_EQ(stack_.platform().registry().Counter("property_reports"), 1);
}

}  // namespace
}  // namespace ota::server
