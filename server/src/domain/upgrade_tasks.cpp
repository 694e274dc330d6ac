#include "ota/server/upgrade_tasks.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace ota::server {

using nlohmann::json;

struct UpgradeTasks::Row {
  int64_t task_id = 0;
  std::string device_id;
  std::string status;
  int attempts = 0;
  int64_t next_at = 0;
  int64_t package_id = 0;
  int progress = 0;
  int result_code = -1;
  std::string description;
  int wave = 0;
  std::string reported_version;
  int64_t sent_at = 0, activity_at = 0;
  int commands = 0;
  bool resend_due = false;  // the command is to be sent again at next_at
  // from the task
  std::string product_id, target_version;
  int64_t task_package = 0, deadline = 0;
  int retry_count = 0, retry_interval = 0, resend_interval = 60, rate_per_minute = 0;
  bool paused = false;
  std::string kind;        // firmware | software
  std::string gateway_id;  // the device's gateway: its messages go there
};

namespace {

constexpr const char* kOpen = "('Waiting', 'Processing', 'FailWaitRetry')";

bool IsFinal(const std::string& s) {
  return s == "Success" || s == "Fail" || s == "Stopped";
}

constexpr const char* kRowSelect =
    "SELECT d.task_id, d.device_id, d.status, d.attempts, d.next_at, COALESCE(d.package_id, 0), "
    "d.progress, COALESCE(d.result_code, -1), d.description, d.wave, "
    "COALESCE(d.reported_version, ''), d.sent_at, d.activity_at, d.commands, t.product_id, "
    "t.target_version, COALESCE(t.package_id, 0), t.deadline, t.retry_count, t.retry_interval, "
    "t.resend_interval, t.rate_per_minute, t.paused, d.resend_due, t.kind, "
    "COALESCE(v.gateway_id, '') "
    "FROM task_devices d JOIN tasks t ON t.task_id = d.task_id "
    "JOIN devices v ON v.device_id = d.device_id ";

// After the broker reports a device connected it still has to subscribe: what is sent to it
// waits this long (a message before its SUBSCRIBE is dropped by the broker).
constexpr int64_t kSubscribeGrace = 3;
// A version a Waiting device reported stays good for commanding it this long (its version
// changes only through a reboot, after which it reports again).
constexpr int64_t kReportFreshSeconds = 3600;

// A stable order for percentage waves that does not follow the device IDs' order (which
// often follows the production line): FNV-1a of the ID.
uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string TaskName(int64_t id) {
  return "task " + std::to_string(id);
}

}  // namespace

std::string TaskStateSql(int64_t now) {
  return std::string(
             "(CASE WHEN t.stopped != 0 THEN 'cancelled' WHEN NOT EXISTS (SELECT 1 FROM "
             "task_devices o WHERE o.task_id = t.task_id AND o.status IN ") +
         kOpen + ") THEN 'finished' WHEN t.paused != 0 THEN 'paused' WHEN t.start_at > " +
         std::to_string(now) + " THEN 'scheduled' ELSE 'running' END)";
}

std::string SafeUtf8(const std::string& s, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool valid = len != 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      valid = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    }
    if (valid && len > 1) {
      // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 either.
      uint32_t cp = c & (0x7F >> len);
      for (size_t k = 1; k < len; ++k)
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
      valid = cp >= min[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (!valid) len = 1;
    if (out.size() + len > max_bytes) break;
    if (valid) {
      out.append(s, i, len);
    } else {
      out.push_back('?');
    }
    i += len;
  }
  return out;
}

UpgradeTasks::UpgradeTasks(Database& db, Registry& registry, PackageStore& packages, Outbox& outbox,
                           GrantFn grant)
    : db_(db),
      registry_(registry),
      packages_(packages),
      outbox_(outbox),
      grant_(std::move(grant)) {}

// What Create makes of a spec before it writes anything.
struct UpgradeTasks::Plan {
  std::string target;
  int64_t start = 0, deadline = 0;
  std::set<std::string> devices;
  std::map<std::string, int> wave_of;  // device -> its wave
  struct Wave {
    std::string name;
    int threshold;
  };
  std::vector<Wave> waves;
};

