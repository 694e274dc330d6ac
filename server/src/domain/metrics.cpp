#include "ota/server/metrics.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <set>

#include "ota/server/database.hpp"
#include "ota/server/http_api.hpp"
#include "ota/server/registry.hpp"

namespace ota::server {

namespace {

constexpr int kStatuses = 600;

// Seconds: API calls are milliseconds, a download range a few, a whole file up to 60 s.
const std::vector<double> kApiBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10};
const std::vector<double> kDownloadBuckets = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5,
                                              1,     2.5,   5,    10,   30,  60};
const std::vector<double> kDbBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,    0.1,    0.25,  0.5,    1,     5};

constexpr const char* kLoginResults[] = {"accepted", "refused", "throttled"};
constexpr const char* kPublished[] = {"outbox", "outbox_retry", "request", "reply"};
constexpr const char* kRejected[] = {"property_reports", "events",          "messages",
                                     "responses",        "shadow_requests", "oversized"};
constexpr const char* kTaskStates[] = {"Waiting", "Processing",     "Success",
                                       "Fail",    "PartialSuccess", "Stopped"};
constexpr const char* kDeviceStatuses[] = {"Waiting", "Processing",    "Success",
                                           "Fail",    "FailWaitRetry", "Stopped"};

std::string Number(double v) {
  if (std::isinf(v)) return "+Inf";
  // The shortest of 15 or 17 digits that reads back the same (le="0.0025", not 0.00250...01).
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

// Label values are escaped as the format requires: backslash, double quote, newline.
std::string Escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void Head(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void Line(std::string& out, const char* name, const std::string& labels, double value) {
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += " " + Number(value) + "\n";
}

std::string Label(const char* key, const std::string& value) {
  return std::string(key) + "=\"" + Escape(value) + "\"";
}

std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t end = std::min(path.find('/', start), path.size());
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string Upper(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i)
    counts_[i] = 0;
}

void Histogram::Observe(double seconds) {
  size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i])
    ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::max(0.0, seconds) * 1e9), std::memory_order_relaxed);
}

void Histogram::Write(std::string& out, const std::string& name, const std::string& labels) const {
  // _count is the +Inf bucket, from the same reads: the series stays consistent mid-update.
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    const double le = i < bounds_.size() ? bounds_[i] : INFINITY;
    out += name + "_bucket{" + labels + "le=\"" + Number(le) + "\"} " + std::to_string(cumulative) +
           "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + labels.substr(0, labels.size() - 1) + "}";
  out += name + "_sum" + braces + " " +
         Number(static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9) + "\n";
  out += name + "_count" + braces + " " + std::to_string(cumulative) + "\n";
}

Metrics::Metrics()
    : api_status_(new std::atomic<uint64_t>[kStatuses]),
      download_status_(new std::atomic<uint64_t>[kStatuses]),
      download_latency_(kDownloadBuckets),
      tx_commit_(kDbBuckets),
      tx_rollback_(kDbBuckets) {
  for (int i = 0; i < kStatuses; ++i) {
    api_status_[i] = 0;
    download_status_[i] = 0;
  }
  // The route templates are those of the OpenAPI document (a test keeps it complete).
  const nlohmann::json doc = nlohmann::json::parse(OpenApiDocument());
  const std::string base = doc["servers"][0]["url"];
  std::set<std::pair<std::string, std::string>> series;
  for (const auto& [path, item] : doc["paths"].items()) {
    if (item.value("x-listener", "") == "download") continue;  // not the API's listener
    std::string prefix =
        item.contains("servers") ? item["servers"][0]["url"].get<std::string>() : base;
    while (!prefix.empty() && prefix.back() == '/')
      prefix.pop_back();
    const std::string route = prefix + path;
    routes_.push_back({Segments(route), route});
    for (const auto& [method, op] : item.items()) {
      if (method == "servers" || method == "parameters" || method.rfind("x-", 0) == 0) continue;
      series.insert({Upper(method), route});
    }
  }
  series.insert({"other", "other"});
  for (const auto& key : series)
    api_latency_.emplace(key, std::make_unique<Histogram>(kApiBuckets));
}

