// The app's OTA agent (docs/agent.md): IoTDA login, property and version reports, and the
// firmware_upgrade flow: check, download with Range into the download region (resumable: the
// offset is in the boot state), verify `sign` and the package signature exactly as the loader
// will, stage, ask for a reboot; after the reboot, report what the loader did and confirm.
// Single-threaded, no heap: every buffer is a member.
#pragma once

#include <cstdint>

#include "ota/agent/json_reader.hpp"
#include "ota/agent/transport.hpp"
#include "ota/boot_state.hpp"
#include "ota/flash_area.hpp"
#include "ota/package_installer.hpp"
#include "ota/profile.hpp"

namespace ota::agent {

inline constexpr size_t kDeviceIdMax = 64;
inline constexpr size_t kUrlMax = 256;
inline constexpr size_t kTokenMax = 256;
inline constexpr uint32_t kDownloadBlock = 4096;  // one W25Q128 sector
inline constexpr uint32_t kOffsetSaveEvery = 4 * kDownloadBlock;
inline constexpr int kProgressStepPercent = 10;  // report at 10, 20, ... 100
inline constexpr int kBlockRetries = 3;
inline constexpr size_t kMessageMax = 2048;  // the largest platform message taken
// After the platform acknowledged the outcome of an upgrade, a failed save of the record that
// ends it (idle, the image confirmed) is tried again this much later.
inline constexpr uint32_t kSettleRetryMs = 5000;

// The app's say before a download starts (battery level, a user's consent): 0 lets the
// upgrade go ahead, anything else is the IoTDA result code the agent refuses it with
// (kResultLowBattery, ...). Called from Step(), on the agent's thread.
class UpgradeGate {
 public:
  virtual int Allow(const char* version, uint32_t file_size) = 0;

 protected:
  ~UpgradeGate() = default;
};

struct AgentConfig {
  const char* device_id = "";
  const char* secret = "";
  const char* sw_version = "SOTAV1";
  uint32_t report_interval_ms = 10000;
  Span<const TrustedKey> keys;  // the loader's keys: the agent refuses what the loader would
  UpgradeGate* gate = nullptr;  // optional
};

enum class AgentEvent : uint8_t { kNone, kReboot };

// IoTDA result codes (iotda-protocol.md; the table in docs/agent.md says when each is sent).
enum IotdaResult : int {
  kResultOk = 0,
  kResultBusy = 1,  // "device busy": the running image is on trial, not confirmed yet
  kResultAlreadyLatest = 3,
  kResultLowBattery = 4,
  kResultNoStorage = 5,
  kResultDownloadTimeout = 6,
  kResultVerifyFailed = 7,
  kResultUnsupported = 8,
  kResultInstallFailed = 10,
  kResultInternal = 255,
};

class OtaAgent {
 public:
  OtaAgent(const AgentConfig& config, const BoardProfile& profile,
           Flash* const (&flashes)[kFlashCount], MqttClient& mqtt, HttpsClient& https,
           Clock& clock);

  // Once per boot, after the loader started this image. At the first connect the outcome of
  // the last upgrade (if any) is reported, before the version report; once the platform has
  // acknowledged it (MqttClient::Publish returned Ok), the record goes back to idle with the
  // running image confirmed. Until then nothing is cleared, the report is sent again after
  // every reconnect, and a firmware_upgrade is refused with kResultBusy.
  Status Start(const char* running_version);
  // One turn of the main loop: reconnect if needed, handle at most one message, report
  // properties when due. kReboot: a package is staged; the port resets the board.
  // A report still owed that is not acknowledged ends the session (it goes first after the
  // reconnect, with back-off); an error of the boot state's flash is returned.
  Result<AgentEvent> Step(uint32_t max_wait_ms);

  void set_radio(int value) { radio_ = value; }
  int radio() const { return radio_; }
  bool connected() const { return mqtt_.connected(); }
  // Bytes of the current download durably in the download region.
  uint32_t download_offset() const { return record_.download_offset; }
  uint32_t download_size() const { return record_.package_size; }
  const BootRecord& record() const { return record_; }
  uint32_t progress_report_failures() const { return progress_report_failures_; }

 private:
  Status Connect();
  // Drops the session (if the port still has one) and schedules the next connect with back-off.
  void EndSession();
  Status Publish(const char* suffix, const char* json);
  Status ReportVersion();
  Status ReportProgress(int result, int progress, const char* description);
  // A result the platform must see: if it cannot be sent now, it is sent after the next
  // connect, before the version report. `description` must outlive the agent (a literal).
  Status ReportResult(int result, int progress, const char* description);
  // What is still to be reported: the last upgrade's outcome, then a result that failed to go.
  // Each is cleared only once acknowledged; the outcome then leaves a record to settle.
  Status ReportPending();
  // Once an outcome is acknowledged (settle_), saves what it calls for: idle, the running image
  // confirmed. On an error `record_` stays as the flash has it, and it is tried again
  // kSettleRetryMs later.
  Status SettleOutcome(uint64_t now);
  // On trial (installed, not confirmed) or an outcome not yet settled: no new upgrade.
  bool UpgradeBusy() const;
  Status ReportProperties();
  Status Handle(size_t len);
  Result<AgentEvent> Upgrade(int paras);
  // The download itself, from record_.download_offset; kIoError after kBlockRetries failures.
  Status Download(const char* url, const char* token, uint32_t size);
  Status SaveRecord();

  AgentConfig config_;
  const BoardProfile& profile_;
  FlashArea download_;
  FlashArea running_;
  BootStore store_;
  MqttClient& mqtt_;
  HttpsClient& https_;
  Clock& clock_;
  PackageInstaller installer_;
  BootRecord record_;
  char running_version_[kVersionMax] = {};
  int radio_ = 0;
  uint64_t next_report_ms_ = 0;
  uint64_t next_connect_ms_ = 0;
  uint32_t backoff_ms_ = 1000;
  bool subscribed_ = false;
  bool pending_outcome_ = false;  // the last upgrade's result is still to be reported
  bool settle_ = false;           // it was acknowledged; the record saying so is not saved yet
  uint64_t next_settle_ms_ = 0;
  bool pending_result_ = false;  // a result whose report failed, sent after the next connect
  int pending_code_ = 0;
  int pending_progress_ = 0;
  char pending_text_[64] = {};  // copied: the caller's text need not outlive the call
  // Progress reports that could not be published (the outcome after the reboot is what the
  // platform goes by; these only show the way there).
  uint32_t progress_report_failures_ = 0;
  JsonReader json_;
  char topic_[160] = {};
  char text_[kMessageMax + 1] = {};  // incoming payloads, NUL-terminated
  char out_[512] = {};               // outgoing JSON
  char url_[kUrlMax] = {};
  char token_[kTokenMax] = {};
  uint8_t block_[kDownloadBlock] = {};
};

// `hex` (64 digits) to a digest; false if it is not one.
bool ParseSha256Hex(const char* hex, Sha256Digest out);

// The IoTDA password: lowercase hex HMAC-SHA256 (key = timestamp, message = secret).
Status IotdaPassword(const char* secret, const char* timestamp, char (&out)[65]);

}  // namespace ota::agent
