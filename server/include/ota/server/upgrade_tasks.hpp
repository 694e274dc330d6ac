// Upgrade tasks with IoTDA semantics (iotda-protocol.md, docs/server.md "Upgrade tasks") and
// staged rollouts on top: waves, a command rate limit, a failure threshold per wave that
// pauses the task, pause / resume / cancel. All state is in the database, and every message a
// state change implies goes into the outbox in the same transaction (ota/server/outbox.hpp),
// so a killed server or a lost message never leaves a device without its command. The engine
// returns the queued messages; it never talks to the broker itself.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ota/server/database.hpp"
#include "ota/server/device_protocol.hpp"
#include "ota/server/outbox.hpp"
#include "ota/server/package_store.hpp"
#include "ota/server/registry.hpp"

namespace ota::server {

// One stage of a rollout: a group of the task's targets, a share of them, or named devices.
struct WaveSpec {
  std::string name;
  std::string group;                 // the task's targets in this group
  int percent = 0;                   // or this share of all targets (1..100)
  std::vector<std::string> devices;  // or these
  int failure_threshold = -1;        // percent of the wave; -1: the rollout's
};

struct RolloutSpec {
  std::vector<WaveSpec> waves;  // empty: one wave with every target
  int failure_threshold = 100;  // percent; over it the task pauses (100: never)
  int rate_per_minute = 0;      // firmware_upgrade commands per minute; 0: no limit
};

struct TaskSpec {
  // firmware: compares fw_version, sends firmware_upgrade, firmware packages; software (SOTA):
  // sw_version, software_upgrade, software packages. A device is in one open task of either
  // kind at a time (upgrade_progress_report does not say which kind it is about).
  std::string kind = "firmware";
  std::string product_id;
  std::string name;
  std::string target_version;  // or taken from package_id
  int64_t package_id = 0;      // 0: each device gets the diff from its version, else the full
  std::vector<std::string> devices;
  std::vector<std::string> groups;
  bool whole_product = false;
  int64_t start_at = 0;      // Unix seconds; 0 = now
  int64_t deadline = 0;      // Unix seconds; 0 = start + kDefaultTaskSeconds
  int retry_count = 0;       // 0..5
  int retry_interval = 300;  // seconds
  int resend_interval = 60;  // seconds without news from a Processing device before a re-send
  RolloutSpec rollout;
  // A target already in another open task: refused (409) unless this is set, when the older
  // task's row is Stopped ("superseded by task N").
  bool supersede = false;
};

inline constexpr int64_t kDefaultTaskSeconds = 24 * 3600;
// A device has this long to answer version_query before it is asked again.
inline constexpr int64_t kQueryInterval = 120;
// A version report from a Processing device re-sends its command only this long after the
// last one (the report may have crossed the command on the wire).
inline constexpr int64_t kMinResendGap = 10;
// Download tokens in a command live until the task's deadline, at most this long.
inline constexpr int64_t kMaxTokenSeconds = 7 * 24 * 3600;
// Work per tick, so one tick's transaction stays short whatever the fleet's size.
inline constexpr int kQueriesPerTick = 1000;
inline constexpr int kRowsPerTick = 4000;

// What the engine needs to let a device download a package: the firmware_upgrade paras.
using GrantFn =
    std::function<nlohmann::json(const std::string& device_id, const PackageRecord& package,
                                 int64_t expires_at, int64_t task_id)>;

class UpgradeTasks {
 public:
  UpgradeTasks(Database& db, Registry& registry, PackageStore& packages, Outbox& outbox,
               GrantFn grant);

  int64_t Create(const TaskSpec& spec, int64_t now);
  // What Create would do with `spec`, changing nothing (the same checks and refusals, the same
  // targets and waves, each device's package chosen as its command would choose it):
  // {"devices", "diff":{"devices","bytes"}, "full":{"devices","bytes"}, "up_to_date",
  //  "no_package", "in_open_tasks", "waves":[{"name","devices"}]}.
  nlohmann::json Preview(const TaskSpec& spec, int64_t now);
  // `devices`: include the per-device list (large tasks: ask for the counts only).
  nlohmann::json Get(int64_t task_id, bool devices = true);
  nlohmann::json List();
  // Cancel: open devices become Stopped and their download tokens stop working. 409 when the
  // task has already ended.
  void Stop(int64_t task_id, int64_t now);
  // No new commands while paused; devices already upgrading finish. 409 on an ended task.
  void Pause(int64_t task_id, const std::string& reason, int64_t now);
  // Continues; the failure threshold of the wave that tripped it no longer applies.
  void Resume(int64_t task_id, int64_t now);

  // Starts, re-queries, re-sends, rate-limits, retries and times out devices.
  std::vector<QueuedMessage> Tick(int64_t now);
  std::vector<QueuedMessage> OnVersionReport(const std::string& device_id, const std::string& fw,
                                             const std::string& sw, int64_t now);
  std::vector<QueuedMessage> OnProgress(const std::string& device_id, const nlohmann::json& paras,
                                        int64_t now);
  // The broker saw the device connect: ask it at once instead of at the next re-query.
  std::vector<QueuedMessage> OnConnected(const std::string& device_id, int64_t now);

  // Whether a token issued by `task_id` (0: through the API) to generation `generation` of
  // `device_id` still lets it download `package_id`: the device still has that generation (it
  // was not deleted and re-created, nor its secret rotated), it (and a sub-device's gateway) is
  // enabled and, for a task, the task is not stopped and still waits for this device to install
  // this package. Reads only; any connection.
  static bool DownloadAllowed(Database& db, int64_t task_id, const std::string& device_id,
                              int64_t package_id, int64_t generation);

 private:
  struct Row;
  struct Plan;
  // Checks `spec` (ApiError as Create refuses) and picks the targets and their waves.
  Plan MakePlan(const TaskSpec& spec, int64_t now);
  // The package a device on `version` gets: the task's own (a full one, or a diff from exactly
  // `version`), else the diff from `version` or the full one (PackageStore::Choose).
  std::optional<PackageRecord> PackageFor(int64_t task_package, const std::string& product_id,
                                          const std::string& target, const std::string& version,
                                          const std::string& kind);
  std::vector<Row> Rows(const std::string& where, const std::function<void(Statement&)>& bind);
  std::optional<Row> OpenRow(const std::string& device_id, int64_t now);
  void Update(const Row& row, int64_t now);
  std::string TaskStatus(int64_t task_id);
  int ActiveWave(int64_t task_id);
  int CommandBudget(const Row& row, int64_t now);
  void Command(Row& row, const std::string& from_version, int64_t now,
               std::vector<QueuedMessage>* out);
  void Succeed(Row& row, const std::string& description, int64_t now);
  void Fail(Row& row, const std::string& description, int64_t now);
  // After a device ended: the wave's failure threshold, then the next wave.
  void AfterFinal(const Row& row, int64_t now);
  void TickTask(int64_t task_id, int64_t now, int* queries, std::vector<QueuedMessage>* out);

  Database& db_;
  Registry& registry_;
  PackageStore& packages_;
  Outbox& outbox_;
  GrantFn grant_;
};

// SQL for the state of the task `t` (tasks t) at `now`, as GET /api/v1/tasks/{id} says it:
// cancelled, finished, paused, scheduled or running.
std::string TaskStateSql(int64_t now);

// `s` cut to at most `max_bytes` on a UTF-8 character boundary, with every invalid byte
// replaced by '?': what a device sends is stored as text JSON can always carry.
std::string SafeUtf8(const std::string& s, size_t max_bytes);

}  // namespace ota::server
