// Campaigns at fleet scale, end to end: 200 simulated boards (ota-fleet: the real loader and
// OTA agent per board) over MQTTS and HTTPS against a real Mosquitto with the auth plugin and
// a real ota-server. A staged rollout that pauses itself on failures and is resumed; the
// platform killed with SIGKILL at seeded random moments of a campaign; the broker restarted
// mid-campaign without the platform's session. Each must end with every board on the target
// or in its documented failure, none left open, no report lost.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "fleet.hpp"
#include "mosquitto_process.hpp"
#include "mqtt_test_client.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/server/service.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

namespace ota::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::vector<std::string> Lines(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

class FleetCampaign : public ::testing::Test {
 protected:
  // The data directory, the broker and the ports; the platform itself is started by each test
  // (in this process, or as a child process it can kill).
  void SetUp() override {
    {
      server::Platform platform(dir_.path());
      token_ = platform.CreateApiToken("fleet-campaign");
      mqtts_ = FreeLoopbackPort();
      conf_ = Lines(platform.MosquittoConfig(OTA_AUTH_PLUGIN, mqtts_, 0, "127.0.0.1"));
      ca_ = platform.tls().ca_cert.string();
      std::ifstream(platform.platform_password_path()) >> platform_password_;
    }
    broker_ = std::make_unique<MosquittoProcess>(dir_.path(), conf_);
    ASSERT_TRUE(broker_->running());
    ASSERT_TRUE(WaitForPort(mqtts_, 5000));
    http_ = FreeLoopbackPort();
    downloads_ = FreeLoopbackPort();
  }

  fleet::FleetConfig Config(int boards) {
    fleet::FleetConfig c;
    c.api_url = "https://127.0.0.1:" + std::to_string(http_);
    c.token = token_;
    c.ca_file = ca_;
    c.mqtt_host = "127.0.0.1";
    c.mqtt_port = mqtts_;
    c.product_id = "fleet";
    c.boards = boards;
    c.seed = 11;
    c.ramp_s = 3;
    c.report_interval_ms = 60000;
    c.step_wait_ms = 500;
    c.progress = false;
    c.create_task = false;
    return c;
  }

  // The platform in this process.
  void StartService() {
    platform_ = std::make_unique<server::Platform>(dir_.path());
    server::ServiceOptions o;
    o.http_port = http_;
    o.download_port = downloads_;
    o.mqtt.host = "localhost";
    o.mqtt.port = mqtts_;
    o.mqtt.ca_file = ca_;
    o.mqtt.password = platform_password_;
    o.tick_ms = 200;
    service_ = std::make_unique<server::Service>(*platform_, o);
    std::string error;
    ASSERT_TRUE(service_->Start(&error)) << error;
  }

  // The boards up and connected, then a whole-product task to FOTAV2 they follow.
  void StartCampaign(fleet::Fleet& fleet, const fleet::FleetConfig& c, int boards, int retries,
                     int64_t* task) {
    fleet.Setup();
    fleet.StartBoards();
    ASSERT_TRUE(WaitConnected(fleet, boards, 60)) << fleet.connected() << " connected";
    fleet::PlatformApi api(c.api_url, token_, ca_);
    const auto created = api.Post("/api/v1/tasks", {{"product_id", "fleet"},
                                                    {"target_version", "FOTAV2"},
                                                    {"whole_product", true},
                                                    {"retry_count", retries},
                                                    {"retry_interval", 1},
                                                    {"resend_interval", 5}});
    ASSERT_EQ(created.status, 201) << created.error;
    *task = created.body["task_id"];
    fleet.SetTask(*task);
  }

  static bool WaitConnected(fleet::Fleet& f, int boards, int seconds) {
    const auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (f.connected() < boards && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return f.connected() >= boards;
  }

  // Every board's row ended as documented: Success, or Fail with the code the board reported.
  static void ExpectDocumentedEnd(const json& task) {
    for (const json& d : task["devices"]) {
      const std::string status = d["status"];
      if (status == "Success") continue;
      EXPECT_EQ(status, "Fail") << d.dump();
      const int code = d["result_code"].is_number() ? d["result_code"].get<int>() : -1;
      EXPECT_TRUE(code == 4 || code == 7)
          << "a failure other than refusal or verification: " << d.dump();
    }
  }

  TempDir dir_{"ota-fleet-campaign"};
  std::string token_, ca_, platform_password_;
  std::vector<std::string> conf_;
  int mqtts_ = 0, http_ = 0, downloads_ = 0;
  std::unique_ptr<MosquittoProcess> broker_;
  std::unique_ptr<server::Platform> platform_;
  std::unique_ptr<server::Service> service_;
};

// A canary group, then half of the fleet with a 5 % failure threshold that the injected
// failures trip, then the rest; a rate limit throughout. The task pauses itself; resumed, it
// completes with every board on FOTAV2 or failed with its reported code.
TEST_F(FleetCampaign, StagedRollout_CanaryRateLimitAutoPause_ResumedCompletes) {
  StartService();
  fleet::FleetConfig c = Config(200);
  c.start_mix = {{"FOTAV1", 90}, {"FOTAV0", 10}};
  c.refuse_pct = 8;       // result 4 (low battery), every attempt
  c.fail_verify_pct = 4;  // result 7: the package is not signed by their loader's key
  c.powercut_pct = 2;
  c.drop_pct = 2;
  c.slow_pct = 2;
  c.canary_group = "canary";
  c.canary = 10;
  c.retry_count = 1;
  c.retry_interval_s = 1;
  fleet::Fleet fleet(c);
  fleet.Setup();
  fleet.StartBoards();
  ASSERT_TRUE(WaitConnected(fleet, 200, 60)) << fleet.connected() << " connected";

  const json task_spec = {
      {"product_id", "fleet"},
      {"target_version", "FOTAV2"},
      {"whole_product", true},
      {"retry_count", 1},
      {"retry_interval", 1},
      {"resend_interval", 10},
      {"rollout",
       {{"rate_per_minute", 1200},
        {"waves",
         {{{"name", "canary"}, {"group", "canary"}, {"failure_threshold_percent", 60}},
          {{"name", "half"}, {"percent", 50}, {"failure_threshold_percent", 5}}}}}}};
  fleet::PlatformApi api(c.api_url, token_, ca_);
  const auto created = api.Post("/api/v1/tasks", task_spec);
  ASSERT_EQ(created.status, 201) << created.error;
  const int64_t task = created.body["task_id"];
  EXPECT_EQ(created.body["waves"].size(), 3u);
  fleet.SetTask(task);

  // It pauses by itself in wave 2.
  json t;
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < deadline) {
    t = api.Get("/api/v1/tasks/" + std::to_string(task) + "?devices=false").body;
    if (t.value("state", "") == "paused" || t.value("state", "") == "finished") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(t["state"], "paused") << t.dump();
  EXPECT_NE(t["pause_reason"].get<std::string>().find("wave 2 (half)"), std::string::npos)
      << t["pause_reason"];
  EXPECT_EQ(t["waves"][0]["state"], "done") << "the canaries finished first";
  EXPECT_EQ(t["waves"][2]["state"], "pending") << "the rest waits";
  // Paused: no new commands. Nothing of the rest wave moves while the task is paused.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const json still = api.Get("/api/v1/tasks/" + std::to_string(task) + "?devices=false").body;
  EXPECT_EQ(still["waves"][2]["counts"].value("Waiting", 0), still["waves"][2]["size"]);
  const auto resumed = api.Post("/api/v1/tasks/" + std::to_string(task) + "/resume", json());
  ASSERT_EQ(resumed.status, 200) << resumed.error;

  EXPECT_TRUE(fleet.WaitTask(180)) << fleet.last_task().dump();
  fleet.StopBoards();
  const json s = fleet.Summary();
  std::printf("%s\n", fleet.SummaryLine().c_str());
  EXPECT_EQ(s["result"]["stuck"], 0);
  EXPECT_EQ(s["result"]["lost"], 0);
  EXPECT_EQ(s["bricked"], 0);
  const json final_task = api.Get("/api/v1/tasks/" + std::to_string(task)).body;
  EXPECT_EQ(final_task["state"], "finished");
  ExpectDocumentedEnd(final_task);
  EXPECT_EQ(s["result"]["success"].get<int>() + s["result"]["failed"].get<int>(), 200);
  EXPECT_EQ(fleet.ExitCode(), 0);
}

// ota-server as a child process, killed with SIGKILL at seeded random moments of a
// 200-board campaign and started again on the same data and ports each time.
TEST_F(FleetCampaign, PlatformKilledAtRandomMoments_CampaignCompletesNothingLost) {
  const std::filesystem::path server_bin = OTA_SERVER_BINARY;
  ServerProcess server(server_bin,
                       {"--data", dir_.path().string(), "--http-port", std::to_string(http_),
                        "--download-port", std::to_string(downloads_), "--mqtt-host", "localhost",
                        "--mqtt-port", std::to_string(mqtts_), "--mqtt-ca", ca_},
                       dir_.path() / "server.log", http_);
  ASSERT_TRUE(server.Start()) << server.Log();
  fleet::FleetConfig c = Config(200);
  c.start_mix = {{"FOTAV1", 90}, {"FOTAV0", 10}};
  c.retry_count = 5;
  c.retry_interval_s = 1;
  fleet::Fleet fleet(c);
  int64_t task = 0;
  ASSERT_NO_FATAL_FAILURE(StartCampaign(fleet, c, 200, 5, &task));
  fleet::PlatformApi api(c.api_url, token_, ca_);

  // Kills at seeded moments over the campaign's first seconds (query round, commands,
  // downloads, reports), each followed by a restart after a seeded pause.
  std::mt19937 rng(20261129);
  std::uniform_int_distribution<int> gap_ms(300, 2500), down_ms(0, 800);
  int kills = 0;
  const auto started = Clock::now();
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms(rng)));
    // Where the campaign stands (the API answers just before the kill).
    const json at = api.Get("/api/v1/tasks/" + std::to_string(task) + "?devices=false").body;
    std::printf("kill-9: #%d at %.1f s, devices %s\n", i + 1,
                std::chrono::duration<double>(Clock::now() - started).count(),
                at.value("counts", json::object()).dump().c_str());
    server.Kill(SIGKILL);
    ++kills;
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms(rng)));
    ASSERT_TRUE(server.Start()) << server.Log();
  }
  EXPECT_TRUE(fleet.WaitTask(240)) << fleet.last_task().dump();
  fleet.StopBoards();
  const json s = fleet.Summary();
  std::printf("%s\nkill-9: kills=%d campaigns_completed=%d devices_lost=%d\n",
              fleet.SummaryLine().c_str(), kills, fleet.ExitCode() == 0 ? 1 : 0,
              s["result"]["lost"].get<int>());
  EXPECT_EQ(s["result"]["stuck"], 0);
  EXPECT_EQ(s["result"]["lost"], 0);
  EXPECT_EQ(s["result"]["success"], 200) << "every board is a plain one: all must succeed";
  const json t = api.Get("/api/v1/tasks/" + std::to_string(task)).body;
  EXPECT_EQ(t["status"], "Success") << t.dump();
  for (const json& d : t["devices"])
    EXPECT_NE(d["status"], "Processing") << d.dump();
}

