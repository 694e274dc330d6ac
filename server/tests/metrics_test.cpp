// GET /metrics against the whole platform: a real Mosquitto with the auth plugin, a real
// ota-server on free loopback ports (HTTPS API, download listener, MQTT bridge), a device that
// reports over MQTT and downloads over HTTPS, and operator API calls. The body is checked by
// promtool (Debian's prometheus package, installed by scripts/install-deps.sh), and the Grafana
// dashboard in docs/grafana/ may only query metrics the body has.
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "mqtt_test_client.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/host/keys.hpp"
#include "ota/server/device_protocol.hpp"
#include "ota/server/metrics.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;
using testing::MqttTestClient;

constexpr const char* kDevice = "fire_n1";
constexpr const char* kSecret = "device-secret-1";

// "name{labels}" -> value, from the exposition's sample lines.
std::map<std::string, double> Samples(const std::string& body) {
  std::map<std::string, double> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

// The metric families the body declares (# TYPE lines).
std::set<std::string> Families(const std::string& body) {
  std::set<std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) out.insert(line.substr(7, line.find(' ', 7) - 7));
  }
  return out;
}

// Every "expr" string anywhere in `j`.
void Exprs(const json& j, std::vector<std::string>* out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k == "expr" && v.is_string()) out->push_back(v);
      Exprs(v, out);
    }
  } else if (j.is_array()) {
    for (const json& v : j)
      Exprs(v, out);
  }
}

// The ota_* metric names an expression queries, histogram suffixes removed.
std::set<std::string> MetricNames(const std::string& expr) {
  std::set<std::string> out;
  for (size_t at = expr.find("ota_"); at != std::string::npos; at = expr.find("ota_", at)) {
    const bool word_start =
        at == 0 || !(std::isalnum(static_cast<unsigned char>(expr[at - 1])) || expr[at - 1] == '_');
    size_t end = at;
    while (end < expr.size() &&
           (std::isalnum(static_cast<unsigned char>(expr[end])) || expr[end] == '_'))
      ++end;
    if (word_start) {
      std::string name = expr.substr(at, end - at);
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s = suffix;
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
          name.erase(name.size() - s.size());
        }
      }
      out.insert(name);
    }
    at = end;
  }
  return out;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_.AddFireProduct(key_.pkey());
    Registry& reg = stack_.registry();
    reg.CreateDevice("fire", "n1", "", kSecret);
    const uint32_t load = testing::FireAppAddress();
    host::PackageSpec full;
    full.version = "FOTAV2";
    full.image = testing::MakeTestImage("FOTAV2", 20000, load, 2);
    package_ = testing::MakePackage(full, &key_);
    package_id_ = stack_.platform().packages().Upload("fire", package_, "v2.bin").package_id;
    token_ = stack_.platform().CreateApiToken("metrics-test");

    testing::StackOptions o;
    o.broker_lines = {"plugin_opt_login_stats_interval_s 1"};
    ASSERT_TRUE(stack_.Start(o));
  }

  std::string Metrics() {
    auto r = stack_.Client(token_)->Get("/metrics");
    if (!r || r->status != 200) return {};
    return r->body;
  }
  // Polls /metrics until `sample` is at least `value`; returns the last body.
  std::string WaitFor(const std::string& sample, double value) {
    std::string body;
    for (int i = 0; i < 100; ++i) {
      body = Metrics();
      const auto s = Samples(body);
      const auto it = s.find(sample);
      if (it != s.end() && it->second >= value) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return body;
  }

  testing::PlatformStack stack_{"ota-metrics"};
  testing::TestKey key_;
  std::vector<uint8_t> package_;
  int64_t package_id_ = 0;
  std::string token_;
};

