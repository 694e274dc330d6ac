// Over-the-air upgrades end to end, in one process: a real Mosquitto (auth plugin, MQTTS), the
// platform (ota-server's Service) and a simulated FIRE board running the loader and the app's
// OTA agent over real MQTT and HTTPS. Faults: dropped connections, power cuts during the
// download and during the loader's work, packages the board must refuse.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <random>
#include <thread>

#include "board_runner.hpp"
#include "mqtt_test_client.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/host/keys.hpp"
#include "ota/image.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::testing {
namespace {

using nlohmann::json;
using server::Service;

const BoardProfile& kBoard = kStm32f429Fire;
constexpr const char* kDevice = "fire_n1";
constexpr const char* kSecret = "e2e-device-secret";

uint32_t LoadAddress() {
  return kBoard.internal_base + kBoard.partition(PartitionId::kRunning).offset;
}

std::vector<uint8_t> Restamp(std::vector<uint8_t> image, const char* version) {
  image.resize(image.size() - kImageTrailerSize);
  std::fill(image.begin() + kImageHeaderOffset,
            image.begin() + kImageHeaderOffset + kImageHeaderSize, 0);
  return host::StampImage(std::move(image), version, LoadAddress()).image;
}

class OtaE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_.AddFireProduct(key_.pkey());
    stack_.registry().CreateDevice("fire", "n1", "", kSecret);

    // 120 KB images sharing most bytes: 30 blocks of download for the full package.
    v1_ = MakeTestImage("FOTAV1", 120000, LoadAddress(), 1);
    v2_ = MakeTestImage("FOTAV2", 122000, LoadAddress(), 2);
    std::copy(v1_.begin() + 0x400, v1_.begin() + 100000, v2_.begin() + 0x400);
    v2_ = Restamp(v2_, "FOTAV2");
    full2_ = Upload(Full(v2_, "FOTAV2", key_), "appv2c.bin");
    diff12_ = Upload(Diff(v1_, v2_, key_), "appv1v2.bin");

    StackOptions options;
    options.broker = StackBroker::kPlatformTls;
    ASSERT_TRUE(stack_.Start(options));

    device_sim::DeviceConfig dc;
    dc.device_id = kDevice;
    dc.secret = kSecret;
    dc.mqtt_host = "localhost";
    dc.mqtt_port = stack_.mqtts_port();
    dc.ca_file = stack_.platform().tls().ca_cert.string();
    dc.loader_keys = {key_.trusted()};
    dc.report_interval_ms = 60000;
    device_config_ = dc;
    board_ = std::make_unique<device_sim::BoardRunner>(kBoard, "", dc);
    board_->Program({}, v1_);
  }
  // The board's own network port instead: AT commands to a simulated ESP-AT modem.
  void UseEspAtModem() {
    device_config_.transport = "esp-at";
    board_ = std::make_unique<device_sim::BoardRunner>(kBoard, "", device_config_);
    board_->Program({}, v1_);
  }
  host::PackageSpec Full(const std::vector<uint8_t>& image, const char* version, const TestKey& k) {
    (void)k;
    host::PackageSpec s;
    s.version = version;
    s.image = image;
    return s;
  }
  host::PackageSpec Diff(const std::vector<uint8_t>& from, const std::vector<uint8_t>& to,
                         const TestKey& k) {
    host::PackageSpec s = Full(to, "FOTAV2", k);
    s.kind = PackageKind::kDiff;
    s.from_version = "FOTAV1";
    s.source = from;
    return s;
  }
  int64_t Upload(const host::PackageSpec& spec, const char* name, const TestKey* signer = nullptr) {
    const std::vector<uint8_t> pkg = MakePackage(spec, signer != nullptr ? signer : &key_);
    return stack_.platform().packages().Upload("fire", pkg, name).package_id;
  }

  int64_t CreateTask(int64_t package_id, const char* version, int retries) {
    server::TaskSpec spec;
    spec.product_id = "fire";
    spec.package_id = package_id;
    spec.target_version = package_id == 0 ? version : "";
    spec.devices = {kDevice};
    spec.retry_count = retries;
    spec.retry_interval = 1;
    return stack_.CreateTask(spec);
  }
  json Task(int64_t id) { return stack_.Task(id); }
  std::string DeviceState(int64_t task) { return Task(task)["devices"][0]["status"]; }

  // Powers the board on once: the loader, then the app; kPowerLost if a cut struck.
  Status PowerOn() {
    board_->flash().power.PowerOn();
    const Result<BootDecision> d = board_->Boot();
    if (!d.ok()) return d.status();
    boots_.push_back(d->record);
    return board_->StartApp(d.value());
  }

  // Runs the app (rebooting through the loader when it asks) until `done` or the time is up.
  // A power cut ends the run with kPowerLost.
  template <typename Done>
  Status Run(Done&& done, int timeout_ms = 30000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return Status::Ok();
      const Result<agent::AgentEvent> e = board_->agent().Step(20);
      if (!e.ok() && e.status().code() == StatusCode::kPowerLost) return e.status();
      if (e.ok() && e.value() == agent::AgentEvent::kReboot) OTA_TRY(PowerOn());
    }
    return done() ? Status::Ok() : Status(StatusCode::kFailedPrecondition);
  }

  PlatformStack stack_{"ota-e2e"};
  TestKey key_;
  device_sim::DeviceConfig device_config_;
  std::unique_ptr<device_sim::BoardRunner> board_;
  std::vector<uint8_t> v1_, v2_;
  int64_t full2_ = 0, diff12_ = 0;
  std::vector<BootRecord> boots_;
};