std::string Metrics::RouteOf(const std::string& method, const std::string& path) const {
  const std::vector<std::string> segments = Segments(path);
  const Route* best = nullptr;
  int best_params = 0;
  for (const Route& r : routes_) {
    if (r.segments.size() != segments.size()) continue;
    int params = 0;
    bool match = true;
    for (size_t i = 0; match && i < segments.size(); ++i) {
      if (r.segments[i].front() == '{') {
        ++params;
      } else {
        match = r.segments[i] == segments[i];
      }
    }
    // A literal segment beats a parameter (/tasks/{id}/stop over /tasks/{id}/{x}).
    if (match && (best == nullptr || params < best_params)) {
      best = &r;
      best_params = params;
    }
  }
  if (best == nullptr || api_latency_.count({method, best->text}) == 0) return "other";
  return best->text;
}

void Metrics::ApiRequest(const std::string& method, const std::string& path, int status,
                         double seconds) {
  const std::string route = RouteOf(method, path);
  const auto it = api_latency_.find(route == "other" ? std::make_pair(std::string("other"), route)
                                                     : std::make_pair(method, route));
  it->second->Observe(seconds);
  if (status >= 0 && status < kStatuses) api_status_[status]++;
}

void Metrics::DownloadRequest(int status, double seconds) {
  download_latency_.Observe(seconds);
  if (status >= 0 && status < kStatuses) download_status_[status]++;
}

void Metrics::DeviceMessage(const char* kind) {
  for (size_t i = 0; i < std::size(kMessageKinds); ++i) {
    if (std::string(kMessageKinds[i]) == kind) messages_[i]++;
  }
}

void Metrics::MessagesPublished(Published source, uint64_t n) {
  published_[static_cast<size_t>(source)] += n;
}

void Metrics::BrokerAuth(broker::ConnectVerdict verdict) {
  const auto i = static_cast<size_t>(verdict);
  if (i < std::size(broker_auth_)) broker_auth_[i]++;
}

bool DeviceLoginTotals::Update(const std::string& broker, int64_t started_at,
                               const broker::LoginCounts& counts) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = instances_.find(broker);
  if (it == instances_.end()) {
    if (started_at <= folded_until_) return false;
    it = instances_.emplace(broker, Instance{started_at, {}}).first;
  }
  for (size_t i = 0; i < counts.size(); ++i)
    it->second.counts[i] = std::max(it->second.counts[i], counts[i]);
  if (instances_.size() > kMaxInstances) {
    const auto oldest = std::min_element(
        instances_.begin(), instances_.end(),
        [](const auto& a, const auto& b) { return a.second.started_at < b.second.started_at; });
    for (size_t i = 0; i < folded_.size(); ++i)
      folded_[i] += oldest->second.counts[i];
    folded_until_ = std::max(folded_until_, oldest->second.started_at);
    const bool was_this = oldest == it;
    instances_.erase(oldest);
    if (was_this) return false;
  }
  return true;
}

broker::LoginCounts DeviceLoginTotals::Totals() const {
  std::lock_guard<std::mutex> lock(mutex_);
  broker::LoginCounts sum = folded_;
  for (const auto& [id, instance] : instances_) {
    for (size_t i = 0; i < sum.size(); ++i)
      sum[i] += instance.counts[i];
  }
  return sum;
}

void Metrics::Transaction(double seconds, bool committed) {
  (committed ? tx_commit_ : tx_rollback_).Observe(seconds);
}