UpgradeTasks::Plan UpgradeTasks::MakePlan(const TaskSpec& spec, int64_t now) {
  Plan plan;
  registry_.GetProduct(spec.product_id);
  if (spec.kind != "firmware" && spec.kind != "software") {
    throw ApiError(400, "kind: firmware or software");
  }
  std::string& target = plan.target;
  target = spec.target_version;
  if (spec.package_id != 0) {
    const PackageRecord p = packages_.Get(spec.package_id);
    if (p.product_id != spec.product_id) {
      throw ApiError(
          400, "package " + std::to_string(p.package_id) + " is not of product " + spec.product_id);
    }
    if (p.category != spec.kind) {
      throw ApiError(400, "package " + std::to_string(p.package_id) + " is a " + p.category +
                              " package, the task is " + spec.kind);
    }
    if (!target.empty() && target != p.version) {
      throw ApiError(400, "target_version differs from the package's version " + p.version);
    }
    target = p.version;
  }
  if (target.empty()) throw ApiError(400, "a task needs a target_version or a package_id");
  if (spec.package_id == 0 &&
      !packages_.Choose(spec.product_id, target, "", spec.kind).has_value()) {
    bool any = false;
    for (const PackageRecord& p : packages_.List(spec.product_id))
      any = any || (p.version == target && p.category == spec.kind);
    if (!any) {
      throw ApiError(
          400, "product " + spec.product_id + " has no " + spec.kind + " package for " + target);
    }
  }
  if (spec.retry_count < 0 || spec.retry_count > 5) throw ApiError(400, "retry_count: 0..5");
  if (spec.retry_interval < 1) throw ApiError(400, "retry_interval: at least 1 second");
  if (spec.resend_interval < 5) throw ApiError(400, "resend_interval: at least 5 seconds");
  const RolloutSpec& ro = spec.rollout;
  if (ro.rate_per_minute < 0) throw ApiError(400, "rate_per_minute: 0 (no limit) or more");
  if (ro.failure_threshold < 0 || ro.failure_threshold > 100) {
    throw ApiError(400, "failure_threshold_percent: 0..100");
  }
  for (const WaveSpec& w : ro.waves) {
    const int kinds = (!w.group.empty()) + (w.percent != 0) + (!w.devices.empty());
    if (kinds != 1) throw ApiError(400, "a wave names exactly one of group, percent, devices");
    if (w.percent < 0 || w.percent > 100) throw ApiError(400, "a wave's percent: 1..100");
    if (w.failure_threshold < -1 || w.failure_threshold > 100) {
      throw ApiError(400, "a wave's failure_threshold_percent: 0..100");
    }
  }

  // The targets, set-based: one query per target kind.
  std::set<std::string>& devices = plan.devices;
  for (const std::string& d : spec.devices) {
    if (registry_.GetDevice(d).product_id != spec.product_id) {
      throw ApiError(400, "device " + d + " is not of product " + spec.product_id);
    }
    devices.insert(d);
  }
  for (const std::string& g : spec.groups) {
    for (const std::string& d : registry_.DeviceIds(spec.product_id, g))
      devices.insert(d);
  }
  if (spec.whole_product) {
    for (const std::string& d : registry_.DeviceIds(spec.product_id, ""))
      devices.insert(d);
  }
  if (devices.empty()) throw ApiError(400, "the task has no target devices");

  // Waves: each takes its share of the targets not taken by an earlier one; what is left
  // after the last forms one more wave ("rest").
  std::map<std::string, int>& wave_of = plan.wave_of;
  std::vector<Plan::Wave>& waves = plan.waves;
  std::vector<std::string> shuffled(devices.begin(), devices.end());
  std::stable_sort(shuffled.begin(), shuffled.end(),
                   [](const std::string& a, const std::string& b) { return Fnv1a(a) < Fnv1a(b); });
  for (size_t i = 0; i < ro.waves.size(); ++i) {
    const WaveSpec& w = ro.waves[i];
    const int index = static_cast<int>(waves.size());
    waves.push_back({w.name.empty() ? "wave " + std::to_string(i + 1) : SafeUtf8(w.name, 64),
                     w.failure_threshold >= 0 ? w.failure_threshold : ro.failure_threshold});
    if (!w.group.empty()) {
      for (const std::string& d : registry_.DeviceIds(spec.product_id, w.group)) {
        if (devices.count(d) != 0) wave_of.emplace(d, index);
      }
    } else if (!w.devices.empty()) {
      for (const std::string& d : w.devices) {
        if (devices.count(d) == 0) throw ApiError(400, "wave device " + d + " is not a target");
        wave_of.emplace(d, index);
      }
    } else {
      const size_t want = (devices.size() * static_cast<size_t>(w.percent) + 99) / 100;
      size_t taken = 0;
      for (const std::string& d : shuffled) {
        if (taken == want) break;
        if (wave_of.emplace(d, index).second) ++taken;
      }
    }
  }
  if (wave_of.size() < devices.size()) {
    waves.push_back({ro.waves.empty() ? "all" : "rest", ro.failure_threshold});
    for (const std::string& d : devices)
      wave_of.emplace(d, static_cast<int>(waves.size()) - 1);
  }

  plan.start = spec.start_at != 0 ? spec.start_at : now;
  plan.deadline = spec.deadline != 0 ? spec.deadline : plan.start + kDefaultTaskSeconds;
  if (plan.deadline <= plan.start) throw ApiError(400, "the deadline is before the start");
  return plan;
}