TEST_F(MetricsTest, AfterTraffic_ValuesMoved_PromtoolAccepts_DashboardQueriesExist) {
  // A device logs in through the plugin and reports: one valid report, one not in the model.
  MqttTestClient dev(std::string(kDevice) + "_0_0_" + testing::UtcHour());
  ASSERT_EQ(dev.Connect(stack_.broker().port(), kDevice,
                        broker::IotdaPassword(kSecret, testing::UtcHour())),
            0);
  const std::string report = std::string("$oc/devices/") + kDevice + "/sys/properties/report";
  ASSERT_TRUE(dev.Publish(
      report, R"({"services":[{"service_id":"DeviceStatus","properties":{"radioValue":7}}]})"));
  ASSERT_TRUE(dev.Publish(
      report, R"({"services":[{"service_id":"DeviceStatus","properties":{"radioValue":"x"}}]})"));
  // And one refused login: the plugin reports both verdicts.
  MqttTestClient wrong(std::string(kDevice) + "_0_0_" + testing::UtcHour());
  ASSERT_EQ(wrong.Connect(stack_.broker().port(), kDevice, "not-the-password"), 5);

  // Operator API calls (one 404 for a device that does not exist), a raw path nobody routes,
  // a download token and the download itself.
  auto api = stack_.Client(token_);
  ASSERT_EQ(api->Get("/api/v1/devices/fire_n1")->status, 200);
  ASSERT_EQ(api->Get("/api/v1/devices/no_such_device")->status, 404);
  ASSERT_EQ(api->Get("/api/v1/sneaky/path-with-secret-looking-text")->status, 404);
  auto grant = api->Post("/api/v1/packages/" + std::to_string(package_id_) + "/download-tokens",
                         json{{"device_id", kDevice}}.dump(), "application/json");
  ASSERT_EQ(grant->status, 201);
  const json g = json::parse(grant->body);
  const std::string url = g["url"];
  auto dl = stack_.Client(g["access_token"], true);
  auto file = dl->Get(url.substr(url.find('/', 8)).c_str());
  ASSERT_EQ(file->status, 200);
  ASSERT_EQ(file->body.size(), package_.size());
  auto refused = stack_.Client("not-a-token", true)->Get(url.substr(url.find('/', 8)));
  ASSERT_EQ(refused->status, 401);
  // A task: its version_query goes out through the outbox.
  auto task = api->Post(
      "/api/v1/tasks",
      json{{"product_id", "fire"}, {"target_version", "FOTAV2"}, {"devices", {kDevice}}}.dump(),
      "application/json");
  ASSERT_EQ(task->status, 201) << task->body;

  // Unauthenticated: refused, as the rest of the API.
  auto anon = stack_.Client("")->Get("/metrics");
  ASSERT_EQ(anon->status, 401);
  EXPECT_EQ(stack_.Client("wrong")->Get("/metrics")->status, 401);

  WaitFor(R"(ota_mqtt_messages_published_total{source="outbox"})", 1);
  WaitFor(R"(ota_device_logins_total{reason="bad_password"})", 1);
  const std::string body =
      WaitFor(R"(ota_device_messages_rejected_total{reason="property_reports"})", 1);
  auto r = api->Get("/metrics");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const auto s = Samples(body);
  const auto at = [&s](const std::string& k) {
    const auto it = s.find(k);
    return it == s.end() ? -1.0 : it->second;
  };
  EXPECT_EQ(at(R"(ota_devices{product="fire"})"), 1);
  EXPECT_EQ(at(R"(ota_devices_online{product="fire"})"), 1);
  EXPECT_GE(at(R"(ota_device_presence_events_total{event="connected"})"), 1);
  EXPECT_EQ(at(R"(ota_device_messages_received_total{kind="property_reports"})"), 2);
  EXPECT_EQ(at(R"(ota_device_messages_rejected_total{reason="property_reports"})"), 1);
  EXPECT_EQ(at(R"(ota_device_logins_total{reason="accepted"})"), 1);
  EXPECT_EQ(at(R"(ota_device_logins_total{reason="bad_password"})"), 1);
  EXPECT_EQ(at(R"(ota_device_logins_total{reason="unknown_device"})"), 0);
  EXPECT_GE(at(R"(ota_mqtt_messages_published_total{source="outbox"})"), 1);
  EXPECT_EQ(at(R"(ota_download_requests_total{code="200"})"), 1);
  EXPECT_EQ(at(R"(ota_download_requests_total{code="401"})"), 1);
  EXPECT_EQ(at("ota_download_sent_bytes_total"), static_cast<double>(package_.size()));
  EXPECT_EQ(at("ota_download_request_duration_seconds_count"), 2);
  EXPECT_EQ(
      at(R"(ota_api_request_duration_seconds_count{method="GET",route="/api/v1/devices/{device_id}"})"),
      2)
      << "the found and the unknown device: one route";
  EXPECT_EQ(at(R"(ota_api_request_duration_seconds_count{method="POST",route="/api/v1/tasks"})"),
            1);
  EXPECT_GE(at(R"(ota_api_request_duration_seconds_count{method="other",route="other"})"), 1);
  EXPECT_GE(at(R"(ota_api_requests_total{code="404"})"), 2);
  EXPECT_GE(at(R"(ota_api_requests_total{code="401"})"), 2);
  EXPECT_EQ(at(R"(ota_tasks{state="Waiting"})") + at(R"(ota_tasks{state="Processing"})"), 1);
  EXPECT_EQ(
      at(R"(ota_task_devices{status="Waiting"})") + at(R"(ota_task_devices{status="Processing"})"),
      1);
  EXPECT_GT(at(R"(ota_db_transaction_duration_seconds_count{outcome="commit"})"), 0);
  EXPECT_GT(at(R"(ota_db_transaction_duration_seconds_sum{outcome="commit"})"), 0);
  // No label value from what a client sent: no device ID, no raw path.
  EXPECT_EQ(body.find(kDevice), std::string::npos);
  EXPECT_EQ(body.find("no_such_device"), std::string::npos);
  EXPECT_EQ(body.find("sneaky"), std::string::npos);

  // promtool must be there (scripts/install-deps.sh installs it): missing is a failure.
  const std::filesystem::path file_path = stack_.dir() / "metrics.txt";
  std::ofstream(file_path) << body;
  const std::string cmd = "promtool check metrics < '" + file_path.string() + "' 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), pipe) != nullptr)
    output += buf;
  const int status = pclose(pipe);
  ASSERT_NE(WEXITSTATUS(status), 127) << "promtool not found (scripts/install-deps.sh installs "
                                         "the prometheus package)";
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << "promtool lint findings";

  // The dashboard: valid JSON, a Prometheus data source variable, and only metrics that exist.
  std::ifstream dashboard_file(OTA_GRAFANA_DASHBOARD);
  ASSERT_TRUE(dashboard_file) << OTA_GRAFANA_DASHBOARD;
  const json dashboard = json::parse(dashboard_file);
  bool datasource_variable = false;
  for (const json& v : dashboard["templating"]["list"]) {
    datasource_variable |= v["type"] == "datasource" && v["query"] == "prometheus";
  }
  EXPECT_TRUE(datasource_variable);
  std::vector<std::string> exprs;
  Exprs(dashboard, &exprs);
  ASSERT_GE(exprs.size(), 10u);
  const std::set<std::string> families = Families(body);
  std::set<std::string> queried;
  for (const std::string& e : exprs) {
    for (const std::string& name : MetricNames(e)) {
      queried.insert(name);
      EXPECT_EQ(families.count(name), 1u) << name << " in " << e;
    }
  }
  for (const char* needed : {"ota_devices_online", "ota_device_messages_received_total",
                             "ota_device_messages_rejected_total", "ota_tasks",
                             "ota_download_sent_bytes_total", "ota_download_requests_total",
                             "ota_api_request_duration_seconds", "ota_device_logins_total"}) {
    EXPECT_EQ(queried.count(needed), 1u) << "the dashboard shows " << needed;
  }
  for (const char* q :
       {"histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,"}) {
    bool found = false;
    for (const std::string& e : exprs)
      found |= e.find(q) != std::string::npos &&
               e.find("ota_api_request_duration_seconds_bucket") != std::string::npos;
    EXPECT_TRUE(found) << q;
  }
}

