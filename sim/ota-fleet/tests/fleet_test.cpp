// ota-fleet against a real Mosquitto (auth plugin, MQTTS) and the platform in this process:
// 20 boards, a few refusing, one losing power mid-download, one dropping its sessions, through
// a whole-product task to the end.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "fleet.hpp"
#include "mosquitto_process.hpp"
#include "ota/server/service.hpp"
#include "temp_dir.hpp"

namespace ota::testing {
namespace {

using nlohmann::json;

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    platform_ = std::make_unique<server::Platform>(dir_.path());
    token_ = platform_->CreateApiToken("fleet-test");
    mqtts_ = FreeLoopbackPort();
    std::istringstream lines(platform_->MosquittoConfig(OTA_AUTH_PLUGIN, mqtts_, 0, "127.0.0.1"));
    std::vector<std::string> conf;
    for (std::string line; std::getline(lines, line);)
      conf.push_back(line);
    broker_ = std::make_unique<MosquittoProcess>(dir_.path(), conf);
    ASSERT_TRUE(broker_->running());
    ASSERT_TRUE(WaitForPort(mqtts_, 5000));

    server::ServiceOptions o;
    o.http_port = 0;
    o.mqtt.host = "localhost";
    o.mqtt.port = mqtts_;
    o.mqtt.ca_file = platform_->tls().ca_cert.string();
    std::ifstream(platform_->platform_password_path()) >> o.mqtt.password;
    o.tick_ms = 200;
    service_ = std::make_unique<server::Service>(*platform_, o);
    std::string error;
    ASSERT_TRUE(service_->Start(&error)) << error;
  }
  void TearDown() override {
    service_.reset();
    broker_.reset();
  }

  fleet::FleetConfig Config(int boards) {
    fleet::FleetConfig c;
    c.api_url = "https://127.0.0.1:" + std::to_string(service_->http_port());
    c.token = token_;
    c.ca_file = platform_->tls().ca_cert.string();
    c.mqtt_host = "127.0.0.1";
    c.mqtt_port = mqtts_;
    c.product_id = "fleet";
    c.boards = boards;
    c.seed = 7;
    c.ramp_s = 2;
    c.retry_count = 3;
    c.retry_interval_s = 1;
    c.report_interval_ms = 60000;
    c.step_wait_ms = 500;
    c.progress = false;
    return c;
  }

  TempDir dir_{"ota-fleet"};
  std::unique_ptr<server::Platform> platform_;
  std::string token_;
  int mqtts_ = 0;
  std::unique_ptr<MosquittoProcess> broker_;
  std::unique_ptr<server::Service> service_;
};

TEST_F(FleetTest, TwentyBoards_MixedBehaviour_CampaignEndsWithNothingStuckOrLost) {
  fleet::FleetConfig c = Config(20);
  c.start_mix = {{"FOTAV1", 80}, {"FOTAV0", 20}};  // 16 get the diff, 4 the full package
  c.refuse_pct = 15;                               // 3 boards refuse (result 4)
  c.powercut_pct = 5;                              // 1 loses power mid-download
  c.drop_pct = 5;                                  // 1 drops its sessions and requests
  c.drop_mean_ms = 4000;
  fleet::Fleet fleet(c);
  fleet.Setup();
  fleet.StartBoards();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (fleet.connected() < 20 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_GE(fleet.connected(), 19) << "the connect storm did not settle";
  ASSERT_NE(fleet.CreateTask(), 0);
  EXPECT_TRUE(fleet.WaitTask(45)) << fleet.last_task().dump();
  fleet.StopBoards();
  const json s = fleet.Summary();
  std::printf("%s\n%s\n", s.dump(2).c_str(), fleet.SummaryLine().c_str());
  EXPECT_EQ(s["mix"]["refuse"], 3);
  EXPECT_EQ(s["mix"]["powercut"], 1);
  EXPECT_EQ(s["mix"]["drop"], 1);
  EXPECT_EQ(s["result"]["stuck"], 0);
  EXPECT_EQ(s["result"]["lost"], 0);
  EXPECT_EQ(s["result"]["success"], 17);
  EXPECT_EQ(s["result"]["failed"], 3) << "the refusing boards";
  EXPECT_EQ(s["power_cuts"], 1);
  EXPECT_GE(s["boots"].get<int>(), 20 + 17 + 1) << "a reboot per upgrade, one after the cut";
  EXPECT_EQ(s["bricked"], 0);
  EXPECT_EQ(fleet.ExitCode(), 0);
  EXPECT_NE(fleet.SummaryLine().find("fleet: boards=20 success=17 failed=3 stuck=0 lost=0"),
            std::string::npos)
      << fleet.SummaryLine();
  // Refusals arrive as result 4 (low battery) on the platform.
  for (const json& d : fleet.last_task()["devices"]) {
    if (d["status"] == "Fail") {
      EXPECT_EQ(d["result_code"], 4) << d.dump();
    }
  }
}

}  // namespace
}  // namespace ota::testing
