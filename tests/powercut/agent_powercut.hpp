// Power-cut sweeps of the whole life cycle with the app's real code: the real OtaAgent
// downloads, verifies and stages a signed package (served by an in-process HTTPS fake, the
// command sent by an in-process platform fake), the real Loader installs it at the next
// power-on, and the agent reports the outcome and confirms the image. Every flash operation of
// that run is cut (and torn); after the fault the board powers on again with a fresh agent
// (RAM is lost) and the life cycle goes on from what the flash holds until the board settles.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "ota/agent/ota_agent.hpp"
#include "ota/loader.hpp"
#include "ota/package_installer.hpp"
#include "ota/profile.hpp"
#include "powercut.hpp"
#include "sim/power.hpp"
#include "sim_board.hpp"

namespace ota::testing {

// What the platform offers the device: the firmware_upgrade command's fields.
struct PlatformTask {
  std::string device_id = "fire_n1";
  std::string version = "FOTAV2";
  std::string url = "https://platform.test/v5/packages/fotav2.bin";
  std::string token = "download-token";
  std::vector<uint8_t> package;  // the file the HTTPS fake serves
};

// One $ota report the device published (version_report or upgrade_progress_report).
struct PlatformReport {
  std::string event;
  std::string version;  // fw_version of a version report, version of a progress report
  int result_code = -1;
  int progress = -1;
  std::string description;
};

// The broker and the platform in one in-process MQTT client. It sends firmware_upgrade while
// its task is open and the device reports a version other than the target (as the real
// platform re-sends to a device it thinks is upgrading); the task succeeds when the device
// reports result 0 "upgraded" at 100 % with the target version. A session ends at a power cut:
// what was queued for it is lost.
class FakePlatform final : public agent::MqttClient {
 public:
  FakePlatform(const PlatformTask& task, const sim::PowerSupply& power);

  Status Connect(const char* client_id, const char* username, const char* password) override;
  bool connected() const override { return up_; }
  Status Subscribe(const char* filter) override;
  Status Publish(const char* topic, ConstByteSpan payload) override;
  Result<size_t> Receive(uint32_t timeout_ms, Span<char> topic, ByteSpan payload) override;
  void Disconnect() override;

  // Duplicates: the command is also sent at every connect while the task is open (before the
  // device said anything), and every command is delivered twice (a QoS 1 re-delivery).
  bool duplicate = false;
  int max_commands = 24;  // the task's retries; past them the platform gives up

  bool succeeded() const { return succeeded_; }
  bool idle() const { return inbox_.empty(); }
  int commands_sent() const { return commands_sent_; }
  int connects() const { return connects_; }
  // Publishes attempted while the board had no power: a bug in the harness or the agent.
  int published_without_power() const { return published_without_power_; }
  const std::vector<PlatformReport>& reports() const { return reports_; }

 private:
  void SendCommand();

  const PlatformTask& task_;
  const sim::PowerSupply& power_;
  std::string command_;
  std::deque<std::string> inbox_;
  std::vector<PlatformReport> reports_;
  bool up_ = false;
  bool succeeded_ = false;
  int connects_ = 0;
  int commands_sent_ = 0;
  int published_without_power_ = 0;
};

// Serves the task's package by range, as the platform's download URL does.
class FakeHttps final : public agent::HttpsClient {
 public:
  explicit FakeHttps(const PlatformTask& task) : task_(task) {}
  Result<size_t> GetRange(const char* url, const char* token, uint32_t offset, ByteSpan out,
                          uint32_t* total_size) override;
  uint64_t requests() const { return requests_; }
  uint64_t bytes() const { return bytes_; }

 private:
  const PlatformTask& task_;
  uint64_t requests_ = 0;
  uint64_t bytes_ = 0;
};

// Time moves 10 ms every time the agent looks.
class FakeClock final : public agent::Clock {
 public:
  uint64_t NowMs() override { return now_ += 10; }
  void UtcHour(char (&out)[11]) override;

 private:
  uint64_t now_ = 1000000;
};

struct AgentScenario {
  std::string name;
  const BoardProfile* profile = &kSimSmall;
  std::vector<uint8_t> old_image;  // in the running slot at the start ("FOTAV1")
  std::vector<uint8_t> new_image;  // what the package installs ("FOTAV2")
  PlatformTask task;               // its package: signed by a key in `keys`
  std::vector<TrustedKey> keys;    // the loader's keys (the agent checks with the same)
  bool duplicate_commands = false;
  // Boot-state records written before the upgrade, as in the loader sweeps: by default the
  // copy in use is nearly full, so the upgrade crosses a switch between the two copies.
  int history_records = -1;
};

// Where the operations of an uninterrupted run go.
struct AgentPhases {
  uint64_t download_stage = 0;  // first app run: record, erase, program, offsets, staged
  uint64_t install = 0;         // the loader's power-on that installs (and counts a trial boot)
  uint64_t confirm = 0;         // the rest: the app's outcome report and confirm, later boots
};

struct AgentSweepOptions {
  uint64_t stride = 1;  // cut at every stride-th operation (1 = every one)
  // Within the loader's install (AgentPhases::install) only every install_stride-th
  // operation and the last one: for scenarios about the app's side whose install is swept
  // exhaustively elsewhere.
  uint64_t install_stride = 1;
  bool tear = true;  // also tear each chosen operation
  uint64_t seed = 1;
};

struct AgentSweepResult {
  SweepResult sweep;
  AgentPhases phases;
  uint64_t http_bytes = 0;  // bytes the uninterrupted run downloaded
  uint64_t power_ons = 0;   // loader runs of the uninterrupted run
  // The most any faulted run took: power-ons (the fault's included), commands the platform
  // sent, bytes downloaded (a resume fetches less than the package twice).
  uint64_t max_power_ons = 0;
  uint64_t max_commands = 0;
  uint64_t max_http_bytes = 0;
};

// One board's life: loader power-ons, each followed by the app (a fresh agent) until the
// agent asks for a reboot, the board settles, or the armed fault fires.
class AgentLifeCycle {
 public:
  struct Outcome {
    bool power_lost = false;  // the armed fault fired
    bool settled = false;
    BootDecision decision;  // the last power-on's
    BootRecord record;      // the boot state once settled
    uint64_t power_ons = 0;
    std::string error;
  };

  // `loader_installer`: the installer the loader is built with (a PackageInstaller with the
  // scenario's keys).
  AgentLifeCycle(const AgentScenario& scenario, SimBoard& board, Installer& loader_installer);

  // Power-ons until the board settles (the upgrade has an end and the agent and the platform
  // have nothing more to say), at most `max_power_ons`, stopping if the power is lost.
  // `phase_ops`, if given, receives the op counts of the phases of this call.
  Outcome Run(int max_power_ons, AgentPhases* phase_ops = nullptr);

  FakePlatform& platform() { return platform_; }
  FakeHttps& https() { return https_; }

 private:
  // The loader's power-on: the only place this harness builds an ota::Loader.
  Result<BootDecision> BootLoader();
  Result<BootRecord> LoadRecord();

  const AgentScenario& scenario_;
  SimBoard& board_;
  Installer& loader_installer_;
  FakePlatform platform_;
  FakeHttps https_;
  FakeClock clock_;
  uint8_t loader_work_[1024] = {};  // the loader's scratch buffer, as on the board
};

AgentSweepResult RunAgentSweep(const AgentScenario& scenario, const AgentSweepOptions& options);

}  // namespace ota::testing