// The plugin's login statistics through the bridge: a restarted broker is a new instance whose
// counts start at 0, and the previous instance's stay in the sum.
TEST_F(MetricsTest, DeviceLogins_BrokerRestart_TotalsNeverGoDown) {
  const auto login = [this](const std::string& password) {
    MqttTestClient c(std::string(kDevice) + "_0_0_" + testing::UtcHour());
    return c.Connect(stack_.broker().port(), kDevice, password);
  };
  const std::string good = broker::IotdaPassword(kSecret, testing::UtcHour());
  ASSERT_EQ(login(good), 0);
  ASSERT_EQ(login("wrong"), 5);
  const auto first = Samples(WaitFor(R"(ota_device_logins_total{reason="bad_password"})", 1));
  EXPECT_EQ(first.at(R"(ota_device_logins_total{reason="accepted"})"), 1);
  EXPECT_EQ(first.at(R"(ota_device_logins_total{reason="bad_password"})"), 1);

  stack_.broker().Stop(SIGTERM);
  ASSERT_TRUE(stack_.broker().Start());
  ASSERT_EQ(login("wrong"), 5);
  ASSERT_EQ(login("wrong again"), 5);
  // The bridge reconnects and subscribes again; the new instance's message is retained.
  const auto second = Samples(WaitFor(R"(ota_device_logins_total{reason="bad_password"})", 3));
  EXPECT_EQ(second.at(R"(ota_device_logins_total{reason="bad_password"})"), 3);
  EXPECT_EQ(second.at(R"(ota_device_logins_total{reason="accepted"})"), 1);
}

