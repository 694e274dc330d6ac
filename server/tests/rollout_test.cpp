// The upgrade-task engine on its own (no broker, no network): staged rollouts (waves, rate
// limit, failure threshold, pause / resume), one open upgrade per device, commands that are
// re-sent until the device answers, the outbox, UTF-8 from devices, and download revocation.
// Time is passed in, so every rule is checked at its exact second.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ota/host/keys.hpp"
#include "ota/image.hpp"
#include "ota/server/http_api.hpp"
#include "ota/server/platform.hpp"
#include "ota/server/upgrade_tasks.hpp"
#include "temp_dir.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;

constexpr int64_t kT0 = 1'700'000'000;

class Rollout : public ::testing::Test {
 protected:
  void SetUp() override {
    platform_ = std::make_unique<Platform>(dir_.path());
    Registry& reg = platform_->registry();
    reg.CreateProduct("fire", "FIRE", "", "MQTT", json());
    reg.AddProductKey("fire", host::PublicKeyPem(key_.pkey()), false);
    const BoardProfile& board = kStm32f429Fire;
    const uint32_t load = board.internal_base + board.partition(PartitionId::kRunning).offset;
    const auto v1 = testing::MakeTestImage("FOTAV1", 8000, load, 1);
    const auto v2 = testing::MakeTestImage("FOTAV2", 8000, load, 2);
    host::PackageSpec full;
    full.version = "FOTAV2";
    full.image = v2;
    full_id_ =
        platform_->packages().Upload("fire", testing::MakePackage(full, &key_), "f.bin").package_id;
    host::PackageSpec diff = full;
    diff.kind = PackageKind::kDiff;
    diff.from_version = "FOTAV1";
    diff.source = v1;
    diff_id_ =
        platform_->packages().Upload("fire", testing::MakePackage(diff, &key_), "d.bin").package_id;
    tasks_ = std::make_unique<UpgradeTasks>(
        platform_->db(), reg, platform_->packages(), platform_->outbox(),
        [this](const std::string& device, const PackageRecord& p, int64_t expires, int64_t task) {
          return DownloadGrant(*platform_, "https://127.0.0.1:1", device, p, expires, task);
        });
  }

  void Devices(int n, const std::string& group = "", int first = 0) {
    for (int i = first; i < first + n; ++i) {
      const std::string node = "n" + std::to_string(1000 + i);
      platform_->registry().CreateDevice("fire", node, "", "secret-" + node);
      if (!group.empty()) platform_->registry().AddToGroup("fire_" + node, group);
    }
  }
  static std::string Id(int i) { return "fire_n" + std::to_string(1000 + i); }

  TaskSpec Spec() {
    TaskSpec s;
    s.product_id = "fire";
    s.target_version = "FOTAV2";
    s.whole_product = true;
    return s;
  }

  // Message types by device in `out`.
  static std::map<std::string, std::vector<std::string>> Kinds(
      const std::vector<QueuedMessage>& out) {
    std::map<std::string, std::vector<std::string>> m;
    for (const QueuedMessage& q : out) {
      const json env = json::parse(q.message.payload);
      m[env["object_device_id"]].push_back(env["services"][0]["event_type"]);
    }
    return m;
  }
  static size_t Count(const std::vector<QueuedMessage>& out, const std::string& type) {
    size_t n = 0;
    for (const auto& [device, kinds] : Kinds(out))
      n += static_cast<size_t>(std::count(kinds.begin(), kinds.end(), type));
    return n;
  }

  std::string Status(int64_t task, const std::string& device) {
    const json t = tasks_->Get(task);
    for (const json& d : t["devices"]) {
      if (d["device_id"] == device) return d["status"];
    }
    return "(none)";
  }

  std::vector<QueuedMessage> Report(const std::string& device, const std::string& fw, int64_t now) {
    return tasks_->OnVersionReport(device, fw, "SOTAV1", now);
  }
  void Progress(const std::string& device, int code, const std::string& version, int64_t now,
                const std::string& text = "") {
    tasks_->OnProgress(device, {{"result_code", code}, {"version", version}, {"description", text}},
                       now);
  }

