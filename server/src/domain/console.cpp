#include "ota/server/console.hpp"

#include <vector>

#include "ota/server/registry.hpp"
#include "ota/server/upgrade_tasks.hpp"

namespace ota::server {

using nlohmann::json;

namespace {

constexpr const char* kOpenStates = "('running', 'paused', 'scheduled')";

int64_t Count(Database& db, const std::string& sql) {
  Statement st = db.Prepare(sql);
  return st.Step() ? st.Int(0) : 0;
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string SseEvent(const std::string& name, const json& data) {
  // A JSON dump is one line: one data field.
  return "event: " + name + "\ndata: " + Dump(data) + "\n\n";
}

json Overview(Database& db, int64_t now) {
  json out = json::object();
  {
    Statement st = db.Prepare("SELECT COUNT(*), COALESCE(SUM(" + DeviceOnlineSql(now) +
                              "), 0) FROM devices d LEFT JOIN devices gw ON "
                              "gw.device_id = d.gateway_id");
    st.Step();
    out["devices"] = {{"total", st.Int(0)}, {"online", st.Int(1)}};
  }
  json versions = json::array();
  int64_t other = 0;
  {
    Statement st = db.Prepare(
        "SELECT COALESCE(fw_version, '') AS v, COUNT(*) AS n FROM devices GROUP BY v "
        "ORDER BY n DESC, v");
    while (st.Step()) {
      if (versions.size() < kOverviewVersions) {
        versions.push_back({{"version", st.Text(0)}, {"devices", st.Int(1)}});
      } else {
        other += st.Int(1);
      }
    }
  }
  if (other > 0) versions.push_back({{"version", "(other)"}, {"devices", other}});
  out["versions"] = versions;
  out["products"] = Count(db, "SELECT COUNT(*) FROM products");
  out["packages"] = Count(db, "SELECT COUNT(*) FROM packages");
  json by_state = json::object();
  int64_t open = 0;
  Statement st =
      db.Prepare("SELECT s, COUNT(*), s IN " + std::string(kOpenStates) + " FROM (SELECT " +
                 TaskStateSql(now) + " AS s FROM tasks t) GROUP BY s ORDER BY s");
  while (st.Step()) {
    by_state[st.Text(0)] = st.Int(1);
    if (st.Int(2) != 0) open += st.Int(1);
  }
  out["tasks"] = {{"open", open}, {"by_state", by_state}};
  return out;
}

json DeviceHistory(Database& db, const std::string& device_id) {
  Statement dev = db.Prepare("SELECT 1 FROM devices WHERE device_id = ?");
  if (!dev.Bind(1, device_id).Step()) throw ApiError(404, "no device " + device_id);
  Statement st = db.Prepare(
      "SELECT d.task_id, t.name, t.kind, t.target_version, d.status, d.result_code, "
      "d.description, d.package_id, p.kind, d.updated_at, t.created_at FROM task_devices d "
      "JOIN tasks t ON t.task_id = d.task_id LEFT JOIN packages p ON p.package_id = d.package_id "
      "WHERE d.device_id = ? ORDER BY t.created_at DESC, d.task_id DESC LIMIT ?");
  st.Bind(1, device_id).Bind(2, kHistoryRows);
  json out = json::array();
  while (st.Step()) {
    json row = {{"task_id", st.Int(0)},    {"task_name", st.Text(1)},
                {"kind", st.Text(2)},      {"target_version", st.Text(3)},
                {"state", st.Text(4)},     {"updated_at", st.Int(9)},
                {"created_at", st.Int(10)}};
    if (!st.IsNull(5)) row["result_code"] = st.Int(5);
    if (!st.Text(6).empty()) row["result"] = st.Text(6);
    if (!st.IsNull(7)) row["package_id"] = st.Int(7);
    if (!st.IsNull(8)) row["diff"] = st.Text(8) == "diff";  // the package still exists
    out.push_back(std::move(row));
  }
  return out;
}

std::string EventStream::OverviewEvent(Database& db, int64_t now) {
  const json o = Overview(db, now);
  std::string text = Dump(o);
  if (text == overview_) return {};
  overview_ = std::move(text);
  return SseEvent("overview", o);
}

std::vector<int64_t> EventStream::TaskIds(Database& db, int64_t now) {
  Statement st = db.Prepare(
      "SELECT task_id FROM tasks WHERE (stopped = 0 AND finished_at IS NULL) OR finished_at >= ?1 "
      "OR created_at >= ?1 ORDER BY task_id");
  st.Bind(1, now - kRecentTaskSeconds);
  std::vector<int64_t> ids;
  while (st.Step())
    ids.push_back(st.Int(0));
  return ids;
}

std::string EventStream::TaskEvent(int64_t task_id, const json& summary) {
  std::string text = Dump(summary);
  std::string& last = tasks_[task_id];
  if (text == last) return {};
  last = std::move(text);
  return SseEvent("task", summary);
}

std::string EventStream::DeviceEvents(Database& db, int64_t now) {
  // Only devices whose rows may have changed since the last look: seen (presence, versions,
  // traffic), crossed the kOnlineSeconds line without traffic, a gateway's sub-devices, and
  // task rows that moved; each sent when it differs from what this stream sent of it. The
  // first look sends nothing (the console reads the lists itself).
  if (since_ == 0) {
    since_ = now;
    return {};
  }
  const int64_t since = since_ - 1;  // a second's overlap: writes in the second of the last look
  since_ = now;
  std::string sql =
      "WITH seen(id) AS (SELECT device_id FROM devices WHERE last_seen >= ?1 OR (last_seen > ?2 "
      "AND last_seen <= ?3) UNION SELECT device_id FROM task_devices WHERE updated_at >= ?1), "
      "cand(id) AS (SELECT id FROM seen UNION SELECT s.device_id FROM devices s JOIN seen ON "
      "s.gateway_id = seen.id) "
      "SELECT d.device_id, " +
      DeviceOnlineSql(now) +
      ", COALESCE(d.fw_version, ''), COALESCE(d.sw_version, ''), x.task_id, x.status, "
      "x.attempts, x.progress, COALESCE(x.package_id, 0), COALESCE(x.result_code, -1), "
      "x.description "
      "FROM cand JOIN devices d ON d.device_id = cand.id LEFT JOIN devices gw ON gw.device_id = "
      "d.gateway_id LEFT JOIN task_devices x ON x.device_id = d.device_id AND x.task_id = "
      "(SELECT task_id FROM task_devices y WHERE y.device_id = d.device_id AND (?4 = 0 OR "
      "y.task_id = ?4) ORDER BY y.task_id DESC LIMIT 1) "
      "WHERE ?4 = 0 OR x.task_id IS NOT NULL ORDER BY d.device_id";
  Statement st = db.Prepare(sql);
  st.Bind(1, since).Bind(2, since - kOnlineSeconds - 1).Bind(3, now - kOnlineSeconds);
  st.Bind(4, task_);
  std::string out;
  while (st.Step()) {
    json e = {{"device_id", st.Text(0)},
              {"online", st.Int(1) != 0},
              {"fw_version", st.Text(2)},
              {"sw_version", st.Text(3)}};
    if (!st.IsNull(4)) {  // its task row, with the fields GET /tasks/{id} lists for it
      e["task_id"] = st.Int(4);
      e["state"] = st.Text(5);
      e["attempts"] = st.Int(6);
      e["progress"] = st.Int(7);
      e["package_id"] = st.Int(8) != 0 ? json(st.Int(8)) : json(nullptr);
      e["result_code"] = st.Int(9) >= 0 ? json(st.Int(9)) : json(nullptr);
      e["description"] = st.Text(10);
    }
    std::string text = Dump(e);
    std::string& last = dev_[st.Text(0)];
    if (text == last) continue;
    last = std::move(text);
    out += SseEvent("device", e);
  }
  return out;
}

}  // namespace ota::server
