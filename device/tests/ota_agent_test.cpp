// The OTA agent's ordering and refusals against in-memory transports: what the last upgrade
// came to is reported before the version (a platform re-sends a command to a device it thinks
// is upgrading that reports its old version), survives a failed or unacknowledged publish and
// a reset at any flash operation, the image is confirmed only once the platform has the
// report, an upgrade is refused while the image is on trial, and the app's gate refuses an
// upgrade before anything is downloaded or erased.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "ota/agent/ota_agent.hpp"
#include "ota/boot_state.hpp"
#include "ota/flash_area.hpp"
#include "ota/sha256.hpp"
#include "sim/board_flash.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

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
    if (lose_ack_next > 0) {  // the broker has it, but no PUBACK comes: the session stays up
      --lose_ack_next;
      return StatusCode::kTimedOut;
    }
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
  void Disconnect() override {
    ++disconnects;
    up = false;
  }

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

  // The result codes of the upgrade_progress_reports published, in order.
  std::vector<int> Results() const {
    std::vector<int> out;
    for (const auto& [topic, payload] : published) {
      const size_t at = payload.find("\"result_code\":");
      if (at != std::string::npos) out.push_back(std::atoi(payload.c_str() + at + 14));
    }
    return out;
  }
  // How many "upgraded" outcome reports (result 0, progress 100, after the reset) went out.
  int Upgraded() const {
    int n = 0;
    for (const auto& [topic, payload] : published) {
      n += payload.find("\"description\":\"upgraded\"") != std::string::npos;
    }
    return n;
  }

  bool up = false;
  int connects = 0;
  int disconnects = 0;
  int fail_next = 0;
  int lose_ack_next = 0;
  std::vector<std::pair<std::string, std::string>> published;
  std::deque<std::string> inbox;
};

class FakeHttps final : public HttpsClient {
 public:
  // Serves `file` (an error for every request while it is empty).
  Result<size_t> GetRange(const char*, const char*, uint32_t offset, ByteSpan out,
                          uint32_t* total) override {
    ++calls;
    if (file.empty() || offset >= file.size()) return StatusCode::kIoError;
    const size_t n = std::min(out.size(), file.size() - offset);
    std::memcpy(out.data(), file.data() + offset, n);
    *total = static_cast<uint32_t>(file.size());
    return n;
  }
  int calls = 0;
  std::vector<uint8_t> file;
};

// A flash whose programs and erases fail (kIoError, nothing written) while `failing` is set:
// a write error that is not a power loss.
class FailingFlash final : public Flash {
 public:
  explicit FailingFlash(Flash& inner) : Flash(inner.geometry()), inner_(inner) {}
  bool failing = false;
  int refused = 0;