  testing::TempDir dir_{"ota-rollout"};
  testing::TestKey key_;
  std::unique_ptr<Platform> platform_;
  std::unique_ptr<UpgradeTasks> tasks_;
  int64_t full_id_ = 0, diff_id_ = 0;
};

TEST_F(Rollout, Waves_CanaryGroupFirstThenPercentThenTheRest) {
  Devices(2, "canary");
  Devices(8, "", 2);
  TaskSpec s = Spec();
  s.rollout.waves = {{"canary", "canary", 0, {}, -1}, {"half", "", 50, {}, -1}};
  const int64_t task = tasks_->Create(s, kT0);
  json t = tasks_->Get(task, false);
  ASSERT_EQ(t["waves"].size(), 3u);
  EXPECT_EQ(t["waves"][0]["name"], "canary");
  EXPECT_EQ(t["waves"][0]["size"], 2);
  EXPECT_EQ(t["waves"][1]["size"], 5) << "50 % of all 10 targets";
  EXPECT_EQ(t["waves"][2]["name"], "rest");
  EXPECT_EQ(t["waves"][2]["size"], 3);

  std::string second;  // a device of wave 2
  const json all = tasks_->Get(task);
  for (const json& d : all["devices"]) {
    if (d["wave"] == 1 && second.empty()) second = d["device_id"];
  }
  // Only the canaries are asked; the others' reports are noted, not acted on.
  auto out = tasks_->Tick(kT0);
  EXPECT_EQ(Kinds(out).size(), 2u);
  EXPECT_EQ(Kinds(out).count(Id(0)), 1u);
  EXPECT_EQ(Kinds(out).count(Id(1)), 1u);
  EXPECT_TRUE(Report(second, "FOTAV1", kT0).empty()) << "wave 2 must wait for the canaries";
  for (int i : {0, 1}) {
    out = Report(Id(i), "FOTAV1", kT0 + 1);
    ASSERT_EQ(Count(out, "firmware_upgrade"), 1u);
    const json paras = json::parse(out[0].message.payload)["services"][0]["paras"];
    EXPECT_EQ(paras["file_size"], platform_->packages().Get(diff_id_).size) << "diff from FOTAV1";
  }
  EXPECT_TRUE(tasks_->Tick(kT0 + 2).empty()) << "the canaries are still upgrading";
  Progress(Id(0), 0, "FOTAV2", kT0 + 3);
  EXPECT_TRUE(tasks_->Tick(kT0 + 3).empty());
  Progress(Id(1), 0, "FOTAV2", kT0 + 4);
  t = tasks_->Get(task, false);
  EXPECT_EQ(t["waves"][0]["state"], "done");
  EXPECT_EQ(t["waves"][1]["state"], "active");
  // Wave 2 starts; the device that reported a minute ago is commanded without a query.
  out = tasks_->Tick(kT0 + 5);
  EXPECT_EQ(Kinds(out).size(), 5u);
  EXPECT_EQ(Count(out, "firmware_upgrade"), 1u);
  EXPECT_EQ(Count(out, "version_query"), 4u);
  {
    std::lock_guard<std::mutex> g(platform_->lock());
    EXPECT_EQ(platform_->registry().GetDevice(Id(0)).fw_version, "FOTAV2")
        << "a success report updates the stored version";
  }
}

