// Upgrade tasks with IoTDA semantics (iotda-protocol.md, docs/server.md "Upgrade tasks"): the
// per-device state machine driven by version reports, progress reports and the clock. All
// state is in the database, so a restarted server continues every task where it was. The
// engine returns the messages to send; it never talks to the broker itself.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ota/server/database.hpp"
#include "ota/server/device_protocol.hpp"
#include "ota/server/package_store.hpp"
#include "ota/server/registry.hpp"

namespace ota::server {

struct TaskSpec {
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
};

inline constexpr int64_t kDefaultTaskSeconds = 24 * 3600;
// A device has this long to answer version_query before it is asked again.
inline constexpr int64_t kQueryInterval = 120;

// What the engine needs to let a device download a package: the firmware_upgrade paras.
using GrantFn = std::function<nlohmann::json(const std::string& device_id,
                                             const PackageRecord& package, int64_t deadline)>;

class UpgradeTasks {
 public:
  UpgradeTasks(Database& db, Registry& registry, PackageStore& packages, GrantFn grant);

  int64_t Create(const TaskSpec& spec, int64_t now);
  nlohmann::json Get(int64_t task_id);
  nlohmann::json List();
  void Stop(int64_t task_id, int64_t now);

  // Starts, re-queries, retries and times out devices.
  std::vector<Outgoing> Tick(int64_t now);
  std::vector<Outgoing> OnVersionReport(const std::string& device_id, const std::string& fw,
                                        const std::string& sw, int64_t now);
  std::vector<Outgoing> OnProgress(const std::string& device_id, const nlohmann::json& paras,
                                   int64_t now);

 private:
  struct Row;
  std::vector<Row> ActiveRows(const std::string& device_id, int64_t now);
  void Update(const Row& row, int64_t now);
  std::string TaskStatus(int64_t task_id);

  Database& db_;
  Registry& registry_;
  PackageStore& packages_;
  GrantFn grant_;
};

}  // namespace ota::server