// The broker configuration broker-config writes refuses a packet over 64 KB from a device
// (max_packet_size): the device is disconnected and nothing reaches the platform; what fits
// is stored as before.
TEST_F(OtaE2E, OversizedDevicePayload_RefusedAtTheBroker_NothingReachesThePlatform) {
  const std::string report =
      R"({"services":[{"service_id":"DeviceStatus","properties":{"radioValue":7}}]})";
  const std::string topic = std::string("$oc/devices/") + kDevice + "/sys/properties/report";
  {
    MqttTestClient device(std::string(kDevice) + "_0_0_" + UtcHour());
    ASSERT_TRUE(device.UseTls(stack_.platform().tls().ca_cert.string()));
    ASSERT_EQ(
        device.Connect(stack_.mqtts_port(), kDevice, broker::IotdaPassword(kSecret, UtcHour())), 0);
    EXPECT_FALSE(device.Publish(topic, std::string(70000, ' '))) << "the broker acknowledged it";
  }
  MqttTestClient device(std::string(kDevice) + "_0_0_" + UtcHour());
  ASSERT_TRUE(device.UseTls(stack_.platform().tls().ca_cert.string()));
  ASSERT_EQ(device.Connect(stack_.mqtts_port(), kDevice, broker::IotdaPassword(kSecret, UtcHour())),
            0);
  ASSERT_TRUE(device.Publish(topic, report));
  int64_t stored = 0;
  for (int i = 0; i < 100 && stored == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    stored = stack_.platform().registry().Counter("property_reports");
  }
  std::lock_guard<std::mutex> g(stack_.platform().lock());
  EXPECT_EQ(stored, 1) << "only the report that fits";
  EXPECT_EQ(stack_.platform().registry().Counter("rejected_oversized"), 0)
      << "the platform never saw the large one: the broker refused it";
  EXPECT_EQ(stack_.platform().registry().Counter("rejected_property_reports"), 0);
}

TEST_F(OtaE2E, DiffUpgrade_FromThePlatform_Succeeds) {
  ASSERT_TRUE(PowerOn().ok());
  const int64_t task = CreateTask(0, "FOTAV2", 0);
  ASSERT_TRUE(Run([&] { return DeviceState(task) == "Success"; }).ok()) << Task(task).dump();
  EXPECT_EQ(board_->running_version(), "FOTAV2");
  EXPECT_EQ(Task(task)["devices"][0]["package_id"], diff12_);
  EXPECT_TRUE(board_->agent().record().confirmed()) << "the new image was confirmed";
}