TEST_F(Rollout, FailureThreshold_PausesTheTask_ResumeGoesOn) {
  Devices(4, "canary");
  Devices(4, "", 4);
  TaskSpec s = Spec();
  s.rollout.waves = {{"canary", "canary", 0, {}, 25}};
  const int64_t task = tasks_->Create(s, kT0);
  tasks_->Tick(kT0);
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(Count(Report(Id(i), "FOTAV1", kT0 + 1), "firmware_upgrade"), 1u);
  Progress(Id(0), 7, "FOTAV1", kT0 + 2, "verify failed");
  EXPECT_EQ(tasks_->Get(task, false)["state"], "running") << "1 of 4 is not over 25 %";
  Progress(Id(1), 4, "FOTAV1", kT0 + 3, "low battery");
  json t = tasks_->Get(task, false);
  EXPECT_EQ(t["state"], "paused");
  EXPECT_NE(t["pause_reason"].get<std::string>().find("2 of 4"), std::string::npos)
      << t["pause_reason"];
  // Paused: devices upgrading finish, nothing new starts.
  Progress(Id(2), 0, "FOTAV2", kT0 + 4);
  Progress(Id(3), 0, "FOTAV2", kT0 + 4);
  EXPECT_TRUE(tasks_->Tick(kT0 + 5).empty());
  EXPECT_TRUE(Report(Id(6), "FOTAV1", kT0 + 5).empty());
  EXPECT_EQ(Status(task, Id(6)), "Waiting");
  tasks_->Resume(task, kT0 + 6);
  EXPECT_EQ(tasks_->Get(task, false)["state"], "running");
  EXPECT_TRUE(tasks_->Get(task, false)["waves"][0]["threshold_waived"]);
  auto out = tasks_->Tick(kT0 + 6);
  EXPECT_EQ(Kinds(out).size(), 4u) << "the rest wave starts";
  EXPECT_EQ(Count(out, "firmware_upgrade"), 1u) << "device 6 reported a second ago";
  // Operator pause and its errors.
  tasks_->Pause(task, "maintenance window", kT0 + 7);
  EXPECT_EQ(tasks_->Get(task, false)["pause_reason"], "maintenance window");
  tasks_->Resume(task, kT0 + 8);
  tasks_->Stop(task, kT0 + 9);
  EXPECT_THROW(tasks_->Pause(task, "", kT0 + 10), ApiError);
  EXPECT_THROW(tasks_->Stop(task, kT0 + 10), ApiError);
}

TEST_F(Rollout, RateLimit_CommandsPerMinute) {
  Devices(10);
  TaskSpec s = Spec();
  s.rollout.rate_per_minute = 3;
  const int64_t task = tasks_->Create(s, kT0);
  tasks_->Tick(kT0);
  size_t commands = 0;
  for (int i = 0; i < 10; ++i)
    commands += Count(Report(Id(i), "FOTAV1", kT0 + 1), "firmware_upgrade");
  EXPECT_EQ(commands, 3u);
  EXPECT_EQ(Count(tasks_->Tick(kT0 + 30), "firmware_upgrade"), 0u);
  // Three more; the first three are due for a re-send too, but a re-send is a command and
  // waits for the budget like any other.
  EXPECT_EQ(Count(tasks_->Tick(kT0 + 62), "firmware_upgrade"), 3u);
  EXPECT_EQ(Count(tasks_->Tick(kT0 + 63), "firmware_upgrade"), 0u);
  EXPECT_EQ(tasks_->Get(task, false)["counts"]["Processing"], 6);
}

TEST_F(Rollout, OneOpenUpgradePerDevice_RefusedOrSuperseded) {
  Devices(3);
  TaskSpec first = Spec();
  first.devices = {Id(0), Id(1)};
  first.whole_product = false;
  const int64_t t1 = tasks_->Create(first, kT0);
  try {
    tasks_->Create(Spec(), kT0 + 1);
    FAIL() << "an overlapping task was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 409);
    EXPECT_NE(std::string(e.what()).find("open task " + std::to_string(t1)), std::string::npos)
        << e.what();
  }
  TaskSpec second = Spec();
  second.supersede = true;
  const int64_t t2 = tasks_->Create(second, kT0 + 2);
  EXPECT_EQ(Status(t1, Id(0)), "Stopped");
  EXPECT_EQ(Status(t2, Id(0)), "Waiting");
  // Reports go to the one open row only.
  tasks_->Tick(kT0 + 3);
  EXPECT_EQ(Count(Report(Id(0), "FOTAV1", kT0 + 4), "firmware_upgrade"), 1u);
  Progress(Id(0), 0, "FOTAV2", kT0 + 5);
  EXPECT_EQ(Status(t2, Id(0)), "Success");
  EXPECT_EQ(Status(t1, Id(0)), "Stopped");
  // A task that finished is not an open upgrade any more.
  TaskSpec third = Spec();
  third.devices = {Id(0)};
  third.whole_product = false;
  EXPECT_NO_THROW(tasks_->Create(third, kT0 + 6));
}