TEST(DeviceLogins, Totals_SumInstances_KeepRestartedOnes_IgnoreStaleMessages) {
  DeviceLoginTotals t;
  const auto counts = [](uint64_t accepted, uint64_t bad) {
    broker::LoginCounts c{};
    c[static_cast<size_t>(broker::ConnectVerdict::kAccepted)] = accepted;
    c[static_cast<size_t>(broker::ConnectVerdict::kBadPassword)] = bad;
    return c;
  };
  const size_t kA = static_cast<size_t>(broker::ConnectVerdict::kAccepted);
  const size_t kB = static_cast<size_t>(broker::ConnectVerdict::kBadPassword);
  EXPECT_TRUE(t.Update("one", 100, counts(5, 1)));
  EXPECT_TRUE(t.Update("one", 100, counts(7, 1)));
  EXPECT_TRUE(t.Update("one", 100, counts(6, 2)));  // late: accepted stays 7
  EXPECT_EQ(t.Totals()[kA], 7u);
  EXPECT_EQ(t.Totals()[kB], 2u);
  // The broker restarts: a new instance from 0; the old one's last counts stay in.
  EXPECT_TRUE(t.Update("two", 200, counts(1, 0)));
  EXPECT_EQ(t.Totals()[kA], 8u);
  EXPECT_EQ(t.Totals()[kB], 2u);
  // A second broker at the same time adds its own.
  EXPECT_TRUE(t.Update("other", 150, counts(10, 10)));
  EXPECT_EQ(t.Totals()[kA], 18u);
}

TEST(DeviceLogins, ManyRestarts_MemoryBounded_TotalKept) {
  DeviceLoginTotals t;
  broker::LoginCounts one{};
  one[0] = 1;
  const size_t n = DeviceLoginTotals::kMaxInstances * 3;
  for (size_t i = 0; i < n; ++i)
    ASSERT_TRUE(t.Update("b" + std::to_string(i), 1000 + static_cast<int64_t>(i), one));
  EXPECT_EQ(t.Totals()[0], n);
  // A late message of an instance folded away is ignored (it is in the base already).
  broker::LoginCounts more{};
  more[0] = 50;
  EXPECT_FALSE(t.Update("b0", 1000, more));
  EXPECT_EQ(t.Totals()[0], n);
  // A tracked one still moves.
  EXPECT_TRUE(t.Update("b" + std::to_string(n - 1), 1000 + static_cast<int64_t>(n - 1), more));
  EXPECT_EQ(t.Totals()[0], n + 49);
}

