#include "ota/server/upgrade_tasks.hpp"

#include <algorithm>
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
  // from the task
  std::string product_id, target_version;
  int64_t task_package = 0, deadline = 0;
  int retry_count = 0, retry_interval = 0;
};

namespace {

bool IsFinal(const std::string& s) {
  return s == "Success" || s == "Fail" || s == "Stopped";
}

constexpr const char* kRowSelect =
    "SELECT d.task_id, d.device_id, d.status, d.attempts, d.next_at, COALESCE(d.package_id, 0), "
    "d.progress, COALESCE(d.result_code, -1), d.description, t.product_id, t.target_version, "
    "COALESCE(t.package_id, 0), t.deadline, t.retry_count, t.retry_interval "
    "FROM task_devices d JOIN tasks t ON t.task_id = d.task_id ";

}  // namespace

UpgradeTasks::UpgradeTasks(Database& db, Registry& registry, PackageStore& packages, GrantFn grant)
    : db_(db), registry_(registry), packages_(packages), grant_(std::move(grant)) {}

int64_t UpgradeTasks::Create(const TaskSpec& spec, int64_t now) {
  registry_.GetProduct(spec.product_id);
  std::string target = spec.target_version;
  if (spec.package_id != 0) {
    const PackageRecord p = packages_.Get(spec.package_id);
    if (p.product_id != spec.product_id) {
      throw ApiError(
          400, "package " + std::to_string(p.package_id) + " is not of product " + spec.product_id);
    }
    if (!target.empty() && target != p.version) {
      throw ApiError(400, "target_version differs from the package's version " + p.version);
    }
    target = p.version;
  }
  if (target.empty()) throw ApiError(400, "a task needs a target_version or a package_id");
  if (spec.package_id == 0 && !packages_.Choose(spec.product_id, target, "").has_value()) {
    bool any = false;
    for (const PackageRecord& p : packages_.List(spec.product_id))
      any = any || p.version == target;
    if (!any) throw ApiError(400, "product " + spec.product_id + " has no package for " + target);
  }
  if (spec.retry_count < 0 || spec.retry_count > 5) throw ApiError(400, "retry_count: 0..5");
  if (spec.retry_interval < 1) throw ApiError(400, "retry_interval: at least 1 second");

  std::set<std::string> devices(spec.devices.begin(), spec.devices.end());
  for (const std::string& d : spec.devices) {
    if (registry_.GetDevice(d).product_id != spec.product_id) {
      throw ApiError(400, "device " + d + " is not of product " + spec.product_id);
    }
  }
  for (const std::string& g : spec.groups) {
    for (const Device& d : registry_.ListDevices(spec.product_id, g))
      devices.insert(d.device_id);
  }
  if (spec.whole_product) {
    for (const Device& d : registry_.ListDevices(spec.product_id, ""))
      devices.insert(d.device_id);
  }
  if (devices.empty()) throw ApiError(400, "the task has no target devices");

  const int64_t start = spec.start_at != 0 ? spec.start_at : now;
  const int64_t deadline = spec.deadline != 0 ? spec.deadline : start + kDefaultTaskSeconds;
  if (deadline <= start) throw ApiError(400, "the deadline is before the start");
  Transaction tx(db_);
  Statement ins = db_.Prepare(
      "INSERT INTO tasks (product_id, name, target_version, package_id, start_at, deadline, "
      "retry_count, retry_interval, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  ins.Bind(1, spec.product_id).Bind(2, spec.name.empty() ? "upgrade to " + target : spec.name);
  ins.Bind(3, target);
  if (spec.package_id != 0) {
    ins.Bind(4, spec.package_id);
  } else {
    ins.BindNull(4);
  }
  ins.Bind(5, start).Bind(6, deadline).Bind(7, spec.retry_count).Bind(8, spec.retry_interval);
  ins.Bind(9, now).Run();
  const int64_t id = db_.LastInsertId();
  for (const std::string& d : devices) {
    db_.Prepare(
           "INSERT INTO task_devices (task_id, device_id, status, next_at, updated_at) "
           "VALUES (?, ?, 'Waiting', ?, ?)")
        .Bind(1, id)
        .Bind(2, d)
        .Bind(3, start)
        .Bind(4, now)
        .Run();
  }
  tx.Commit();
  return id;
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

json UpgradeTasks::Get(int64_t task_id) {
  Statement t = db_.Prepare(
      "SELECT task_id, product_id, name, target_version, COALESCE(package_id, 0), start_at, "
      "deadline, retry_count, retry_interval FROM tasks WHERE task_id = ?");
  t.Bind(1, task_id);
  if (!t.Step()) throw ApiError(404, "no task " + std::to_string(task_id));
  json j = {{"task_id", t.Int(0)},         {"product_id", t.Text(1)},   {"name", t.Text(2)},
            {"target_version", t.Text(3)}, {"start_at", t.Int(5)},      {"deadline", t.Int(6)},
            {"retry_count", t.Int(7)},     {"retry_interval", t.Int(8)}};
  j["package_id"] = t.Int(4) != 0 ? json(t.Int(4)) : json(nullptr);
  j["status"] = TaskStatus(task_id);
  json devices = json::array();
  json counts = json::object();
  Statement d = db_.Prepare(
      "SELECT device_id, status, attempts, COALESCE(package_id, 0), progress, "
      "COALESCE(result_code, -1), description FROM task_devices WHERE task_id = ? "
      "ORDER BY device_id");
  d.Bind(1, task_id);
  while (d.Step()) {
    json dev = {{"device_id", d.Text(0)},
                {"status", d.Text(1)},
                {"attempts", d.Int(2)},
                {"progress", d.Int(4)},
                {"description", d.Text(6)}};
    dev["package_id"] = d.Int(3) != 0 ? json(d.Int(3)) : json(nullptr);
    dev["result_code"] = d.Int(5) >= 0 ? json(d.Int(5)) : json(nullptr);
    counts[d.Text(1)] = counts.value(d.Text(1), 0) + 1;
    devices.push_back(dev);
  }
  j["devices"] = devices;
  j["counts"] = counts;
  return j;
}

json UpgradeTasks::List() {
  std::vector<int64_t> ids;
  Statement st = db_.Prepare("SELECT task_id FROM tasks ORDER BY task_id");
  while (st.Step())
    ids.push_back(st.Int(0));
  json out = json::array();
  for (int64_t id : ids) {
    json t = Get(id);
    t.erase("devices");
    out.push_back(t);
  }
  return out;
}

void UpgradeTasks::Stop(int64_t task_id, int64_t now) {
  Transaction tx(db_);
  if (db_.Prepare("UPDATE tasks SET stopped = 1 WHERE task_id = ?").Bind(1, task_id).Run() != 1) {
    throw ApiError(404, "no task " + std::to_string(task_id));
  }
  db_.Prepare(
         "UPDATE task_devices SET status = 'Stopped', description = 'task stopped', "
         "updated_at = ? WHERE task_id = ? AND status NOT IN ('Success', 'Fail', 'Stopped')")
      .Bind(1, now)
      .Bind(2, task_id)
      .Run();
  tx.Commit();
}

std::vector<UpgradeTasks::Row> UpgradeTasks::ActiveRows(const std::string& device_id, int64_t now) {
  Statement st = db_.Prepare(
      std::string(kRowSelect) +
      "WHERE t.stopped = 0 AND t.start_at <= ? AND (? = '' OR d.device_id = ?) AND d.status IN "
      "('Waiting', 'Processing', 'FailWaitRetry') ORDER BY d.task_id, d.device_id");
  st.Bind(1, now).Bind(2, device_id).Bind(3, device_id);
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
    r.product_id = st.Text(9);
    r.target_version = st.Text(10);
    r.task_package = st.Int(11);
    r.deadline = st.Int(12);
    r.retry_count = static_cast<int>(st.Int(13));
    r.retry_interval = static_cast<int>(st.Int(14));
    rows.push_back(r);
  }
  return rows;
}

void UpgradeTasks::Update(const Row& r, int64_t now) {
  Statement st = db_.Prepare(
      "UPDATE task_devices SET status = ?, attempts = ?, next_at = ?, package_id = ?, "
      "progress = ?, result_code = ?, description = ?, updated_at = ? WHERE task_id = ? AND "
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
  st.Bind(7, r.description).Bind(8, now).Bind(9, r.task_id).Bind(10, r.device_id).Run();
}

std::vector<Outgoing> UpgradeTasks::Tick(int64_t now) {
  std::vector<Outgoing> out;
  Transaction tx(db_);
  for (Row r : ActiveRows("", now)) {
    if (now >= r.deadline) {
      r.description = r.status == "Processing" ? "no result before the deadline"
                                               : "deadline passed (device offline?)";
      r.status = "Fail";
      Update(r, now);
      continue;
    }
    if (r.status == "FailWaitRetry" && r.next_at <= now) {
      r.status = "Waiting";  // and ask again below
    }
    if (r.status == "Waiting" && r.next_at <= now) {
      out.push_back(VersionQuery(r.device_id));
      r.next_at = now + kQueryInterval;
      r.description = "version_query sent";
      Update(r, now);
    }
  }
  tx.Commit();
  return out;
}

std::vector<Outgoing> UpgradeTasks::OnVersionReport(const std::string& device_id,
                                                    const std::string& fw, const std::string& sw,
                                                    int64_t now) {
  std::vector<Outgoing> out;
  Transaction tx(db_);
  registry_.SetVersions(device_id, fw, sw);
  for (Row r : ActiveRows(device_id, now)) {
    if (fw == r.target_version) {
      r.status = "Success";
      r.progress = 100;
      r.description = r.package_id != 0 ? "running " + fw : "already on " + fw;
      Update(r, now);
      continue;
    }
    if (r.status != "Waiting") continue;  // Processing: the progress report decides
    std::optional<PackageRecord> pkg;
    if (r.task_package != 0) {
      const PackageRecord p = packages_.Get(r.task_package);
      if (p.kind == "full" || p.source_version == fw) pkg = p;
    } else {
      pkg = packages_.Choose(r.product_id, r.target_version, fw);
    }
    if (!pkg) {
      r.status = "Fail";
      r.description = "no package from " + (fw.empty() ? std::string("(no version)") : fw) +
                      " to " + r.target_version;
      Update(r, now);
      continue;
    }
    out.push_back(FirmwareUpgrade(device_id, grant_(device_id, *pkg, r.deadline)));
    r.status = "Processing";
    r.package_id = pkg->package_id;
    r.progress = 0;
    r.result_code = -1;
    r.description =
        "firmware_upgrade sent (" + pkg->kind + " package " + std::to_string(pkg->package_id) + ")";
    r.next_at = r.deadline;
    Update(r, now);
  }
  tx.Commit();
  return out;
}

std::vector<Outgoing> UpgradeTasks::OnProgress(const std::string& device_id, const json& paras,
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
                               ? paras["description"].get<std::string>().substr(0, 200)
                               : std::string();
  Transaction tx(db_);
  for (Row r : ActiveRows(device_id, now)) {
    if (r.status != "Processing") continue;
    r.result_code = code;
    if (code != 0) {
      ++r.attempts;
      r.description =
          "device reported result " + std::to_string(code) + (text.empty() ? "" : ": " + text);
      if (r.attempts <= r.retry_count) {
        r.status = "FailWaitRetry";
        r.next_at = now + r.retry_interval;
      } else {
        r.status = "Fail";
      }
    } else if (version == r.target_version) {
      r.status = "Success";  // result 0 from the new version: it booted
      r.progress = 100;
      r.description = "running " + version;
    } else {
      r.progress = progress;
      r.description = text.empty() ? "progress " + std::to_string(progress) : text;
    }
    Update(r, now);
  }
  tx.Commit();
  return {};
}

}  // namespace ota::server