TEST_F(Rollout, LostCommand_ResentOnTimerOldVersionAndReconnect) {
  Devices(1);
  TaskSpec s = Spec();
  s.resend_interval = 30;
  const int64_t task = tasks_->Create(s, kT0);
  tasks_->Tick(kT0);
  auto out = Report(Id(0), "FOTAV1", kT0 + 1);
  ASSERT_EQ(Count(out, "firmware_upgrade"), 1u);
  // Nothing from the device: re-sent after resend_interval, not before.
  EXPECT_TRUE(tasks_->Tick(kT0 + 30).empty());
  out = tasks_->Tick(kT0 + 31);
  ASSERT_EQ(Count(out, "firmware_upgrade"), 1u);
  // A report of the old version right after a command crossed it: no duplicate ...
  EXPECT_TRUE(Report(Id(0), "FOTAV1", kT0 + 32).empty());
  // ... later it means the command was lost.
  EXPECT_EQ(Count(Report(Id(0), "FOTAV1", kT0 + 31 + kMinResendGap), "firmware_upgrade"), 1u);
  // The broker says it is back: re-sent once the gap has passed, and only after the device
  // had time to subscribe (nothing leaves before).
  EXPECT_TRUE(tasks_->OnConnected(Id(0), kT0 + 45).empty());
  EXPECT_TRUE(tasks_->Tick(kT0 + 48).empty());
  EXPECT_TRUE(tasks_->OnConnected(Id(0), kT0 + 60).empty());
  EXPECT_TRUE(tasks_->Tick(kT0 + 61).empty());
  EXPECT_EQ(Count(tasks_->Tick(kT0 + 63), "firmware_upgrade"), 1u);
  // Progress keeps it from being re-sent while the device works.
  Progress(Id(0), 0, "FOTAV1", kT0 + 80, "downloading");
  EXPECT_TRUE(tasks_->Tick(kT0 + 100).empty());
  EXPECT_EQ(tasks_->Get(task)["devices"][0]["commands"], 4);
  Progress(Id(0), 0, "FOTAV2", kT0 + 120);
  EXPECT_EQ(Status(task, Id(0)), "Success");
}

TEST_F(Rollout, AlreadyLatestFromTheTarget_IsSuccess_NotAFailure) {
  Devices(1);
  const int64_t task = tasks_->Create(Spec(), kT0);
  tasks_->Tick(kT0);
  Report(Id(0), "FOTAV1", kT0 + 1);
  // The outcome report was lost; the re-sent command finds the device on FOTAV2 already.
  Progress(Id(0), 3, "FOTAV2", kT0 + 70, "already running this version");
  EXPECT_EQ(Status(task, Id(0)), "Success");
}

TEST_F(Rollout, Cancel_DropsCommandsNotYetSent_ResumeNeedsAPause) {
  Devices(3);
  const int64_t task = tasks_->Create(Spec(), kT0);
  tasks_->Tick(kT0);
  ASSERT_EQ(Count(Report(Id(0), "FOTAV1", kT0 + 1), "firmware_upgrade"), 1u);
  EXPECT_EQ(platform_->outbox().Size(), 4) << "3 queries and a command, not yet acknowledged";
  try {
    tasks_->Resume(task, kT0 + 2);
    FAIL() << "resumed a task that was not paused";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 409);
  }
  tasks_->Stop(task, kT0 + 3);
  EXPECT_EQ(platform_->outbox().Size(), 0) << "a cancelled task's commands still waiting to go";
}

TEST_F(Rollout, ConnectDuringTask_AskedAtOnce) {
  Devices(1);
  tasks_->Create(Spec(), kT0);
  EXPECT_EQ(Count(tasks_->Tick(kT0), "version_query"), 1u);  // offline: lost
  EXPECT_TRUE(tasks_->Tick(kT0 + 10).empty()) << "re-asked only after kQueryInterval";
  tasks_->OnConnected(Id(0), kT0 + 11);
  EXPECT_TRUE(tasks_->Tick(kT0 + 12).empty()) << "it has not subscribed yet";
  EXPECT_EQ(Count(tasks_->Tick(kT0 + 14), "version_query"), 1u);
}

