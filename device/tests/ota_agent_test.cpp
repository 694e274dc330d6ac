// The OTA agent's ordering and refusals against in-memory transports: what the last upgrade
// came to is reported before the version (a platform re-sends a command to a device it thinks
// is upgrading that reports its old version), survives a failed publish, and the app's gate
// refuses an upgrade before anything is downloaded or erased.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "ota/agent/ota_agent.hpp"
#include "ota/boot_state.hpp"
#include "ota/flash_area.hpp"
#include "sim/board_flash.hpp"

namespace ota::agent {
namespace {

class FakeMqtt final : public MqttClient {
 public:
  Status Connect(const char*, const char*, const char*) override {
    ++connects;
    up = true;
    return Status::Ok();
  }
  bool connected() const override { return up; }
  Status Subscribe(const char*) override { return up ? Status::Ok() : StatusCode::kIoError; }
  Status Publish(const char* topic, ConstByteSpan payload) override {
    if (!up) return StatusCode::kFailedPrecondition;
    if (fail_next > 0) {  // the session dies under this publish
      --fail_next;
      up = false;
      return StatusCode::kIoError;
    }
    published.emplace_back(
        topic, std::string(reinterpret_cast<const char*>(payload.data()), payload.size()));
    return Status::Ok();
  }
  Result<size_t> Receive(uint32_t, Span<char> topic, ByteSpan payload) override {
    if (inbox.empty()) return StatusCode::kNotFound;
    const std::string p = inbox.front();
    inbox.pop_front();
    std::strcpy(topic.data(), "$oc/devices/fire_n1/sys/events/down");
    std::memcpy(payload.data(), p.data(), p.size());
    return p.size();
  }
  void Disconnect() override { up = false; }

  // The $ota event types published, in order ("properties" for a properties report).
  std::vector<std::string> Events() const {
    std::vector<std::string> out;
    for (const auto& [topic, payload] : published) {
      const size_t at = payload.find("\"event_type\":\"");
      out.push_back(at == std::string::npos
                        ? "properties"
                        : payload.substr(at + 14, payload.find('"', at + 14) - at - 14));
    }
    return out;
  }

  bool up = false;
  int connects = 0;
  int fail_next = 0;
  std::vector<std::pair<std::string, std::string>> published;
  std::deque<std::string> inbox;
};

class FakeHttps final : public HttpsClient {
 public:
  Result<size_t> GetRange(const char*, const char*, uint32_t, ByteSpan, uint32_t*) override {
    ++calls;
    return StatusCode::kIoError;
  }
  int calls = 0;
};

class FakeClock final : public Clock {
 public:
  uint64_t NowMs() override { return now += 10; }
  void UtcHour(char (&out)[11]) override { std::strcpy(out, "2026112910"); }
  uint64_t now = 100000;
};

class Gate final : public UpgradeGate {
 public:
  int Allow(const char*, uint32_t) override {
    ++asked;
    return answer;
  }
  int answer = 0;
  int asked = 0;
};

class AgentTest : public ::testing::Test {
 protected:
  void SaveRecord(UpgradeStatus status, FailReason reason = FailReason::kNone) {
    BootStore store(OpenPartition(kSimSmall, flashes_, PartitionId::kBootStateA),
                    OpenPartition(kSimSmall, flashes_, PartitionId::kBootStateB));
    BootRecord r;
    r.status = status;
    r.reason = reason;
    ASSERT_TRUE(store.Save(r).ok());
  }
  BootRecord LoadRecord() {
    BootStore store(OpenPartition(kSimSmall, flashes_, PartitionId::kBootStateA),
                    OpenPartition(kSimSmall, flashes_, PartitionId::kBootStateB));
    return store.Load().value();
  }
  OtaAgent& Agent() {
    config_.device_id = "fire_n1";
    config_.secret = "secret";
    config_.gate = &gate_;
    agent_ = std::make_unique<OtaAgent>(config_, kSimSmall, flashes_, mqtt_, https_, clock_);
    return *agent_;
  }

