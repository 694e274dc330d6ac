// What the web console reads besides the plain REST resources (docs/server.md, "Console"): the
// fleet overview, a device's upgrade history, and the live event stream's content. Everything
// here reads through the connection it is given (a thread's read-only one: never the lock).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>

#include "ota/server/database.hpp"

namespace ota::server {

// Firmware versions listed by name in the overview; the rest are summed as "(other)".
inline constexpr size_t kOverviewVersions = 20;
// Upgrade history rows a device's history lists (newest first).
inline constexpr int64_t kHistoryRows = 500;
// A task that ended is still sent on the event stream this long after its end.
inline constexpr int64_t kRecentTaskSeconds = 60;

// {"devices":{"total","online"}, "versions":[{"version","devices"}], "products", "packages",
//  "tasks":{"open","by_state":{state: n}}}: SQL aggregates only.
nlohmann::json Overview(Database& db, int64_t now);

// The device's task rows, newest first: [{"task_id","task_name","kind","target_version","state",
// "result_code"?,"result"?,"package_id"?,"diff"?,"updated_at","created_at"}]. 404 (ApiError)
// for an unknown device.
nlohmann::json DeviceHistory(Database& db, const std::string& device_id);

// One event stream's memory of what it sent, and the text of what changed since (Server-Sent
// Events: "event: NAME\ndata: JSON\n\n"). The caller says when to look again.
class EventStream {
 public:
  // `devices`: also device events; `task_id` > 0: device events of that task's devices only.
  EventStream(bool devices, int64_t task_id) : devices_(devices || task_id > 0), task_(task_id) {}

  // The events for what differs from what this stream last sent ("" when nothing):
  // `task_summary` gives GET /api/v1/tasks/{id}?devices=false for a task.
  template <typename TaskSummary>
  std::string Next(Database& db, int64_t now, TaskSummary&& task_summary) {
    std::string out = OverviewEvent(db, now);
    for (int64_t id : TaskIds(db, now))
      out += TaskEvent(id, task_summary(id));
    if (devices_) out += DeviceEvents(db, now);
    return out;
  }

 private:
  std::string OverviewEvent(Database& db, int64_t now);
  std::vector<int64_t> TaskIds(Database& db, int64_t now);
  std::string TaskEvent(int64_t task_id, const nlohmann::json& summary);
  std::string DeviceEvents(Database& db, int64_t now);

  bool devices_;
  int64_t task_;
  std::string overview_;                    // the last overview sent
  std::map<int64_t, std::string> tasks_;    // task -> its last summary sent
  std::map<std::string, std::string> dev_;  // device -> its last event's data
  int64_t since_ = 0;                       // device rows changed from here on are looked at
};

// One Server-Sent Event.
std::string SseEvent(const std::string& name, const nlohmann::json& data);

}  // namespace ota::server