TEST(DeviceLogins, ParseLoginStats_ValidatesTheMessage) {
  const auto r = ParseLoginStats(
      R"({"broker":"ab12","started_at":1750000000,"logins":{"accepted":3,"bad_password":2,)"
      R"("future_reason":9}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->broker, "ab12");
  EXPECT_EQ(r->started_at, 1750000000);
  EXPECT_EQ(r->counts[static_cast<size_t>(broker::ConnectVerdict::kAccepted)], 3u);
  EXPECT_EQ(r->counts[static_cast<size_t>(broker::ConnectVerdict::kBadPassword)], 2u);
  EXPECT_EQ(r->counts[static_cast<size_t>(broker::ConnectVerdict::kDisabled)], 0u);
  // The plugin's own payload reads back.
  broker::LoginCounts c{1, 2, 3, 4, 5, 6};
  const auto own = ParseLoginStats(broker::LoginStatsPayload("x-1", 5, c));
  ASSERT_TRUE(own);
  EXPECT_EQ(own->counts, c);
  for (const char* bad : {
           "",
           "[]",
           "not json",
           R"({"started_at":1,"logins":{}})",
           R"({"broker":"","started_at":1,"logins":{}})",
           R"({"broker":"a b","started_at":1,"logins":{}})",
           R"({"broker":"a","started_at":"1","logins":{}})",
           R"({"broker":"a","started_at":1,"logins":[]})",
           R"({"broker":"a","started_at":1,"logins":{"accepted":-1}})",
           R"({"broker":"a","started_at":1,"logins":{"accepted":1.5}})",
       }) {
    EXPECT_FALSE(ParseLoginStats(bad)) << bad;
  }
}

TEST_F(MetricsTest, MetricsPublic_ServedWithoutToken) {
  EXPECT_EQ(stack_.Client("")->Get("/metrics")->status, 401);
  stack_.service().api().set_metrics_public(true);
  auto r = stack_.Client("")->Get("/metrics");
  ASSERT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("# TYPE ota_devices gauge"), std::string::npos);
}

TEST(MetricsRoutes, RawPathsMapToTemplates_UnknownToOther) {
  Metrics m;
  EXPECT_EQ(m.RouteOf("GET", "/api/v1/devices/fire_n1"), "/api/v1/devices/{device_id}");
  EXPECT_EQ(m.RouteOf("GET", "/api/v1/devices/x/requests/abc"),
            "/api/v1/devices/{device_id}/requests/{request_id}");
  EXPECT_EQ(m.RouteOf("POST", "/api/v1/tasks/12/stop"), "/api/v1/tasks/{task_id}/stop");
  EXPECT_EQ(m.RouteOf("GET", "/api/v1/openapi.json"), "/api/v1/openapi.json");
  EXPECT_EQ(m.RouteOf("GET", "/metrics"), "/metrics");
  EXPECT_EQ(m.RouteOf("POST", "/broker/v1/auth"), "/broker/v1/auth");
  // Bounded: anything else, or a method the route does not have, is "other".
  EXPECT_EQ(m.RouteOf("GET", "/api/v1/devices/a/b/c/d"), "other");
  EXPECT_EQ(m.RouteOf("PUT", "/api/v1/devices/fire_n1"), "other");
  EXPECT_EQ(m.RouteOf("DELETE", "/api/v1/devices/fire_n1"), "/api/v1/devices/{device_id}");
  EXPECT_EQ(m.RouteOf("DELETE", "/api/v1/tokens/3"), "/api/v1/tokens/{token_id}");
  EXPECT_EQ(m.RouteOf("GET", "/etc/passwd"), "other");
  EXPECT_EQ(m.RouteOf("POST", "/"), "other");
  // The console's files are routes of their own.
  EXPECT_EQ(m.RouteOf("GET", "/"), "/");
  EXPECT_EQ(m.RouteOf("GET", "/assets/app.js"), "/assets/{name}");
}

}  // namespace
}  // namespace ota::server