  sim::BoardFlash board_{kSimSmall};
  Flash* const flashes_[kFlashCount] = {&board_.internal, &board_.external};
  FakeMqtt mqtt_;
  FakeHttps https_;
  FakeClock clock_;
  Gate gate_;
  AgentConfig config_;
  std::unique_ptr<OtaAgent> agent_;
};

TEST_F(AgentTest, AfterAnUpgrade_OutcomeGoesBeforeTheVersionReport_ThenConfirmed) {
  SaveRecord(UpgradeStatus::kUpgradedOk);
  OtaAgent& agent = Agent();
  ASSERT_TRUE(agent.Start("FOTAV2").ok());
  ASSERT_TRUE(agent.Step(0).ok());
  const std::vector<std::string> events = mqtt_.Events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0], "upgrade_progress_report");
  EXPECT_NE(mqtt_.published[0].second.find("\"result_code\":0"), std::string::npos);
  EXPECT_EQ(events[1], "version_report");
  const BootRecord r = LoadRecord();
  EXPECT_EQ(r.status, UpgradeStatus::kIdle);
  EXPECT_TRUE(r.confirmed());
}

TEST_F(AgentTest, OutcomePublishFails_ReportedAfterTheReconnect_ConfirmedOnlyThen) {
  SaveRecord(UpgradeStatus::kUpgradedFailed, FailReason::kBadSignature);
  OtaAgent& agent = Agent();
  ASSERT_TRUE(agent.Start("FOTAV1").ok());
  mqtt_.fail_next = 1;  // the outcome's publish dies with the session
  ASSERT_TRUE(agent.Step(0).ok());
  EXPECT_TRUE(mqtt_.published.empty());
  EXPECT_EQ(LoadRecord().status, UpgradeStatus::kUpgradedFailed) << "still to be reported";
  // Back after the back-off: the outcome first, then the version.
  for (int i = 0; i < 1000 && mqtt_.connects < 2; ++i) {
    clock_.now += 1000;
    ASSERT_TRUE(agent.Step(0).ok());
  }
  ASSERT_EQ(mqtt_.connects, 2);
  const std::vector<std::string> events = mqtt_.Events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0], "upgrade_progress_report");
  EXPECT_NE(mqtt_.published[0].second.find("\"result_code\":7"), std::string::npos)
      << mqtt_.published[0].second;
  EXPECT_EQ(events[1], "version_report");
  EXPECT_EQ(LoadRecord().status, UpgradeStatus::kIdle);
}

TEST_F(AgentTest, GateRefuses_ResultFourBeforeAnyDownloadOrErase) {
  OtaAgent& agent = Agent();
  ASSERT_TRUE(agent.Start("FOTAV1").ok());
  ASSERT_TRUE(agent.Step(0).ok());
  gate_.answer = kResultLowBattery;
  mqtt_.published.clear();
  board_.ResetCounters();
  mqtt_.inbox.push_back(
      R"({"object_device_id":"fire_n1","services":[{"service_id":"$ota",)"
      R"("event_type":"firmware_upgrade","paras":{"version":"FOTAV2","url":"https://h/x",)"
      R"("file_size":1000,"access_token":"t","sign":")" +
      std::string(64, 'a') + R"("}}]})");
  const Result<AgentEvent> e = agent.Step(0);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.value(), AgentEvent::kNone);
  EXPECT_EQ(gate_.asked, 1);
  EXPECT_EQ(https_.calls, 0) << "nothing downloaded";
  EXPECT_EQ(board_.counters().erase_ops, 0u) << "nothing erased";
  EXPECT_EQ(board_.counters().program_ops, 0u) << "nothing written";
  ASSERT_EQ(mqtt_.Events().size(), 1u);
  EXPECT_NE(mqtt_.published[0].second.find("\"result_code\":4"), std::string::npos)
      << mqtt_.published[0].second;
  EXPECT_EQ(LoadRecord().status, UpgradeStatus::kIdle);
}

}  // namespace
}  // namespace ota::agent