std::string Metrics::Render(Database& db) const {
  std::string out;
  out.reserve(16384);

  // Devices, by product (products are the operator's; device IDs are never labels).
  Head(out, "ota_devices", "gauge", "Devices known, by product.");
  std::string online;
  {
    // Online as the registry says (Registry::GetDevice): presence, else recent traffic; a
    // sub-device while it and its gateway are.
    Statement st = db.Prepare(
        "SELECT p.product_id, COUNT(d.device_id), COALESCE(SUM(CASE WHEN d.gateway_id IS NULL "
        "THEN d.online != 0 AND (d.presence_seq > 0 OR d.last_seen > ?1) ELSE d.online != 0 AND "
        "gw.online != 0 AND (gw.presence_seq > 0 OR gw.last_seen > ?1) END), 0) FROM products p "
        "LEFT JOIN devices d ON d.product_id = p.product_id LEFT JOIN devices gw ON "
        "gw.device_id = d.gateway_id GROUP BY p.product_id ORDER BY p.product_id");
    st.Bind(1, static_cast<int64_t>(std::time(nullptr)) - kOnlineSeconds);
    while (st.Step()) {
      const std::string product = Label("product", st.Text(0));
      Line(out, "ota_devices", product, static_cast<double>(st.Int(1)));
      Line(online, "ota_devices_online", product, static_cast<double>(st.Int(2)));
    }
  }
  Head(out, "ota_devices_online", "gauge", "Devices online now, by product.");
  out += online;

  Head(out, "ota_device_presence_events_total", "counter",
       "Broker presence events handled (device MQTT connections opened and closed).");
  Line(out, "ota_device_presence_events_total", Label("event", "connected"),
       static_cast<double>(presence_connects_.load()));
  Line(out, "ota_device_presence_events_total", Label("event", "disconnected"),
       static_cast<double>(presence_disconnects_.load()));

  Head(out, "ota_broker_http_auth_total", "counter",
       "Device logins answered by POST /broker/v1/auth, by verdict (brokers that authenticate "
       "over HTTP; the Mosquitto plugin's are ota_device_logins_total).");
  for (size_t i = 0; i < std::size(broker_auth_); ++i) {
    const char* reason = broker::ConnectVerdictReason(static_cast<broker::ConnectVerdict>(i));
    Line(out, "ota_broker_http_auth_total", Label("reason", reason),
         static_cast<double>(broker_auth_[i].load()));
  }

  Head(out, "ota_device_logins_total", "counter",
       "Device logins decided by the Mosquitto plugin, by reason, summed over broker instances "
       "(the plugin reports every 10 s at most).");
  const broker::LoginCounts device_logins = device_logins_.Totals();
  for (size_t i = 0; i < device_logins.size(); ++i) {
    const char* reason = broker::ConnectVerdictReason(static_cast<broker::ConnectVerdict>(i));
    Line(out, "ota_device_logins_total", Label("reason", reason),
         static_cast<double>(device_logins[i]));
  }

  Head(out, "ota_operator_logins_total", "counter",
       "User sign-ins (POST /api/v1/session), by result: accepted, refused (wrong username or "
       "password, disabled user), throttled (429).");
  for (size_t i = 0; i < std::size(kLoginResults); ++i) {
    Line(out, "ota_operator_logins_total", Label("result", kLoginResults[i]),
         static_cast<double>(logins_[i].load()));
  }

  Head(out, "ota_device_messages_received_total", "counter",
       "Device messages taken from the broker, by kind.");
  for (size_t i = 0; i < std::size(kMessageKinds); ++i) {
    Line(out, "ota_device_messages_received_total", Label("kind", kMessageKinds[i]),
         static_cast<double>(messages_[i].load()));
  }

  Head(out, "ota_mqtt_messages_published_total", "counter",
       "Messages the platform published to devices, by source.");
  for (size_t i = 0; i < std::size(kPublished); ++i) {
    Line(out, "ota_mqtt_messages_published_total", Label("source", kPublished[i]),
         static_cast<double>(published_[i].load()));
  }

  // The counters table (persistent, written inside the transactions that count).
  std::map<std::string, int64_t> counters;
  {
    Statement st = db.Prepare("SELECT name, value FROM counters");
    while (st.Step())
      counters[st.Text(0)] = st.Int(1);
  }
  const auto counter = [&counters](const std::string& name) {
    const auto it = counters.find(name);
    return it == counters.end() ? 0.0 : static_cast<double>(it->second);
  };
  Head(out, "ota_device_messages_rejected_total", "counter",
       "Device messages refused whole (invalid, not in the model, oversized), by kind.");
  for (const char* reason : kRejected) {
    Line(out, "ota_device_messages_rejected_total", Label("reason", reason),
         counter(std::string("rejected_") + reason));
  }
  const struct {
    const char* name;
    const char* counter;
    const char* help;
  } kPersisted[] = {
      {"ota_device_messages_lost_total", "lost_device_messages",
       "Device messages dropped after the database stayed busy through three attempts."},
      {"ota_device_responses_duplicate_total", "duplicate_responses",
       "Device answers to a request that was already answered."},
      {"ota_property_event_times_replaced_total", "property_event_time_replaced",
       "Property reports whose event_time was unusable and replaced by the arrival time."},
      {"ota_outbox_expired_total", "outbox_expired",
       "Outbox messages dropped unacknowledged after their keep time."},
  };
  for (const auto& c : kPersisted) {
    Head(out, c.name, "counter", c.help);
    Line(out, c.name, "", counter(c.counter));
  }

  Head(out, "ota_outbox_messages", "gauge", "Messages in the outbox, waiting for a PUBACK.");
  {
    Statement st = db.Prepare("SELECT COUNT(*) FROM outbox");
    Line(out, "ota_outbox_messages", "", st.Step() ? static_cast<double>(st.Int(0)) : 0);
  }

  // Upgrade tasks, each in the state UpgradeTasks::TaskStatus gives it.
  {
    std::map<std::string, int64_t> states;
    int64_t paused = 0;
    Statement st = db.Prepare(
        "SELECT t.stopped, t.paused, COUNT(d.device_id), COALESCE(SUM(d.status = 'Success'), 0), "
        "COALESCE(SUM(d.status = 'Fail'), 0), COALESCE(SUM(d.status NOT IN ('Success', 'Fail', "
        "'Stopped')), 0), COALESCE(SUM(d.status != 'Waiting'), 0) FROM tasks t LEFT JOIN "
        "task_devices d ON d.task_id = t.task_id GROUP BY t.task_id");
    while (st.Step()) {
      const int64_t total = st.Int(2), success = st.Int(3), fail = st.Int(4), open = st.Int(5);
      const char* state = st.Int(0) != 0     ? "Stopped"
                          : open > 0         ? (st.Int(6) > 0 ? "Processing" : "Waiting")
                          : success == total ? "Success"
                          : fail == total    ? "Fail"
                                             : "PartialSuccess";
      states[state]++;
      if (st.Int(0) == 0 && open > 0 && st.Int(1) != 0) ++paused;
    }
    Head(out, "ota_tasks", "gauge", "Upgrade tasks (rollouts), by state.");
    for (const char* s : kTaskStates)
      Line(out, "ota_tasks", Label("state", s), static_cast<double>(states[s]));
    Head(out, "ota_tasks_paused", "gauge", "Open upgrade tasks that are paused.");
    Line(out, "ota_tasks_paused", "", static_cast<double>(paused));
  }
  {
    std::map<std::string, int64_t> statuses;
    Statement st = db.Prepare("SELECT status, COUNT(*) FROM task_devices GROUP BY status");
    while (st.Step())
      statuses[st.Text(0)] = st.Int(1);
    Head(out, "ota_task_devices", "gauge", "Devices in upgrade tasks, by status.");
    for (const char* s : kDeviceStatuses)
      Line(out, "ota_task_devices", Label("status", s), static_cast<double>(statuses[s]));
  }

  Head(out, "ota_download_requests_total", "counter",
       "Package download requests answered, by HTTP status.");
  for (int code = 0; code < kStatuses; ++code) {
    const uint64_t n = download_status_[code].load();
    if (n > 0) {
      Line(out, "ota_download_requests_total", Label("code", std::to_string(code)),
           static_cast<double>(n));
    }
  }
  Head(out, "ota_download_sent_bytes_total", "counter", "Package bytes sent to devices.");
  Line(out, "ota_download_sent_bytes_total", "", static_cast<double>(download_bytes_.load()));
  Head(out, "ota_download_request_duration_seconds", "histogram",
       "Time to answer one download request, body included.");
  download_latency_.Write(out, "ota_download_request_duration_seconds", "");

  Head(out, "ota_api_requests_total", "counter", "Operator API requests answered, by HTTP status.");
  for (int code = 0; code < kStatuses; ++code) {
    const uint64_t n = api_status_[code].load();
    if (n > 0) {
      Line(out, "ota_api_requests_total", Label("code", std::to_string(code)),
           static_cast<double>(n));
    }
  }
  Head(out, "ota_api_request_duration_seconds", "histogram",
       "Time to answer one operator API request, by method and route template.");
  for (const auto& [key, h] : api_latency_) {
    h->Write(out, "ota_api_request_duration_seconds",
             Label("method", key.first) + "," + Label("route", key.second) + ",");
  }

  Head(out, "ota_db_transaction_duration_seconds", "histogram",
       "Write transactions on the platform's database, BEGIN to COMMIT or ROLLBACK.");
  tx_commit_.Write(out, "ota_db_transaction_duration_seconds", Label("outcome", "commit") + ",");
  tx_rollback_.Write(out, "ota_db_transaction_duration_seconds",
                     Label("outcome", "rollback") + ",");
  return out;
}

}  // namespace ota::server