TEST_F(OtaE2E, EspAtModemPort_DiffUpgrade_Succeeds) {
  UseEspAtModem();
  ASSERT_TRUE(PowerOn().ok());
  const int64_t task = CreateTask(0, "FOTAV2", 0);
  ASSERT_TRUE(Run([&] { return DeviceState(task) == "Success"; }).ok()) << Task(task).dump();
  EXPECT_EQ(board_->running_version(), "FOTAV2");
  EXPECT_EQ(Task(task)["devices"][0]["package_id"], diff12_);
  EXPECT_TRUE(board_->agent().record().confirmed());
  EXPECT_GT(board_->modem_sim()->commands(), 10u) << "the traffic went through AT commands";
  std::lock_guard<std::mutex> g(stack_.platform().lock());
  EXPECT_EQ(stack_.platform().registry().GetDevice(kDevice).fw_version, "FOTAV2");
}

TEST_F(OtaE2E, EspAtModemPort_DroppedDownloadAndLostBroker_Recovers) {
  UseEspAtModem();
  ASSERT_TRUE(PowerOn().ok());
  ASSERT_TRUE(Run([&] { return board_->agent().connected(); }).ok());
  // The modem loses the broker (+MQTTDISCONNECTED): the agent sees it and connects again.
  board_->modem_sim()->DropMqtt();
  ASSERT_TRUE(Run([&] { return !board_->agent().connected(); }, 10000).ok());
  ASSERT_TRUE(Run([&] { return board_->agent().connected(); }, 20000).ok());
  // HTTP requests through the modem fail for a while (ERROR): the download stops with its
  // offset saved, and the platform's retry resumes it.
  const int64_t task = CreateTask(full2_, "", 3);
  board_->https().DropAfter(10, agent::kBlockRetries + 1);
  ASSERT_TRUE(Run([&] { return DeviceState(task) == "FailWaitRetry"; }).ok()) << Task(task).dump();
  const uint32_t offset_after_drop = board_->agent().download_offset();
  EXPECT_GE(offset_after_drop, 8 * agent::kDownloadBlock);
  ASSERT_TRUE(Run([&] { return DeviceState(task) == "Success"; }).ok()) << Task(task).dump();
  EXPECT_EQ(board_->running_version(), "FOTAV2");
}

TEST_F(OtaE2E, BrokerRestart_AgentReconnectsWithBackoff) {
  ASSERT_TRUE(PowerOn().ok());
  ASSERT_TRUE(Run([&] { return board_->agent().connected(); }).ok());
  stack_.broker().Stop(SIGTERM);  // the broker goes away ...
  ASSERT_TRUE(Run([&] { return !board_->agent().connected(); }, 10000).ok());
  // ... the agent keeps trying (backing off) while it is down ...
  const auto down = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      Run([&] { return std::chrono::steady_clock::now() - down > std::chrono::seconds(2); }, 5000)
          .ok());
  EXPECT_FALSE(board_->agent().connected());
  // ... and is back, with a version report, soon after the broker returns.
  ASSERT_TRUE(stack_.broker().Start() && WaitForPort(stack_.mqtts_port(), 5000))
      << stack_.broker().Log();
  ASSERT_TRUE(Run([&] { return board_->agent().connected(); }, 20000).ok())
      << "no reconnect within the backoff";
  std::lock_guard<std::mutex> g(stack_.platform().lock());
  EXPECT_EQ(stack_.platform().registry().GetDevice(kDevice).fw_version, "FOTAV1");
}