 private:
  Status DoRead(uint32_t addr, ByteSpan out) override { return inner_.Read(addr, out); }
  Status DoProgram(uint32_t addr, ConstByteSpan data) override {
    if (failing) {
      ++refused;
      return StatusCode::kIoError;
    }
    return inner_.Program(addr, data);
  }
  Status DoErase(uint32_t addr, uint32_t len) override {
    if (failing) {
      ++refused;
      return StatusCode::kIoError;
    }
    return inner_.Erase(addr, len);
  }
  Flash& inner_;
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
  // A record as the loader leaves it: after an install the image is on trial.
  void SaveRecord(UpgradeStatus status, FailReason reason = FailReason::kNone) {
    BootStore store(OpenPartition(kSimSmall, flashes_, PartitionId::kBootStateA),
                    OpenPartition(kSimSmall, flashes_, PartitionId::kBootStateB));
    BootRecord r;
    r.status = status;
    r.step = UpgradeStep::kDone;
    r.reason = reason;
    r.trial_boots_left = status == UpgradeStatus::kUpgradedOk ? 2 : 0;
    ASSERT_TRUE(store.Save(r).ok());
  }
  BootRecord LoadRecord() {
    BootStore store(OpenPartition(kSimSmall, flashes_, PartitionId::kBootStateA),
                    OpenPartition(kSimSmall, flashes_, PartitionId::kBootStateB));
    return store.Load().value();
  }
  OtaAgent& Agent(Flash* const (&flashes)[kFlashCount]) {
    config_.device_id = "fire_n1";
    config_.secret = "secret";
    config_.gate = &gate_;
    agent_ = std::make_unique<OtaAgent>(config_, kSimSmall, flashes, mqtt_, https_, clock_);
    return *agent_;
  }
  OtaAgent& Agent() { return Agent(flashes_); }
  // A reset: the session goes with it; the flash stays; a new agent starts.
  OtaAgent& Reset(const char* running_version) {
    board_.power.PowerOn();
    mqtt_.up = false;
    OtaAgent& agent = Agent();
    EXPECT_TRUE(agent.Start(running_version).ok());
    return agent;
  }
  // Steps until the agent has connected `connects` times in all (the back-off waited out).
  void StepUntilConnects(OtaAgent& agent, int connects) {
    for (int i = 0; i < 1000 && mqtt_.connects < connects; ++i) {
      clock_.now += 1000;
      ASSERT_TRUE(agent.Step(0).ok());
    }
    ASSERT_EQ(mqtt_.connects, connects);
  }
  static std::string UpgradeCommand(const std::string& version, size_t size,
                                    const std::string& sign) {
    return R"({"object_device_id":"fire_n1","services":[{"service_id":"$ota",)"
           R"("event_type":"firmware_upgrade","paras":{"version":")" +
           version + R"(","url":"https://h/x","file_size":)" + std::to_string(size) +
           R"(,"access_token":"t","sign":")" + sign + R"("}}]})";
  }
  static std::string Sha256Hex(const std::vector<uint8_t>& bytes) {
    Sha256 sha;
    Sha256Digest d;
    EXPECT_TRUE(sha.Update(ConstByteSpan(bytes.data(), bytes.size())).ok());
    EXPECT_TRUE(sha.Finish(d).ok());
    std::string hex;
    char two[3];
    for (uint8_t b : d) {
      std::snprintf(two, sizeof(two), "%02x", b);
      hex += two;
    }
    return hex;
  }
  // The outcome's report reaches the broker but no PUBACK comes back: nothing may be cleared,
  // the session is dropped, and after the back-off the report goes first again; only then is
  // the record settled (idle, the running image confirmed).
  void OutcomeNotAcknowledged(UpgradeStatus status, FailReason reason, int code) {
    SaveRecord(status, reason);
    const BootRecord before = LoadRecord();
    OtaAgent& agent = Agent();
    ASSERT_TRUE(agent.Start("FOTAV2").ok());
    mqtt_.lose_ack_next = 1;
    ASSERT_TRUE(agent.Step(0).ok()) << "a lost PUBACK is the session's problem, not the app's";
    ASSERT_EQ(mqtt_.Results(), std::vector<int>{code});
    EXPECT_FALSE(mqtt_.up) << "the session that lost the PUBACK is dropped";
    BootRecord r = LoadRecord();
    EXPECT_EQ(r.sequence, before.sequence) << "nothing saved";
    EXPECT_EQ(r.status, status);
    EXPECT_FALSE(r.confirmed());
    EXPECT_FALSE(agent.record().confirmed());
    // Not again at once: after the back-off, on a new session.
    ASSERT_TRUE(agent.Step(0).ok());
    EXPECT_EQ(mqtt_.connects, 1);
    EXPECT_EQ(mqtt_.published.size(), 1u);
    StepUntilConnects(agent, 2);
    const std::vector<std::string> events = mqtt_.Events();
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events[1], "upgrade_progress_report");
    EXPECT_EQ(mqtt_.Results()[1], code);
    EXPECT_EQ(events[2], "version_report");
    r = LoadRecord();
    EXPECT_EQ(r.status, UpgradeStatus::kIdle);
    EXPECT_TRUE(r.confirmed());
  }

  sim::BoardFlash board_{kSimSmall};
  FailingFlash failing_{board_.external};
  Flash* const flashes_[kFlashCount] = {&board_.internal, &board_.external};
  Flash* const failing_flashes_[kFlashCount] = {&board_.internal, &failing_};
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

TEST_F(AgentTest, UpgradedReportNotAcknowledged_NothingCleared_SentAgainAfterTheReconnect) {
  OutcomeNotAcknowledged(UpgradeStatus::kUpgradedOk, FailReason::kNone, kResultOk);
}

TEST_F(AgentTest, FailedOutcomeNotAcknowledged_NothingCleared_SentAgainAfterTheReconnect) {
  OutcomeNotAcknowledged(UpgradeStatus::kUpgradedFailed, FailReason::kNotConfirmed,
                         kResultInstallFailed);
}