TEST_F(Rollout, NewFleetTask_QueriesSpreadOverTicks) {
  Devices(kQueriesPerTick + 150);
  tasks_->Create(Spec(), kT0);
  EXPECT_EQ(Count(tasks_->Tick(kT0), "version_query"), static_cast<size_t>(kQueriesPerTick));
  EXPECT_EQ(Count(tasks_->Tick(kT0 + 1), "version_query"), 150u);
}

TEST_F(Rollout, Outbox_HoldsEveryMessageUntilAcknowledged_AcrossARestart) {
  Devices(3);
  tasks_->Create(Spec(), kT0);
  const auto out = tasks_->Tick(kT0);
  ASSERT_EQ(out.size(), 3u);
  platform_->outbox().Remove({out[0].id});
  // A crash before the broker acknowledged the other two: they are still there.
  tasks_.reset();
  platform_ = std::make_unique<Platform>(dir_.path());
  const auto pending = platform_->outbox().Pending(kT0, 100);
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].message.topic, out[1].message.topic);
  EXPECT_EQ(pending[1].message.payload, out[2].message.payload);
  EXPECT_EQ(platform_->outbox().Expire(kT0 + 1).size(), 2u);
}

TEST_F(Rollout, DeviceText_CutOnUtf8Boundaries_TaskAlwaysReadable) {
  EXPECT_EQ(SafeUtf8("abc", 2), "ab");
  EXPECT_EQ(SafeUtf8("a\xc3\xa9", 2), "a") << "never half of é";
  EXPECT_EQ(SafeUtf8("a\xc3\xa9", 3), "a\xc3\xa9");
  EXPECT_EQ(SafeUtf8("\xe2\x82\xac!", 3), "\xe2\x82\xac");
  EXPECT_EQ(SafeUtf8("x\xff\xc3y", 10), "x??y") << "invalid bytes";
  EXPECT_EQ(SafeUtf8("\xc0\xaf", 10), "??") << "overlong";
  EXPECT_EQ(SafeUtf8("\xed\xa0\x80", 10), "???") << "surrogate";
  EXPECT_EQ(SafeUtf8("\xf0\x9f\x98\x80", 10), "\xf0\x9f\x98\x80");

  Devices(1);
  const int64_t task = tasks_->Create(Spec(), kT0);
  tasks_->Tick(kT0);
  Report(Id(0), "FOTAV1\xff", kT0 + 1);  // a version that is not UTF-8 either
  std::string text(198, 'x');
  text += "\xc3\xa9\xc3\xa9";  // 'é' twice across the 200-byte cut
  Progress(Id(0), 6, "FOTAV1", kT0 + 2, text);
  const json t = tasks_->Get(task);
  const std::string d = t["devices"][0]["description"];
  EXPECT_NO_THROW(t.dump());
  EXPECT_EQ(d.substr(d.size() - 3), "x\xc3\xa9") << d;
  std::lock_guard<std::mutex> g(platform_->lock());
  EXPECT_NO_THROW(json(platform_->registry().GetDevice(Id(0)).fw_version).dump());
}

TEST_F(Rollout, Deadline_FailsEveryOpenDevice) {
  Devices(5);
  TaskSpec s = Spec();
  s.deadline = kT0 + 100;
  const int64_t task = tasks_->Create(s, kT0);
  tasks_->Tick(kT0);
  Report(Id(0), "FOTAV1", kT0 + 1);
  tasks_->Tick(kT0 + 100);
  const json t = tasks_->Get(task);
  EXPECT_EQ(t["status"], "Fail");
  EXPECT_EQ(t["counts"]["Fail"], 5);
  EXPECT_EQ(t["devices"][0]["description"], "no result before the deadline");
  EXPECT_EQ(t["devices"][1]["description"], "deadline passed (device offline?)");
}