TEST_F(OtaE2E, DownloadDroppedThenPowerCut_ResumesFromSavedOffset) {
  ASSERT_TRUE(PowerOn().ok());
  const int64_t task = CreateTask(full2_, "", 3);
  // The connection drops after 10 blocks: the agent gives up this attempt (result 6) with
  // the offset saved; the platform will retry after its interval.
  board_->https().DropAfter(10, agent::kBlockRetries + 1);
  ASSERT_TRUE(Run([&] { return DeviceState(task) == "FailWaitRetry"; }).ok()) << Task(task).dump();
  const uint32_t offset_after_drop = board_->agent().download_offset();
  EXPECT_GE(offset_after_drop, 8 * agent::kDownloadBlock);
  // The retry resumes the download from there; the power goes a few blocks later (a block
  // is one sector erase and 16 page programs).
  board_->flash().power.Arm({6 * 17, 0, 0});
  EXPECT_EQ(Run([] { return false; }, 15000).code(), StatusCode::kPowerLost);
  // Power back: the agent reports the interrupted download, the platform retries, and the
  // download resumes from the offset saved in the boot state.
  const uint64_t bytes_before = board_->https().bytes_received();
  ASSERT_TRUE(PowerOn().ok());
  const uint32_t saved = board_->agent().download_offset();
  EXPECT_GT(saved, offset_after_drop) << "the resumed download saved its progress";
  ASSERT_TRUE(Run([&] { return DeviceState(task) == "Success"; }).ok()) << Task(task).dump();
  EXPECT_EQ(board_->running_version(), "FOTAV2");
  const auto pkg_size = static_cast<uint64_t>(stack_.platform().packages().Get(full2_).size);
  EXPECT_LT(board_->https().bytes_received() - bytes_before, pkg_size - saved + 4096)
      << "the rest was downloaded, not the whole file again";
}

TEST_F(OtaE2E, PowerCutsDuringTheLoader_PlatformShowsTheTruth) {
  std::mt19937 rng(7);
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    board_->Program({}, v1_);
    board_->flash().power.PowerOn();
    // A fresh boot state for each round.
    for (auto& b : board_->flash().external.raw())
      b = 0xFF;
    ASSERT_TRUE(PowerOn().ok());
    const int64_t task = CreateTask(full2_, "", 0);
    // Download and stage (the agent asks for the reboot), then cut the power at a random
    // operation of the loader's work.
    bool staged = false;
    for (int i = 0; i < 2000 && !staged; ++i) {
      const Result<agent::AgentEvent> e = board_->agent().Step(20);
      if (e.ok() && e.value() == agent::AgentEvent::kReboot) staged = true;
    }
    ASSERT_TRUE(staged);
    board_->flash().power.PowerOn();
    // The loader's whole install of this image is about 50,000 flash operations.
    board_->flash().power.Arm({std::uniform_int_distribution<uint64_t>(1, 50000)(rng), 0, 0});
    Result<BootDecision> d = board_->Boot();
    // After a cut the board powers on again until the loader settles.
    for (int tries = 0; !d.ok() && tries < 5; ++tries) {
      board_->flash().power.PowerOn();
      d = board_->Boot();
    }
    ASSERT_TRUE(d.ok()) << d.status().name();
    ASSERT_TRUE(d->boot_app) << "bricked";
    ASSERT_TRUE(board_->StartApp(d.value()).ok());
    ASSERT_TRUE(Run([&] {
                  const std::string st = DeviceState(task);
                  return st == "Success" || st == "Fail";
                }).ok())
        << "the task is stuck: " << Task(task).dump();
    const std::string st = DeviceState(task);
    EXPECT_EQ(st == "Success" ? "FOTAV2" : "FOTAV1", board_->running_version())
        << st << " but the board runs " << board_->running_version();
  }
}