// The platform acknowledged "upgraded", but the record that confirms the image cannot be
// written (a flash error, not a power loss): the image stays on trial, a firmware_upgrade is
// refused with result 1 before anything is touched, the save is tried again, and once it
// went through an upgrade is taken.
TEST_F(AgentTest, ConfirmNotSaved_OnTrialAnUpgradeIsRefusedBusy_AfterTheConfirmAccepted) {
  SaveRecord(UpgradeStatus::kUpgradedOk);
  const BootRecord before = LoadRecord();
  OtaAgent& agent = Agent(failing_flashes_);
  ASSERT_TRUE(agent.Start("FOTAV2").ok());
  failing_.failing = true;
  const Result<AgentEvent> first = agent.Step(0);
  EXPECT_EQ(first.status().code(), StatusCode::kIoError) << "the app hears of the flash error";
  EXPECT_EQ(mqtt_.Upgraded(), 1);
  EXPECT_EQ(LoadRecord().sequence, before.sequence);
  EXPECT_FALSE(agent.record().confirmed());

  // A second firmware_upgrade during the trial: result 1, nothing fetched, erased or saved.
  const std::string cmd = UpgradeCommand("FOTAV3", 1000, std::string(64, 'a'));
  gate_.asked = 0;
  board_.ResetCounters();
  failing_.refused = 0;
  mqtt_.published.clear();
  mqtt_.inbox.push_back(cmd);
  const Result<AgentEvent> e = agent.Step(0);
  ASSERT_TRUE(e.ok()) << e.status().name();
  EXPECT_EQ(e.value(), AgentEvent::kNone);
  EXPECT_EQ(mqtt_.Results(), std::vector<int>{kResultBusy});
  EXPECT_EQ(kResultBusy, 1);
  EXPECT_EQ(https_.calls, 0) << "nothing downloaded";
  EXPECT_EQ(gate_.asked, 0) << "refused before the app is asked";
  EXPECT_EQ(failing_.refused, 0) << "no write even tried";
  EXPECT_EQ(board_.counters().erase_ops, 0u);
  EXPECT_EQ(board_.counters().program_ops, 0u);
  BootRecord r = LoadRecord();
  EXPECT_EQ(r.sequence, before.sequence) << "the boot record is not changed";
  EXPECT_EQ(r.status, UpgradeStatus::kUpgradedOk);
  EXPECT_EQ(r.trial_boots_left, before.trial_boots_left);

  // The flash works again: the confirm is saved at the next try, without a second report.
  failing_.failing = false;
  clock_.now += kSettleRetryMs;
  ASSERT_TRUE(agent.Step(0).ok());
  r = LoadRecord();
  EXPECT_EQ(r.status, UpgradeStatus::kIdle);
  EXPECT_TRUE(r.confirmed());
  EXPECT_EQ(mqtt_.Upgraded(), 0) << "reported once, acknowledged once";

  // Now an upgrade is taken: the download starts (and fails here: result 6, resumable).
  mqtt_.published.clear();
  mqtt_.inbox.push_back(cmd);
  ASSERT_TRUE(agent.Step(0).ok());
  EXPECT_GT(https_.calls, 0);
  EXPECT_EQ(mqtt_.Results().back(), kResultDownloadTimeout);
  r = LoadRecord();
  EXPECT_EQ(r.status, UpgradeStatus::kDownloading);
  EXPECT_TRUE(r.confirmed()) << "the running image is still the confirmed one";
}

// What the loader will rely on: a record the agent writes while the running image is
// confirmed keeps the flag, through the download up to the staged package.
TEST_F(AgentTest, StagedAfterTheConfirm_TheStagedRecordKeepsTheConfirmedFlag) {
  const testing::TestKey key;
  const TrustedKey keys[] = {key.trusted()};
  config_.keys = Span<const TrustedKey>(keys);
  const uint32_t load = kSimSmall.internal_base + kSimSmall.partition(PartitionId::kRunning).offset;
  host::PackageSpec spec;
  spec.version = "FOTAV3";
  spec.image = testing::MakeTestImage("FOTAV3", 12000, load, 3);
  spec.profile = &kSimSmall;
  https_.file = testing::MakePackage(spec, &key);

  SaveRecord(UpgradeStatus::kUpgradedOk);
  OtaAgent& agent = Agent();
  ASSERT_TRUE(agent.Start("FOTAV2").ok());
  ASSERT_TRUE(agent.Step(0).ok());
  ASSERT_TRUE(LoadRecord().confirmed());

  mqtt_.inbox.push_back(UpgradeCommand("FOTAV3", https_.file.size(), Sha256Hex(https_.file)));
  const Result<AgentEvent> e = agent.Step(0);
  ASSERT_TRUE(e.ok()) << e.status().name();
  ASSERT_EQ(e.value(), AgentEvent::kReboot) << mqtt_.published.back().second;
  const BootRecord r = LoadRecord();
  EXPECT_EQ(r.status, UpgradeStatus::kDownloaded);
  EXPECT_EQ(r.download_offset, https_.file.size());
  EXPECT_TRUE(r.confirmed()) << "staged over a confirmed image";
}