TEST_F(Rollout, DownloadTokens_RevokedWithTheTaskOrTheDevice_CappedAtSevenDays) {
  Devices(2);
  TaskSpec s = Spec();
  s.deadline = kT0 + 30 * 24 * 3600;
  const int64_t task = tasks_->Create(s, kT0);
  tasks_->Tick(kT0);
  const auto out = Report(Id(0), "FOTAV1", kT0 + 1);
  ASSERT_EQ(out.size(), 1u);
  const json paras = json::parse(out[0].message.payload)["services"][0]["paras"];
  std::string device;
  int64_t from_task = 0, gen = -1;
  // The token ends 7 days after it was issued, not at the task's deadline 30 days away.
  EXPECT_EQ(
      platform_->download_tokens().Verify(paras["access_token"], diff_id_, kT0 + 7 * 24 * 3600 - 10,
                                          &device, &from_task, &gen),
      DownloadTokens::Check::kValid);
  EXPECT_EQ(platform_->download_tokens().Verify(paras["access_token"], diff_id_,
                                                kT0 + 7 * 24 * 3600 + 2, &device, &from_task),
            DownloadTokens::Check::kExpired);
  EXPECT_EQ(from_task, task);
  EXPECT_EQ(gen, platform_->registry().Generation(Id(0)));
  Database& db = platform_->ReadDb();
  EXPECT_TRUE(UpgradeTasks::DownloadAllowed(db, task, Id(0), diff_id_, gen));
  EXPECT_FALSE(UpgradeTasks::DownloadAllowed(db, task, Id(0), full_id_, gen)) << "another package";
  EXPECT_FALSE(UpgradeTasks::DownloadAllowed(db, task, Id(1), diff_id_,
                                             platform_->registry().Generation(Id(1))))
      << "not commanded";
  platform_->registry().SetDeviceEnabled(Id(0), false);
  EXPECT_FALSE(UpgradeTasks::DownloadAllowed(db, task, Id(0), diff_id_, gen)) << "disabled";
  platform_->registry().SetDeviceEnabled(Id(0), true);
  EXPECT_TRUE(UpgradeTasks::DownloadAllowed(db, task, Id(0), diff_id_, gen));
  platform_->registry().RotateSecret(Id(0), "");
  EXPECT_FALSE(UpgradeTasks::DownloadAllowed(db, task, Id(0), diff_id_, gen)) << "secret rotated";
  gen = platform_->registry().Generation(Id(0));
  EXPECT_TRUE(UpgradeTasks::DownloadAllowed(db, task, Id(0), diff_id_, gen)) << "a new token";
  tasks_->Stop(task, kT0 + 2);
  EXPECT_FALSE(UpgradeTasks::DownloadAllowed(db, task, Id(0), diff_id_, gen)) << "task cancelled";
}

// Rotating the secret revokes the device's tokens; an upgrade under way (here with progress
// reported, so no timer would re-send soon) gets its command again at the next tick with a
// token of the new generation, and resumes with it.
TEST_F(Rollout, RotateSecret_UpgradeUnderWay_CommandResentWithAFreshToken) {
  Devices(1);
  const int64_t task = tasks_->Create(Spec(), kT0);
  tasks_->Tick(kT0);
  const auto first = Report(Id(0), "FOTAV1", kT0 + 1);
  ASSERT_EQ(first.size(), 1u);
  Progress(Id(0), 0, "FOTAV1", kT0 + 2, "downloading");
  const auto token_of = [this](const QueuedMessage& m, int64_t* gen) {
    const std::string token =
        json::parse(m.message.payload)["services"][0]["paras"]["access_token"];
    std::string device;
    int64_t from_task = 0;
    EXPECT_EQ(
        platform_->download_tokens().Verify(token, diff_id_, kT0 + 3, &device, &from_task, gen),
        DownloadTokens::Check::kValid);
    return token;
  };
  int64_t old_gen = -1, new_gen = -1;
  const std::string old_token = token_of(first[0], &old_gen);
  EXPECT_TRUE(tasks_->Tick(kT0 + 3).empty()) << "nothing due before the rotation";

  platform_->registry().RotateSecret(Id(0), "");
  const auto again = tasks_->Tick(kT0 + 4);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(token_of(again[0], &new_gen), old_token);
  EXPECT_EQ(new_gen, platform_->registry().Generation(Id(0)));
  Database& db = platform_->ReadDb();
  EXPECT_FALSE(UpgradeTasks::DownloadAllowed(db, task, Id(0), diff_id_, old_gen));
  EXPECT_TRUE(UpgradeTasks::DownloadAllowed(db, task, Id(0), diff_id_, new_gen));
  EXPECT_EQ(tasks_->Get(task)["devices"][0]["status"], "Processing");
}

}  // namespace
}  // namespace ota::server