// The broker restarts mid-campaign and loses every session, the platform's too: the
// platform must subscribe again (a report published after the restart is stored), and the
// campaign completes.
TEST_F(FleetCampaign, BrokerRestartMidCampaign_PlatformResubscribes_CampaignCompletes) {
  StartService();
  fleet::FleetConfig c = Config(100);
  c.retry_count = 3;
  c.retry_interval_s = 1;
  fleet::Fleet fleet(c);
  int64_t task = 0;
  ASSERT_NO_FATAL_FAILURE(StartCampaign(fleet, c, 100, 3, &task));
  fleet::PlatformApi api(c.api_url, token_, ca_);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));

  // Killed: no persistence saved; removed: not even an old one. The platform's session,
  // its subscriptions and the devices' are gone.
  broker_->Stop(SIGKILL);
  std::filesystem::remove_all(dir_.path() / "broker");
  std::filesystem::create_directories(dir_.path() / "broker");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  ASSERT_TRUE(broker_->Start());
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!service_->mqtt_connected() && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(service_->mqtt_connected());

  // A device message sent after the restart reaches the platform: it subscribed again.
  const std::string device = fleet.device_id(0);
  int64_t before = 0;
  {
    std::lock_guard<std::mutex> g(platform_->lock());
    before = platform_->registry().Counter("property_reports");
  }
  const auto reg =
      api.Post("/api/v1/devices",
               {{"product_id", "fleet"}, {"node_id", "probe"}, {"secret", "probe-secret-1"}});
  ASSERT_EQ(reg.status, 201) << reg.error;
  MqttTestClient probe("fleet_probe_0_0_" + UtcHour());
  ASSERT_TRUE(probe.UseTls(ca_));
  ASSERT_EQ(
      probe.Connect(mqtts_, "fleet_probe", broker::IotdaPassword("probe-secret-1", UtcHour())), 0);
  ASSERT_TRUE(probe.Publish(
      "$oc/devices/fleet_probe/sys/properties/report",
      R"({"services":[{"service_id":"DeviceStatus","properties":{"radioValue":42}}]})"));
  bool stored = false;
  for (int i = 0; i < 100 && !stored; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::lock_guard<std::mutex> g(platform_->lock());
    stored = platform_->registry()
                 .Properties("fleet_probe")
                 .value("DeviceStatus", json())
                 .value("radioValue", 0) == 42;
  }
  EXPECT_TRUE(stored) << "a report sent after the broker restart never reached the platform";

  EXPECT_TRUE(fleet.WaitTask(180)) << fleet.last_task().dump();
  fleet.StopBoards();
  const json s = fleet.Summary();
  std::printf("%s\n", fleet.SummaryLine().c_str());
  EXPECT_EQ(s["result"]["stuck"], 0);
  EXPECT_EQ(s["result"]["lost"], 0);
  EXPECT_EQ(s["result"]["success"], 100);
  std::lock_guard<std::mutex> g(platform_->lock());
  EXPECT_GT(platform_->registry().Counter("property_reports"), before);
  (void)device;
}

}  // namespace
}  // namespace ota::testing