int64_t UpgradeTasks::Create(const TaskSpec& spec, int64_t now) {
  const Plan plan = MakePlan(spec, now);
  const std::string& target = plan.target;
  const std::set<std::string>& devices = plan.devices;
  const std::map<std::string, int>& wave_of = plan.wave_of;
  const std::vector<Plan::Wave>& waves = plan.waves;
  const int64_t start = plan.start, deadline = plan.deadline;
  const RolloutSpec& ro = spec.rollout;

  Transaction tx(db_);
  // One open upgrade per device (the partial unique index task_devices_one_open holds it).
  std::vector<std::pair<std::string, int64_t>> busy;
  {
    Statement open = db_.Prepare(std::string("SELECT device_id, task_id FROM task_devices WHERE "
                                             "status IN ") +
                                 kOpen + " ORDER BY device_id");
    while (open.Step()) {
      if (devices.count(open.Text(0)) != 0) busy.emplace_back(open.Text(0), open.Int(1));
    }
  }
  if (!busy.empty() && !spec.supersede) {
    throw ApiError(409, "device " + busy[0].first + " is in open task " +
                            std::to_string(busy[0].second) +
                            (busy.size() > 1 ? " (and " + std::to_string(busy.size() - 1) +
                                                   " more devices are in open tasks)"
                                             : "") +
                            "; set supersede to replace their upgrades");
  }
  Statement ins = db_.Prepare(
      "INSERT INTO tasks (product_id, name, target_version, package_id, start_at, deadline, "
      "retry_count, retry_interval, created_at, rate_per_minute, resend_interval, kind) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  ins.Bind(1, spec.product_id)
      .Bind(2, spec.name.empty() ? "upgrade to " + target : SafeUtf8(spec.name, 200));
  ins.Bind(3, target);
  if (spec.package_id != 0) {
    ins.Bind(4, spec.package_id);
  } else {
    ins.BindNull(4);
  }
  ins.Bind(5, start).Bind(6, deadline).Bind(7, spec.retry_count).Bind(8, spec.retry_interval);
  ins.Bind(9, now).Bind(10, ro.rate_per_minute).Bind(11, spec.resend_interval);
  ins.Bind(12, spec.kind).Run();
  const int64_t id = db_.LastInsertId();
  Statement supersede = db_.Prepare(
      std::string("UPDATE task_devices SET status = 'Stopped', description = ?, updated_at = ? "
                  "WHERE device_id = ? AND status IN ") +
      kOpen);
  for (const auto& [device, old_task] : busy) {
    supersede.Reset().Bind(1, "superseded by " + TaskName(id)).Bind(2, now).Bind(3, device).Run();
    outbox_.DropFor(old_task, device);
  }
  Statement wave_ins = db_.Prepare(
      "INSERT INTO task_waves (task_id, wave, name, failure_threshold) VALUES (?, ?, ?, ?)");
  for (size_t i = 0; i < waves.size(); ++i) {
    wave_ins.Reset()
        .Bind(1, id)
        .Bind(2, static_cast<int64_t>(i))
        .Bind(3, waves[i].name)
        .Bind(4, waves[i].threshold)
        .Run();
  }
  Statement dev_ins = db_.Prepare(
      "INSERT INTO task_devices (task_id, device_id, status, next_at, updated_at, wave) "
      "VALUES (?, ?, 'Waiting', ?, ?, ?)");
  for (const auto& [device, wave] : wave_of) {
    dev_ins.Reset().Bind(1, id).Bind(2, device).Bind(3, start).Bind(4, now).Bind(5, wave).Run();
  }
  tx.Commit();
  return id;
}

std::optional<PackageRecord> UpgradeTasks::PackageFor(int64_t task_package,
                                                      const std::string& product_id,
                                                      const std::string& target,
                                                      const std::string& version,
                                                      const std::string& kind) {
  if (task_package == 0) return packages_.Choose(product_id, target, version, kind);
  const PackageRecord p = packages_.Get(task_package);
  if (p.kind == "full" || p.source_version == version) return p;
  return std::nullopt;
}

json UpgradeTasks::Preview(const TaskSpec& spec, int64_t now) {
  const Plan plan = MakePlan(spec, now);
  // The versions the devices last reported: what their commands would be chosen from.
  std::map<std::string, std::string> version_of;
  {
    Statement st = db_.Prepare(
        "SELECT device_id, COALESCE(fw_version, ''), COALESCE(sw_version, '') FROM devices "
        "WHERE product_id = ?");
    st.Bind(1, spec.product_id);
    while (st.Step()) {
      if (plan.devices.count(st.Text(0)) != 0) {
        version_of[st.Text(0)] = spec.kind == "software" ? st.Text(2) : st.Text(1);
      }
    }
  }
  std::map<std::string, std::optional<PackageRecord>> chosen;  // by version: one choice each
  int64_t diff = 0, diff_bytes = 0, full = 0, full_bytes = 0, up_to_date = 0, none = 0;
  for (const auto& [device, version] : version_of) {
    if (version == plan.target) {
      ++up_to_date;  // its version report ends its upgrade at once (OnVersionReport)
      continue;
    }
    auto it = chosen.find(version);
    if (it == chosen.end()) {
      it = chosen
               .emplace(version, PackageFor(spec.package_id, spec.product_id, plan.target, version,
                                            spec.kind))
               .first;
    }
    if (!it->second) {
      ++none;
    } else if (it->second->kind == "diff") {
      ++diff;
      diff_bytes += it->second->size;
    } else {
      ++full;
      full_bytes += it->second->size;
    }
  }
  int64_t busy = 0;
  {
    Statement open =
        db_.Prepare(std::string("SELECT device_id FROM task_devices WHERE status IN ") + kOpen);
    while (open.Step())
      busy += static_cast<int64_t>(plan.devices.count(open.Text(0)));
  }
  std::vector<int64_t> wave_sizes(plan.waves.size(), 0);
  for (const auto& [device, wave] : plan.wave_of)
    ++wave_sizes[static_cast<size_t>(wave)];
  json waves = json::array();
  for (size_t i = 0; i < plan.waves.size(); ++i)
    waves.push_back({{"name", plan.waves[i].name}, {"devices", wave_sizes[i]}});
  return {{"devices", static_cast<int64_t>(plan.devices.size())},
          {"diff", {{"devices", diff}, {"bytes", diff_bytes}}},
          {"full", {{"devices", full}, {"bytes", full_bytes}}},
          {"up_to_date", up_to_date},
          {"no_package", none},
          {"in_open_tasks", busy},
          {"waves", waves}};
}

std::string UpgradeTasks::TaskStatus(int64_t task_id) {
  Statement t = db_.Prepare("SELECT stopped FROM tasks WHERE task_id = ?");
  t.Bind(1, task_id);
  if (!t.Step()) throw ApiError(404, "no task " + std::to_string(task_id));
  const bool stopped = t.Int(0) != 0;
  Statement st = db_.Prepare(
      "SELECT status, COUNT(*) FROM task_devices WHERE task_id = ? "
      "GROUP BY status");
  st.Bind(1, task_id);
  int64_t total = 0, success = 0, fail = 0, open = 0, started = 0;
  while (st.Step()) {
    const std::string s = st.Text(0);
    const int64_t n = st.Int(1);
    total += n;
    if (s == "Success") success += n;
    if (s == "Fail") fail += n;
    if (!IsFinal(s)) open += n;
    if (s != "Waiting") started += n;
  }
  if (stopped) return "Stopped";
  if (open > 0) return started > 0 ? "Processing" : "Waiting";
  if (success == total) return "Success";
  if (fail == total) return "Fail";
  return "PartialSuccess";
}

json UpgradeTasks::Get(int64_t task_id, bool with_devices) {
  Statement t = db_.Prepare(
      "SELECT task_id, product_id, name, target_version, COALESCE(package_id, 0), start_at, "
      "deadline, retry_count, retry_interval, stopped, paused, pause_reason, rate_per_minute, "
      "resend_interval, kind FROM tasks WHERE task_id = ?");
  t.Bind(1, task_id);
  if (!t.Step()) throw ApiError(404, "no task " + std::to_string(task_id));
  json j = {{"task_id", t.Int(0)},         {"product_id", t.Text(1)},   {"name", t.Text(2)},
            {"target_version", t.Text(3)}, {"start_at", t.Int(5)},      {"deadline", t.Int(6)},
            {"retry_count", t.Int(7)},     {"retry_interval", t.Int(8)}};
  j["package_id"] = t.Int(4) != 0 ? json(t.Int(4)) : json(nullptr);
  j["rate_per_minute"] = t.Int(12);
  j["resend_interval"] = t.Int(13);
  j["kind"] = t.Text(14);
  j["pause_reason"] = t.Text(11);
  j["status"] = TaskStatus(task_id);

  // Per wave and status, one grouped query.
  json waves = json::array();
  Statement w = db_.Prepare(
      "SELECT wave, name, failure_threshold, threshold_waived FROM task_waves WHERE task_id = ? "
      "ORDER BY wave");
  w.Bind(1, task_id);
  while (w.Step()) {
    waves.push_back({{"wave", w.Int(0)},
                     {"name", w.Text(1)},
                     {"failure_threshold_percent", w.Int(2)},
                     {"threshold_waived", w.Int(3) != 0},
                     {"size", 0},
                     {"counts", json::object()}});
  }
  json counts = json::object();
  Statement c = db_.Prepare(
      "SELECT wave, status, COUNT(*) FROM task_devices WHERE task_id = ? GROUP BY wave, status");
  c.Bind(1, task_id);
  while (c.Step()) {
    const auto wave = static_cast<size_t>(c.Int(0));
    const std::string status = c.Text(1);
    const int64_t n = c.Int(2);
    counts[status] = counts.value(status, int64_t{0}) + n;
    if (wave < waves.size()) {
      waves[wave]["counts"][status] = n;
      waves[wave]["size"] = waves[wave]["size"].get<int64_t>() + n;
    }
  }
  int active = -1;
  for (json& wave : waves) {
    int64_t open = 0;
    for (const char* s : {"Waiting", "Processing", "FailWaitRetry"})
      open += wave["counts"].value(s, int64_t{0});
    if (open > 0 && active < 0) active = wave["wave"].get<int>();
    wave["state"] = open == 0 ? "done" : active == wave["wave"].get<int>() ? "active" : "pending";
  }
  j["waves"] = waves;
  j["counts"] = counts;
  Statement state =
      db_.Prepare("SELECT " + TaskStateSql(std::time(nullptr)) + " FROM tasks t WHERE task_id = ?");
  j["state"] = state.Bind(1, task_id).Step() ? state.Text(0) : std::string();
  if (with_devices) {
    json devices = json::array();
    Statement d = db_.Prepare(
        "SELECT device_id, status, attempts, COALESCE(package_id, 0), progress, "
        "COALESCE(result_code, -1), description, wave, commands FROM task_devices "
        "WHERE task_id = ? ORDER BY device_id");
    d.Bind(1, task_id);
    while (d.Step()) {
      json dev = {{"device_id", d.Text(0)}, {"status", d.Text(1)},      {"attempts", d.Int(2)},
                  {"progress", d.Int(4)},   {"description", d.Text(6)}, {"wave", d.Int(7)},
                  {"commands", d.Int(8)}};
      dev["package_id"] = d.Int(3) != 0 ? json(d.Int(3)) : json(nullptr);
      dev["result_code"] = d.Int(5) >= 0 ? json(d.Int(5)) : json(nullptr);
      devices.push_back(dev);
    }
    j["devices"] = devices;
  }
  return j;
}

json UpgradeTasks::List() {
  std::vector<int64_t> ids;
  Statement st = db_.Prepare("SELECT task_id FROM tasks ORDER BY task_id");
  while (st.Step())
    ids.push_back(st.Int(0));
  json out = json::array();
  for (int64_t id : ids)
    out.push_back(Get(id, false));
  return out;
}

void UpgradeTasks::Stop(int64_t task_id, int64_t now) {
  Transaction tx(db_);
  Statement t = db_.Prepare("SELECT stopped FROM tasks WHERE task_id = ?");
  t.Bind(1, task_id);
  if (!t.Step()) throw ApiError(404, "no task " + std::to_string(task_id));
  if (t.Int(0) != 0) throw ApiError(409, TaskName(task_id) + " is already cancelled");
  const int stopped =
      db_.Prepare(std::string("UPDATE task_devices SET status = 'Stopped', description = 'task "
                              "cancelled', updated_at = ? WHERE task_id = ? AND status IN ") +
                  kOpen)
          .Bind(1, now)
          .Bind(2, task_id)
          .Run();
  if (stopped == 0) throw ApiError(409, TaskName(task_id) + " has already ended");
  outbox_.DropFor(task_id);  // commands not yet out must not reach the devices
  db_.Prepare("UPDATE tasks SET stopped = 1, finished_at = ? WHERE task_id = ?")
      .Bind(1, now)
      .Bind(2, task_id)
      .Run();
  tx.Commit();
}

void UpgradeTasks::Pause(int64_t task_id, const std::string& reason, int64_t) {
  Transaction tx(db_);
  const std::string status = TaskStatus(task_id);
  if (status != "Waiting" && status != "Processing") {
    throw ApiError(409, TaskName(task_id) + " has ended (" + status + ")");
  }
  db_.Prepare("UPDATE tasks SET paused = 1, pause_reason = ? WHERE task_id = ?")
      .Bind(1, reason.empty() ? std::string("paused by the operator") : SafeUtf8(reason, 200))
      .Bind(2, task_id)
      .Run();
  tx.Commit();
}

void UpgradeTasks::Resume(int64_t task_id, int64_t now) {
  Transaction tx(db_);
  const std::string status = TaskStatus(task_id);
  if (status != "Waiting" && status != "Processing") {
    throw ApiError(409, TaskName(task_id) + " has ended (" + status + ")");
  }
  Statement p = db_.Prepare("SELECT paused FROM tasks WHERE task_id = ?");
  p.Bind(1, task_id);
  if (!p.Step() || p.Int(0) == 0) throw ApiError(409, TaskName(task_id) + " is not paused");
  const int active = ActiveWave(task_id);
  db_.Prepare("UPDATE tasks SET paused = 0, pause_reason = '' WHERE task_id = ?")
      .Bind(1, task_id)
      .Run();
  // Resuming accepts the failures so far: the threshold of the waves up to the active one is
  // waived (later waves keep theirs).
  db_.Prepare("UPDATE task_waves SET threshold_waived = 1 WHERE task_id = ? AND wave <= ?")
      .Bind(1, task_id)
      .Bind(2, active)
      .Run();
  db_.Prepare(std::string("UPDATE task_devices SET next_at = ? WHERE task_id = ? AND status IN ") +
              kOpen)
      .Bind(1, now)
      .Bind(2, task_id)
      .Run();
  tx.Commit();
}

std::vector<UpgradeTasks::Row> UpgradeTasks::Rows(const std::string& where,
                                                  const std::function<void(Statement&)>& bind) {
  Statement st = db_.Prepare(std::string(kRowSelect) + where);
  bind(st);
  std::vector<Row> rows;
  while (st.Step()) {
    Row r;
    r.task_id = st.Int(0);
    r.device_id = st.Text(1);
    r.status = st.Text(2);
    r.attempts = static_cast<int>(st.Int(3));
    r.next_at = st.Int(4);
    r.package_id = st.Int(5);
    r.progress = static_cast<int>(st.Int(6));
    r.result_code = static_cast<int>(st.Int(7));
    r.description = st.Text(8);
    r.wave = static_cast<int>(st.Int(9));
    r.reported_version = st.Text(10);
    r.sent_at = st.Int(11);
    r.activity_at = st.Int(12);
    r.commands = static_cast<int>(st.Int(13));
    r.product_id = st.Text(14);
    r.target_version = st.Text(15);
    r.task_package = st.Int(16);
    r.deadline = st.Int(17);
    r.retry_count = static_cast<int>(st.Int(18));
    r.retry_interval = static_cast<int>(st.Int(19));
    r.resend_interval = static_cast<int>(st.Int(20));
    r.rate_per_minute = static_cast<int>(st.Int(21));
    r.paused = st.Int(22) != 0;
    r.resend_due = st.Int(23) != 0;
    r.kind = st.Text(24);
    r.gateway_id = st.Text(25);
    rows.push_back(std::move(r));
  }
  return rows;
}

std::optional<UpgradeTasks::Row> UpgradeTasks::OpenRow(const std::string& device_id, int64_t now) {
  std::vector<Row> rows = Rows(std::string("WHERE d.device_id = ? AND d.status IN ") + kOpen +
                                   " AND t.stopped = 0 AND t.start_at <= ?",
                               [&](Statement& st) { st.Bind(1, device_id).Bind(2, now); });
  if (rows.empty()) return std::nullopt;
  return rows.front();
}

void UpgradeTasks::Update(const Row& r, int64_t now) {
  Statement st = db_.Prepare(
      "UPDATE task_devices SET status = ?, attempts = ?, next_at = ?, package_id = ?, "
      "progress = ?, result_code = ?, description = ?, updated_at = ?, reported_version = ?, "
      "sent_at = ?, activity_at = ?, commands = ?, resend_due = ? WHERE task_id = ? AND "
      "device_id = ?");
  st.Bind(1, r.status).Bind(2, r.attempts).Bind(3, r.next_at);
  if (r.package_id != 0) {
    st.Bind(4, r.package_id);
  } else {
    st.BindNull(4);
  }
  st.Bind(5, r.progress);
  if (r.result_code >= 0) {
    st.Bind(6, r.result_code);
  } else {
    st.BindNull(6);
  }
  st.Bind(7, r.description).Bind(8, now);
  if (r.reported_version.empty()) {
    st.BindNull(9);
  } else {
    st.Bind(9, r.reported_version);
  }
  st.Bind(10, r.sent_at).Bind(11, r.activity_at).Bind(12, r.commands).Bind(13, r.resend_due);
  st.Bind(14, r.task_id).Bind(15, r.device_id).Run();
}

int UpgradeTasks::ActiveWave(int64_t task_id) {
  Statement st = db_.Prepare(
      std::string("SELECT MIN(wave) FROM task_devices WHERE task_id = ? AND status IN ") + kOpen);
  st.Bind(1, task_id);
  return st.Step() && !st.IsNull(0) ? static_cast<int>(st.Int(0)) : -1;
}

int UpgradeTasks::CommandBudget(const Row& r, int64_t now) {
  if (r.rate_per_minute <= 0) return 1 << 30;
  Statement st = db_.Prepare("SELECT COUNT(*) FROM task_devices WHERE task_id = ? AND sent_at > ?");
  st.Bind(1, r.task_id).Bind(2, now - 60);
  const int sent = st.Step() ? static_cast<int>(st.Int(0)) : 0;
  return std::max(0, r.rate_per_minute - sent);
}

void UpgradeTasks::Succeed(Row& r, const std::string& description, int64_t now) {
  r.status = "Success";
  r.progress = 100;
  r.description = description;
  Update(r, now);
  // The device runs the target now; its next version_report will say the same.
  db_.Prepare(r.kind == "software" ? "UPDATE devices SET sw_version = ? WHERE device_id = ?"
                                   : "UPDATE devices SET fw_version = ? WHERE device_id = ?")
      .Bind(1, r.target_version)
      .Bind(2, r.device_id)
      .Run();
  AfterFinal(r, now);
}

void UpgradeTasks::Fail(Row& r, const std::string& description, int64_t now) {
  r.status = "Fail";
  r.description = description;
  Update(r, now);
  AfterFinal(r, now);
}

void UpgradeTasks::AfterFinal(const Row& r, int64_t now) {
  Statement w = db_.Prepare(
      "SELECT failure_threshold, threshold_waived, name FROM task_waves WHERE task_id = ? AND "
      "wave = ?");
  w.Bind(1, r.task_id).Bind(2, r.wave);
  if (w.Step() && w.Int(1) == 0 && !r.paused) {
    const int64_t threshold = w.Int(0);
    const std::string name = w.Text(2);
    Statement c = db_.Prepare(
        "SELECT COUNT(*), SUM(status = 'Fail') FROM task_devices WHERE task_id = ? AND wave = ?");
    c.Bind(1, r.task_id).Bind(2, r.wave);
    if (c.Step()) {
      const int64_t size = c.Int(0), failed = c.Int(1);
      if (failed * 100 > threshold * size) {
        db_.Prepare("UPDATE tasks SET paused = 1, pause_reason = ? WHERE task_id = ?")
            .Bind(1, "wave " + std::to_string(r.wave + 1) + " (" + name +
                         "): " + std::to_string(failed) + " of " + std::to_string(size) +
                         " devices failed, over the threshold of " + std::to_string(threshold) +
                         "%")
            .Bind(2, r.task_id)
            .Run();
      }
    }
  }
  // The wave is done: the next one starts at the next tick.
  Statement open = db_.Prepare(
      std::string("SELECT 1 FROM task_devices WHERE task_id = ? AND wave = ? AND status IN ") +
      kOpen + " LIMIT 1");
  open.Bind(1, r.task_id).Bind(2, r.wave);
  if (open.Step()) return;
  const int next = ActiveWave(r.task_id);
  if (next < 0) {
    db_.Prepare("UPDATE tasks SET finished_at = ? WHERE task_id = ? AND finished_at IS NULL")
        .Bind(1, now)
        .Bind(2, r.task_id)
        .Run();
    return;
  }
  db_.Prepare(
         "UPDATE task_devices SET next_at = ? WHERE task_id = ? AND wave = ? AND "
         "status = 'Waiting'")
      .Bind(1, now)
      .Bind(2, r.task_id)
      .Bind(3, next)
      .Run();
}

void UpgradeTasks::Command(Row& r, const std::string& fw, int64_t now,
                           std::vector<QueuedMessage>* out) {
  std::optional<PackageRecord> pkg;
  if (r.status == "Processing" && r.package_id != 0) {
    pkg = packages_.Get(r.package_id);  // a re-send: the same package, a fresh token
  } else {
    pkg = PackageFor(r.task_package, r.product_id, r.target_version, fw, r.kind);
  }
  if (!pkg) {
    Fail(r,
         "no package from " + (fw.empty() ? std::string("(no version)") : SafeUtf8(fw, 64)) +
             " to " + r.target_version,
         now);
    return;
  }
  const int64_t expires = std::min(r.deadline, now + kMaxTokenSeconds);
  const json paras = grant_(r.device_id, *pkg, expires, r.task_id);
  out->push_back(outbox_.Add(r.kind == "software"
                                 ? SoftwareUpgrade(r.device_id, paras, r.gateway_id)
                                 : FirmwareUpgrade(r.device_id, paras, r.gateway_id),
                             now, r.task_id, r.device_id));
  r.resend_due = false;
  const bool resend = r.status == "Processing" && r.package_id == pkg->package_id;
  r.status = "Processing";
  r.package_id = pkg->package_id;
  if (!resend) {
    r.progress = 0;
    r.result_code = -1;
  }
  ++r.commands;
  r.description = r.kind + (resend ? "_upgrade re-sent (" : "_upgrade sent (") + pkg->kind +
                  " package " + std::to_string(pkg->package_id) + ")";
  r.sent_at = now;
  r.next_at = std::min(r.deadline, now + r.resend_interval);
  Update(r, now);
}

std::vector<QueuedMessage> UpgradeTasks::Tick(int64_t now) {
  std::vector<QueuedMessage> out;
  std::vector<int64_t> tasks;
  {
    Statement st = db_.Prepare(
        "SELECT task_id FROM tasks WHERE stopped = 0 AND finished_at IS NULL AND start_at <= ? "
        "ORDER BY task_id");
    st.Bind(1, now);
    while (st.Step())
      tasks.push_back(st.Int(0));
  }
  int queries = kQueriesPerTick;
  for (int64_t id : tasks) {
    Transaction tx(db_);
    TickTask(id, now, &queries, &out);
    tx.Commit();
  }
  return out;
}

void UpgradeTasks::TickTask(int64_t task_id, int64_t now, int* queries,
                            std::vector<QueuedMessage>* out) {
  Statement t = db_.Prepare("SELECT deadline, paused FROM tasks WHERE task_id = ?");
  t.Bind(1, task_id);
  if (!t.Step()) return;
  const int64_t deadline = t.Int(0);
  const bool paused = t.Int(1) != 0;
  if (now >= deadline) {
    // Set-based: a fleet's worth of rows ends in one statement.
    db_.Prepare(std::string("UPDATE task_devices SET status = 'Fail', updated_at = ?1, "
                            "description = CASE status WHEN 'Processing' THEN 'no result before "
                            "the deadline' ELSE 'deadline passed (device offline?)' END "
                            "WHERE task_id = ?2 AND status IN ") +
                kOpen)
        .Bind(1, now)
        .Bind(2, task_id)
        .Run();
    db_.Prepare("UPDATE tasks SET finished_at = ? WHERE task_id = ?")
        .Bind(1, now)
        .Bind(2, task_id)
        .Run();
    return;
  }
  if (paused) return;  // devices already upgrading report on their own
  const int wave = ActiveWave(task_id);
  if (wave < 0) {
    db_.Prepare("UPDATE tasks SET finished_at = ? WHERE task_id = ? AND finished_at IS NULL")
        .Bind(1, now)
        .Bind(2, task_id)
        .Run();
    return;
  }
  std::vector<Row> due = Rows(
      std::string("WHERE d.task_id = ? AND d.wave = ? AND d.status IN ") + kOpen +
          " AND d.next_at <= ? ORDER BY d.next_at LIMIT ?",
      [&](Statement& st) {
        st.Bind(1, task_id).Bind(2, wave).Bind(3, now).Bind(4, static_cast<int64_t>(kRowsPerTick));
      });
  int budget = due.empty() ? 0 : CommandBudget(due.front(), now);
  // A rate-limited task asks only about as many devices as it may command soon: asking a
  // whole wave that waits hours for its turn would only be asked again.
  int task_queries = due.empty() || due.front().rate_per_minute <= 0
                         ? kQueriesPerTick
                         : std::max(1, due.front().rate_per_minute / 30);
  Statement paused_now = db_.Prepare("SELECT paused FROM tasks WHERE task_id = ?");
  for (Row& r : due) {
    // A device that failed in this tick may have tripped the wave's threshold.
    if (paused_now.Reset().Bind(1, task_id).Step() && paused_now.Int(0) != 0) break;
    if (r.status == "FailWaitRetry") {
      r.status = "Waiting";  // and ask again below
      r.reported_version.clear();
    }
    if (r.status == "Processing") {
      const int64_t news = std::max(r.sent_at, r.activity_at);
      if (r.resend_due || now - news >= r.resend_interval) {
        // No word since the command or the last progress: it was lost (broker outage, a
        // device offline when it was sent, a crash before it left). Send it again, within
        // the rate limit (a re-sent command may start a download too).
        if (budget <= 0) continue;
        --budget;
        Command(r, r.reported_version, now, out);
      } else {
        r.next_at = std::min(r.deadline, news + r.resend_interval);
        Update(r, now);
      }
      continue;
    }
    // Waiting: a fresh version report is enough to command; else ask (within this tick's
    // share of queries, so a new task's fleet is asked over several ticks).
    if (!r.reported_version.empty() && now - r.activity_at < kReportFreshSeconds) {
      if (budget <= 0) continue;  // rate limit: stays due
      --budget;
      Command(r, r.reported_version, now, out);
      continue;
    }
    if (*queries <= 0 || task_queries <= 0) break;
    --*queries;
    --task_queries;
    out->push_back(
        outbox_.Add(VersionQuery(r.device_id, r.gateway_id), now, r.task_id, r.device_id));
    r.next_at = now + kQueryInterval;
    r.description = "version_query sent";
    Update(r, now);
  }
}

std::vector<QueuedMessage> UpgradeTasks::OnVersionReport(const std::string& device_id,
                                                         const std::string& fw_version,
                                                         const std::string& sw_version,
                                                         int64_t now) {
  std::vector<QueuedMessage> out;
  Transaction tx(db_);
  registry_.SetVersions(device_id, SafeUtf8(fw_version, 64), SafeUtf8(sw_version, 64));
  std::optional<Row> row = OpenRow(device_id, now);
  if (row) {
    Row& r = *row;
    // What the task compares: the firmware's version, or the software's (SOTA); one the report
    // left out is the one stored before.
    const Device known = registry_.GetDevice(device_id);
    const std::string fw = r.kind == "software" ? known.sw_version : known.fw_version;
    if (fw == r.target_version) {
      Succeed(r, r.package_id != 0 ? "running " + fw : "already on " + fw, now);
    } else if (r.status == "Waiting") {
      r.reported_version = SafeUtf8(fw, 64);
      r.activity_at = now;
      if (!r.paused && r.wave == ActiveWave(r.task_id) && CommandBudget(r, now) > 0) {
        Command(r, fw, now, &out);
      } else {
        r.next_at = std::min(r.next_at, now);  // the tick commands it when it may
        r.description = r.paused ? "version reported; task paused" : "version reported; queued";
        Update(r, now);
      }
    } else if (r.status == "Processing" && now - r.sent_at >= kMinResendGap && !r.paused) {
      // Still on the old version and not upgrading: the command never arrived.
      r.reported_version = SafeUtf8(fw, 64);
      if (CommandBudget(r, now) > 0) {
        Command(r, fw, now, &out);
      } else {
        r.resend_due = true;  // within the rate limit, from the tick
        r.next_at = now;
        Update(r, now);
      }
    } else {
      r.reported_version = SafeUtf8(fw, 64);
      Update(r, now);
    }
  }
  tx.Commit();
  return out;
}

std::vector<QueuedMessage> UpgradeTasks::OnProgress(const std::string& device_id, const json& paras,
                                                    int64_t now) {
  if (!paras.contains("result_code") || !paras["result_code"].is_number_integer() ||
      !paras.contains("version") || !paras["version"].is_string()) {
    throw ApiError(400, "upgrade_progress_report: result_code and version are required");
  }
  const int code = paras["result_code"];
  const std::string version = paras["version"];
  const int progress = paras.contains("progress") && paras["progress"].is_number_integer()
                           ? std::clamp(paras["progress"].get<int>(), 0, 100)
                           : 0;
  const std::string text = paras.contains("description") && paras["description"].is_string()
                               ? SafeUtf8(paras["description"].get<std::string>(), 200)
                               : std::string();
  Transaction tx(db_);
  std::optional<Row> row = OpenRow(device_id, now);
  if (row) {
    Row& r = *row;
    r.activity_at = now;
    // Result 3 (already the latest) from the target version: a re-sent command found the
    // device already upgraded.
    if ((code == 0 || code == 3) && version == r.target_version) {
      r.result_code = 0;
      Succeed(r, "running " + version, now);  // result 0 from the new version: it booted
    } else if (r.status != "Processing") {
      Update(r, now);  // a report for an attempt that already ended
    } else if (code != 0) {
      r.result_code = code;
      ++r.attempts;
      r.description =
          "device reported result " + std::to_string(code) + (text.empty() ? "" : ": " + text);
      if (r.attempts <= r.retry_count) {
        r.status = "FailWaitRetry";
        r.next_at = now + r.retry_interval;
        Update(r, now);
      } else {
        Fail(r, r.description, now);
      }
    } else {
      r.result_code = 0;
      r.progress = progress;
      r.description = text.empty() ? "progress " + std::to_string(progress) : text;
      r.next_at = std::min(r.deadline, now + r.resend_interval);
      Update(r, now);
    }
  }
  tx.Commit();
  return {};
}

std::vector<QueuedMessage> UpgradeTasks::OnConnected(const std::string& device_id, int64_t now) {
  // Nothing is sent from here: the device subscribes only after its CONNACK, and a message
  // that reaches the broker first is dropped. The tick sends after kSubscribeGrace (devices
  // that report their version on connect are commanded from that report instead).
  Transaction tx(db_);
  std::optional<Row> row = OpenRow(device_id, now);
  if (row && !row->paused && row->wave == ActiveWave(row->task_id)) {
    Row& r = *row;
    if (r.status == "Waiting" && r.next_at > now + kSubscribeGrace) {
      r.next_at = now + kSubscribeGrace;  // not after kQueryInterval
      Update(r, now);
    } else if (r.status == "Processing" && now - r.sent_at >= kMinResendGap &&
               r.activity_at <= r.sent_at) {
      r.resend_due = true;  // back after the command was sent: again
      r.next_at = now + kSubscribeGrace;
      Update(r, now);
    }
  }
  tx.Commit();
  return {};
}

bool UpgradeTasks::DownloadAllowed(Database& db, int64_t task_id, const std::string& device_id,
                                   int64_t package_id, int64_t generation) {
  if (task_id == 0) {
    return db
        .Prepare(
            "SELECT 1 FROM devices v LEFT JOIN devices g ON g.device_id = v.gateway_id "
            "WHERE v.device_id = ? AND v.generation = ? AND v.enabled = 1 AND "
            "(v.gateway_id IS NULL OR g.enabled = 1)")
        .Bind(1, device_id)
        .Bind(2, generation)
        .Step();
  }
  // A sub-device's download is made by its gateway, which must be enabled too.
  return db
      .Prepare(
          "SELECT 1 FROM task_devices d JOIN tasks t ON t.task_id = d.task_id JOIN devices v ON "
          "v.device_id = d.device_id LEFT JOIN devices g ON g.device_id = v.gateway_id "
          "WHERE d.task_id = ? AND d.device_id = ? AND d.package_id = ? "
          "AND d.status = 'Processing' AND t.stopped = 0 AND v.enabled = 1 "
          "AND v.generation = ? AND (v.gateway_id IS NULL OR g.enabled = 1)")
      .Bind(1, task_id)
      .Bind(2, device_id)
      .Bind(3, package_id)
      .Bind(4, generation)
      .Step();
}

}  // namespace ota::server
