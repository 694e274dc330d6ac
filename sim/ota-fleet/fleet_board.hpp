// One board of the fleet: a sim-small board (64 KB internal + 256 KB external emulated flash),
// the real loader at every power-on, then the app's real OTA agent over FleetMqtt and
// FleetHttps, on its own thread with a small stack. What it did is kept in its trace.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fleet_transport.hpp"
#include "host_transport.hpp"
#include "ota/agent/ota_agent.hpp"
#include "ota/package_installer.hpp"
#include "sim/board_flash.hpp"

namespace ota::fleet {

// What the fleet shares with its boards.
struct FleetShared {
  std::string mqtt_host;
  int mqtt_port = 8883;
  std::string ca_file;
  std::string target_version;
  uint32_t report_interval_ms = 120000;
  uint32_t step_wait_ms = 2000;
  std::unique_ptr<SharedTls> tls;
  FleetCounters counters;
  std::atomic<int64_t> task_ms{0};  // when the task was made (0: not yet)
  std::atomic<bool> stop{false};
  std::mutex mu;  // with cv: interruptible sleeps
  std::condition_variable cv;
};

// A board's part of the behaviour mix.
struct BoardTraits {
  bool offline = false;        // never comes online
  int64_t start_delay_ms = 0;  // ramp (+ the late delay)
  bool late = false;
  bool drop = false;         // sessions cut now and then, HTTP requests fail now and then
  bool refuse = false;       // the app refuses upgrades (result 4, low battery)
  bool fail_verify = false;  // the loader's keys lack the signing key (result 7)
  bool slow = false;
  int slow_ms = 0;
  int64_t power_cut_after = -1;  // bytes into its first download
  int drop_mean_ms = 15000;
};

// What the board last told the platform about an upgrade.
enum class LastReport : uint8_t { kNone, kProgress, kSuccess, kFailure };

struct BoardTrace {
  std::atomic<int64_t> first_connect_ms{-1};
  std::atomic<bool> connected{false};
  // Each -1 until it happens (times on NowMs()); only events after the task was made.
  int64_t version_query_ms = -1;   // first version_query received
  int64_t version_report_ms = -1;  // first version_report sent after that
  int64_t command_ms = -1;         // first firmware_upgrade received
  int64_t last_command_ms = -1;    // the latest one
  int64_t download_start_ms = -1;
  int64_t download_end_ms = -1;
  int64_t first_final_ms = -1;  // first success or failure report
  int64_t last_final_ms = -1;
  LastReport last = LastReport::kNone;
  int last_code = -1;
  std::string last_version;
  int boots = 0;
  std::string running_version;
  std::string error;  // a board that stopped by itself (bricked, ...)
};

class FleetBoard final : private MqttObserver, private agent::UpgradeGate {
 public:
  FleetBoard(FleetShared& shared, std::string device_id, std::string secret,
             const std::vector<uint8_t>& image, const TrustedKey& loader_key,
             const BoardTraits& traits, uint32_t seed);
  ~FleetBoard();
  FleetBoard(const FleetBoard&) = delete;
  FleetBoard& operator=(const FleetBoard&) = delete;

  // Starts the board's thread (`stack_bytes` of stack); false if the thread could not start.
  bool Start(size_t stack_bytes);
  void Join();
  // Ends a Sleep() at once (the fleet is stopping).
  void Wake();

  const std::string& device_id() const { return device_id_; }
  const BoardTraits& traits() const { return traits_; }
  // Read while it runs: the atomics only; the rest after Join().
  const BoardTrace& trace() const { return trace_; }

 private:
  static void* Main(void* self);
  void Run();
  // Sleeps up to `ms`; false if the fleet is stopping.
  bool Sleep(int64_t ms);
  // One power-on: the loader, then the app until it reboots, loses power or the fleet stops.
  enum class Next { kReboot, kStop, kBricked };
  Next PowerOn();

  void OnConnected(bool up) override;
  void OnPublished(const char* topic, const char* payload, size_t len) override;
  void OnReceived(const char* payload, size_t len) override;
  int Allow(const char* version, uint32_t file_size) override;
  void SetDone(bool done);

  FleetShared& shared_;
  std::string device_id_, secret_;
  BoardTraits traits_;
  TrustedKey key_;
  sim::BoardFlash flash_;
  PackageInstaller installer_;  // the loader's, with the loader's key
  FleetMqtt mqtt_;
  FleetHttps https_;
  device_sim::SystemClock clock_;
  std::unique_ptr<agent::OtaAgent> agent_;
  BoardTrace trace_;
  bool done_ = false;
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  pthread_t thread_{};
  bool started_ = false;
  uint8_t work_[1024] = {};  // the loader's scratch buffer, as on the board
};

}  // namespace ota::fleet