TEST_F(OtaE2E, DiffForAnotherImage_RefusedBeforeAnythingIsErased) {
  // The board runs an image that calls itself FOTAV1 but is not the diff's source.
  const std::vector<uint8_t> other = MakeTestImage("FOTAV1", 110000, LoadAddress(), 42);
  board_->Program({}, other);
  ASSERT_TRUE(PowerOn().ok());
  // After the first boot, which recorded the factory image in the loader's trust record.
  const std::vector<uint8_t> slot_before = board_->flash().internal.raw();
  const int64_t task = CreateTask(diff12_, "", 0);
  ASSERT_TRUE(Run([&] { return DeviceState(task) == "Fail"; }).ok()) << Task(task).dump();
  const json dev = Task(task)["devices"][0];
  EXPECT_EQ(dev["result_code"], 7);
  EXPECT_NE(dev["description"].get<std::string>().find("wrong-source"), std::string::npos)
      << dev.dump();
  EXPECT_EQ(board_->running_version(), "FOTAV1");
  EXPECT_TRUE(board_->flash().internal.raw() == slot_before) << "internal flash was touched";
}

TEST_F(OtaE2E, PackageTheLoaderDoesNotTrust_RefusedWith7) {
  // Signed by a key the platform accepts for the product but the loader does not hold.
  TestKey other_key;
  stack_.platform().registry().AddProductKey("fire", host::PublicKeyPem(other_key.pkey()), false);
  const std::vector<uint8_t> v3 = Restamp(v2_, "FOTAV3");
  host::PackageSpec s = Full(v3, "FOTAV3", other_key);
  const int64_t pkg = Upload(s, "appv3c.bin", &other_key);
  ASSERT_TRUE(PowerOn().ok());
  const int64_t task = CreateTask(pkg, "", 0);
  ASSERT_TRUE(Run([&] { return DeviceState(task) == "Fail"; }).ok()) << Task(task).dump();
  const json dev = Task(task)["devices"][0];
  EXPECT_EQ(dev["result_code"], 7);
  EXPECT_NE(dev["description"].get<std::string>().find("bad-signature"), std::string::npos);
  EXPECT_EQ(board_->running_version(), "FOTAV1");
}

TEST_F(OtaE2E, SignThatDoesNotMatchTheFile_RefusedWith7) {
  ASSERT_TRUE(PowerOn().ok());
  ASSERT_TRUE(Run([&] { return board_->agent().connected(); }).ok());
  // A firmware_upgrade as the platform sends it, but with the `sign` of another file; the
  // test listens to the device's reports with the platform's identity.
  server::MqttOptions o;
  o.host = "localhost";
  o.port = stack_.mqtts_port();
  o.ca_file = stack_.platform().tls().ca_cert.string();
  o.client_id = "test-platform";
  std::ifstream(stack_.platform().platform_password_path()) >> o.password;
  std::mutex mu;
  std::vector<std::string> reports;
  server::MqttBridge bridge(o, [&](const std::string& topic, const std::string& payload) {
    std::lock_guard<std::mutex> g(mu);
    if (topic.find("/sys/events/up") != std::string::npos) reports.push_back(payload);
  });
  std::string error;
  ASSERT_TRUE(bridge.Start(5000, &error)) << error;
  json grant =
      server::DownloadGrant(stack_.platform(), stack_.service().api().download_base_url(), kDevice,
                            stack_.platform().packages().Get(full2_), std::time(nullptr) + 600);
  grant["sign"] = std::string(64, 'a');
  ASSERT_GE(bridge.Publish(server::FirmwareUpgrade(kDevice, grant)), 0);
  auto refused = [&] {
    std::lock_guard<std::mutex> g(mu);
    for (const std::string& r : reports) {
      const json p = json::parse(r)["services"][0]["paras"];
      if (p.value("result_code", 0) == 7 &&
          p.value("description", "").find("sign") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(Run(refused, 15000).ok()) << "no result 7 about the sign";
  EXPECT_EQ(board_->running_version(), "FOTAV1");
  EXPECT_EQ(board_->agent().record().status, UpgradeStatus::kIdle) << "nothing was staged";
  bridge.Stop();
}

}  // namespace
}  // namespace ota::testing
