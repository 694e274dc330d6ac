// `ota-fleet`: thousands of simulated sim-small boards in one process, each running the real
// loader and the real OTA agent over real MQTT/TLS and HTTPS against a running platform, with a
// behaviour mix (offline, late, dropping, refusing, failing verification, slow, power cuts),
// the campaign's setup (product, key, packages, devices) and a summary of what happened.
//
// A test drives the parts itself: Setup(), StartBoards(), its own task (SetTask()),
// WaitTask(), StopBoards(), Summary(). Run() does all of it for the command line.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fleet_board.hpp"
#include "ota/host/keys.hpp"
#include "platform_api.hpp"

namespace ota::fleet {

struct FleetConfig {
  std::string api_url;  // https://127.0.0.1:PORT (the operator API)
  std::string token;    // operator token
  std::string ca_file;  // the platform's CA (data dir tls/ca.pem)
  std::string mqtt_host = "127.0.0.1";
  int mqtt_port = 8883;
  std::string product_id = "fleet";
  // The signing key: loaded from here if the file exists, else made and saved here (so a
  // later run on the same product signs with the same key). Empty: a key for this run only.
  std::string key_file;
  int boards = 100;
  uint64_t seed = 1;
  // Start versions and their shares (percent, normalised): FOTAV0, FOTAV1 or FOTAV2.
  std::vector<std::pair<std::string, double>> start_mix = {{"FOTAV1", 100}};
  // Percentages of the boards.
  double offline_pct = 0, late_pct = 0, drop_pct = 0, refuse_pct = 0, fail_verify_pct = 0,
         slow_pct = 0, powercut_pct = 0;
  double late_after_s = 30;
  double ramp_s = 10;
  int slow_ms = 500;
  int drop_mean_ms = 15000;
  std::string canary_group;
  int canary = 0;
  int retry_count = 3;
  int retry_interval_s = 10;
  nlohmann::json task_extra = nlohmann::json::object();  // merged into POST /tasks
  bool create_task = true;
  double timeout_s = 600;
  uint32_t report_interval_ms = 120000;
  uint32_t step_wait_ms = 2000;
  size_t stack_bytes = 256 * 1024;
  int setup_connections = 4;
  bool progress = true;  // the one-line display on stderr
  // Every 500 ms a JSON line: the fleet's counters and the CPU seconds and RSS of this process
  // and of `watch` (name, PID: the broker, the platform), on the clock of the summary's
  // `clock` (benchmarks cut it into stages).
  std::string timeline_file;
  std::vector<std::pair<std::string, int>> watch;
  // One process holds ~4 descriptors a board: past the descriptor limit, a fleet runs as
  // several processes, each the boards i with i % shards == shard. One of them (or a run with
  // setup_only) makes the product, packages and every device; the others skip_setup (they
  // need the same key_file) and follow the task someone else creates (follow_task).
  int shard = 0, shards = 1;
  bool skip_setup = false;
  bool follow_task = false;  // follow the product's next new task
  std::string ready_file;    // written once this process's boards connected
  // Write the FOTAV2 full and FOTAV1->FOTAV2 diff packages into this folder instead of
  // uploading them (someone else uploads them: the web console's test does it in a browser).
  std::string packages_out;
};

// Parses "FOTAV1=90,FOTAV0=10". Throws std::invalid_argument.
std::vector<std::pair<std::string, double>> ParseStartMix(const std::string& text);

// Raises RLIMIT_NOFILE to at least `wanted` if allowed (else to the hard limit); the limit now.
uint64_t RaiseFileLimit(uint64_t wanted);

class Fleet {
 public:
  explicit Fleet(FleetConfig config);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Product (with its model), signing key, the FOTAV0/1/2 images, the full FOTAV2 and diff
  // FOTAV1->FOTAV2 packages, the devices (409: already there), the canary group. Idempotent
  // on the product and devices. Throws std::runtime_error.
  void Setup();
  // Makes the boards (after Setup()) and starts them, each after its random ramp delay.
  void StartBoards();
  // Creates the whole-product task to FOTAV2 (config's retries, merged with task_extra).
  int64_t CreateTask();
  // A task made elsewhere (a test): the fleet follows it from now on.
  void SetTask(int64_t task_id);
  // Polls the task every second (progress line on stderr) until its status is final, every
  // online board's row is closed, or `timeout_s`. True if it finished.
  bool WaitTask(double timeout_s);
  void StopBoards();
  // After StopBoards(): the JSON summary, and the one line.
  nlohmann::json Summary();
  std::string SummaryLine();
  // After Summary(): 0 only if stuck=0, lost=0 and the task finished.
  int ExitCode();

  // Only the connect storm, against any broker that knows the boards' logins (a peer broker
  // with Mosquitto's password_file): the boards start, and it returns once every online board
  // connected (or after `timeout_s`); StopBoards() and Summary() follow. No platform needed.
  void ConnectStorm(double timeout_s);
  // `device_id:password` for every board at the current UTC hour (IoTDA's HMAC password), the
  // format `mosquitto_passwd -U` hashes.
  void WritePasswordFile(const std::string& path);

  // The whole campaign for the command line: Setup(), StartBoards(), the connect storm,
  // CreateTask() (unless create_task is false), WaitTask(), StopBoards(). Then Summary().
  void Run();

  PlatformApi& api() { return *api_; }
  const std::string& device_id(int board) const { return devices_[board].device_id; }
  int64_t task_id() const { return task_id_; }
  const nlohmann::json& last_task() const { return task_; }
  // Connected now (all boards' sessions).
  int connected() const { return shared_.counters.connected.load(); }
  int online_boards() const;

 private:
  struct DeviceSpec {
    std::string node_id, device_id, secret, start_version;
    BoardTraits traits;
  };
  void PlanBoards();
  void MakeImages();
  void CreateDevices();
  void Progress(bool final_line);
  void Evaluate();
  void Sample(std::FILE* out);
  // Sharded: keeps this process's boards only (after planning every board).
  void KeepShard();
  // Waits for the product's first task newer than those at the start of Run().
  void FollowNextTask(double timeout_s);
  int64_t known_task_ = 0;
  int64_t offline_all_ = 0;  // offline boards of the whole fleet (every shard)

  FleetConfig config_;
  FleetShared shared_;
  std::unique_ptr<PlatformApi> api_;
  std::vector<DeviceSpec> devices_;
  std::map<std::string, std::vector<uint8_t>> images_;
  host::Pkey signing_key_;
  TrustedKey trusted_{}, foreign_{};
  std::vector<std::unique_ptr<FleetBoard>> boards_;
  int64_t start_ms_ = 0;
  int64_t storm_ms_ = -1;  // ConnectStorm(): until every online board connected
  std::thread sampler_;
  bool sampling_ = false;
  int64_t task_id_ = 0;
  int64_t task_done_ms_ = 0;
  bool task_finished_ = false;
  nlohmann::json task_;
  int threads_failed_ = 0;
  uint64_t full_size_ = 0, diff_size_ = 0;
  int64_t setup_ms_ = -1;
  int64_t stop_ms_ = 0;
  std::vector<std::string> stuck_devices_, lost_devices_;
  // Evaluate(): by device.
  int success_ = 0, failed_ = 0, stuck_ = 0, lost_ = 0, offline_ = 0;
  std::map<std::string, int> by_status_;
  double wall_s_ = 0;
};

}  // namespace ota::fleet