// Power cut right after the platform acknowledged "upgraded", before the record is saved: the
// image is still on trial after the reset, so the report goes again (the platform sees it
// twice, and takes the second as a report on an attempt that has already ended) and the
// record is saved then. After the save, a reset reports nothing again.
TEST_F(AgentTest, PowerCutBetweenTheAckAndTheSave_ReportedAgainAfterTheReset_ThenNeverAgain) {
  SaveRecord(UpgradeStatus::kUpgradedOk);
  const BootRecord before = LoadRecord();
  OtaAgent* agent = &Agent();
  ASSERT_TRUE(agent->Start("FOTAV2").ok());
  board_.power.Arm(sim::FaultPlan{1, 0, 0});  // the save's first flash operation
  const Result<AgentEvent> cut = agent->Step(0);
  EXPECT_EQ(cut.status().code(), StatusCode::kPowerLost);
  EXPECT_EQ(mqtt_.Upgraded(), 1);
  board_.power.PowerOn();  // to read the flash as the next boot finds it
  EXPECT_EQ(LoadRecord().sequence, before.sequence);
  EXPECT_FALSE(LoadRecord().confirmed());

  agent = &Reset("FOTAV2");
  ASSERT_TRUE(agent->Step(0).ok());
  EXPECT_EQ(mqtt_.Upgraded(), 2);
  BootRecord r = LoadRecord();
  EXPECT_EQ(r.status, UpgradeStatus::kIdle);
  EXPECT_TRUE(r.confirmed());

  const size_t published = mqtt_.published.size();
  agent = &Reset("FOTAV2");
  ASSERT_TRUE(agent->Step(0).ok());
  EXPECT_EQ(mqtt_.Upgraded(), 2) << "settled: not reported again";
  ASSERT_GT(mqtt_.published.size(), published);
  EXPECT_EQ(mqtt_.Events()[published], "version_report");
  EXPECT_EQ(LoadRecord().sequence, r.sequence) << "nothing saved at this boot";
}

// The same at every flash operation of the settling save, cut before it or torn, with the
// store's current copy full so that the save also erases the other copy: after resets until
// the agent gets through, the record is idle and confirmed, "upgraded" went out at least once
// per boot that did not get through, and the image was never confirmed before an ack.
TEST_F(AgentTest, PowerCutOrTearAtEveryOperationOfTheSettle_EndsConfirmedAndReported) {
  // A full copy A: the settle switches copies (erase B, program B's first slot).
  for (uint32_t i = 0; i + 1 < 32; ++i)
    SaveRecord(UpgradeStatus::kIdle);
  SaveRecord(UpgradeStatus::kUpgradedOk);
  const std::vector<uint8_t> start = board_.external.raw();
  // The clean run counts the operations.
  {
    OtaAgent& agent = Agent();
    ASSERT_TRUE(agent.Start("FOTAV2").ok());
    board_.power.Arm(sim::FaultPlan{});
    ASSERT_TRUE(agent.Step(0).ok());
    ASSERT_TRUE(LoadRecord().confirmed());
  }
  const uint64_t ops = board_.power.ops_since_arm();
  ASSERT_GE(ops, 2u) << "an erase and a program";
  for (uint64_t n = 1; n <= ops; ++n) {
    for (const bool tear : {false, true}) {
      SCOPED_TRACE((tear ? "tear " : "cut before ") + std::to_string(n));
      board_.external.raw() = start;
      mqtt_.published.clear();
      mqtt_.up = false;
      board_.power.PowerOn();
      OtaAgent* agent = &Agent();
      ASSERT_TRUE(agent->Start("FOTAV2").ok());
      board_.power.Arm(tear ? sim::FaultPlan{0, n, 7} : sim::FaultPlan{n, 0, 0});
      const Result<AgentEvent> first = agent->Step(0);
      ASSERT_EQ(first.status().code(), StatusCode::kPowerLost);
      EXPECT_EQ(mqtt_.Upgraded(), 1);
      board_.power.PowerOn();  // to read the flash as the next boot finds it
      // Either still on trial (reported again at the next boot) or settled; nothing between.
      const auto on_trial = [](const BootRecord& r) {
        return r.status == UpgradeStatus::kUpgradedOk && !r.confirmed();
      };
      const auto settled = [](const BootRecord& r) {
        return r.status == UpgradeStatus::kIdle && r.confirmed();
      };
      BootRecord r = LoadRecord();
      ASSERT_TRUE(on_trial(r)) << "a cut save leaves the record it replaces";
      for (int boot = 0; boot < 3 && !settled(r); ++boot) {
        agent = &Reset("FOTAV2");
        ASSERT_TRUE(agent->Step(0).ok());
        r = LoadRecord();
        ASSERT_TRUE(on_trial(r) || settled(r));
      }
      EXPECT_TRUE(settled(r));
      EXPECT_EQ(mqtt_.Upgraded(), 2) << "once at the cut boot, once at the one that saved it";
    }
  }
}

}  // namespace
}  // namespace ota::agent
