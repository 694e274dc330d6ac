// The web console's API against a real ota-server (HTTPS on a free loopback port, real SQLite,
// no broker: device messages go straight into Service::HandleDeviceMessage): the overview,
// device search and paging (also over 100,000 devices), a device's upgrade history, the
// rollout preview against what the task then sends, and the live event stream (SSE).
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "ota/host/keys.hpp"
#include "ota/image.hpp"
#include "ota/server/console.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// One Server-Sent Events client on its own thread: the events it got, in order.
class EventClient {
 public:
  // `auth`: the Authorization (a bearer token) or Cookie (a session) header.
  EventClient(int port, const std::filesystem::path& ca, httplib::Headers auth,
              const std::string& path)
      : client_("127.0.0.1", port) {
    client_.set_ca_cert_path(ca.c_str());
    client_.enable_server_certificate_verification(true);
    client_.set_read_timeout(60, 0);
    auth.emplace("Accept-Encoding", "gzip, deflate");
    thread_ = std::thread([this, path, auth] {
      httplib::Result r = client_.Get(
          path.c_str(), auth,
          [this](const httplib::Response& res) {
            std::lock_guard<std::mutex> lock(mutex_);
            status_ = res.status;
            headers_ = res.headers;
            cv_.notify_all();
            return true;
          },
          [this](const char* data, size_t length) {
            std::lock_guard<std::mutex> lock(mutex_);
            buffer_.append(data, length);
            for (size_t end; (end = buffer_.find("\n\n")) != std::string::npos;) {
              Parse(buffer_.substr(0, end));
              buffer_.erase(0, end + 2);
            }
            cv_.notify_all();
            return true;
          });
      std::lock_guard<std::mutex> lock(mutex_);
      if (status_ == 0 && r) status_ = r->status;
      if (r && status_ != 200) {
        headers_ = r->headers;
        body_ = r->body;
      }
      done_ = true;
      cv_.notify_all();
    });
  }
  ~EventClient() {
    client_.stop();
    thread_.join();
  }

  struct Event {
    std::string name;
    json data;
  };
  // Waits (bounded) until some event from index `from` on satisfies `pred`; returns its index.
  std::optional<size_t> WaitFor(size_t from, const std::function<bool(const Event&)>& pred,
                                milliseconds timeout = milliseconds(5000)) {
    std::unique_lock<std::mutex> lock(mutex_);
    std::optional<size_t> found;
    cv_.wait_for(lock, timeout, [&] {
      for (size_t i = from; i < events_.size(); ++i) {
        if (pred(events_[i])) {
          found = i;
          return true;
        }
      }
      return done_;
    });
    return found;
  }
  // The status once the answer's head (or the whole answer) is in.
  int Status() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, seconds(5), [&] { return status_ != 0 || done_; });
    return status_;
  }
  std::string Header(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = headers_.find(name);
    return it == headers_.end() ? "" : it->second;
  }
  size_t Count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_.size();
  }
  std::vector<Event> Events() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  bool WaitDone(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return done_; });
  }
  int pings() {
    std::lock_guard<std::mutex> lock(mutex_);
    return pings_;
  }

 private:
  void Parse(const std::string& block) {
    Event e;
    std::string data;
    size_t start = 0;
    while (start < block.size()) {
      const size_t end = std::min(block.find('\n', start), block.size());
      const std::string line = block.substr(start, end - start);
      if (line.rfind("event: ", 0) == 0) e.name = line.substr(7);
      if (line.rfind("data: ", 0) == 0) data += line.substr(6);
      if (line == ": ping") ++pings_;
      start = end + 1;
    }
    if (e.name.empty()) return;
    e.data = json::parse(data, nullptr, false);
    events_.push_back(std::move(e));
  }

  httplib::SSLClient client_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string buffer_, body_;
  std::vector<Event> events_;
  httplib::Headers headers_;
  int status_ = 0;
  int pings_ = 0;
  bool done_ = false;
};

// This process's peak resident memory (VmHWM), in kB.
int64_t PeakMemoryKb() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

class Console : public ::testing::Test {
 protected:
  void SetUp() override {
    Registry& reg = stack_.registry();
    reg.CreateProduct("fire", "FIRE", "embedfire", "MQTT", json());
    reg.CreateProduct("lamp", "Lamp", "", "MQTT", json());
    reg.AddProductKey("fire", host::PublicKeyPem(key_.pkey()), false);
    const uint32_t load = testing::FireAppAddress();
    const auto v1 = testing::MakeTestImage("FOTAV1", 8000, load, 1);
    const auto v2 = testing::MakeTestImage("FOTAV2", 8000, load, 2);
    host::PackageSpec full;
    full.version = "FOTAV2";
    full.image = v2;
    full_ = stack_.platform().packages().Upload("fire", testing::MakePackage(full, &key_), "f.bin");
    host::PackageSpec diff = full;
    diff.kind = PackageKind::kDiff;
    diff.from_version = "FOTAV1";
    diff.source = v1;
    diff_ = stack_.platform().packages().Upload("fire", testing::MakePackage(diff, &key_), "d.bin");

    ASSERT_TRUE(stack_.Start(testing::NoBroker()));
    admin_ = stack_.admin_token();
  }

  std::unique_ptr<httplib::SSLClient> Client() { return stack_.Client(admin_); }
  struct Answer {
    int status = -1;
    json body;
    std::string total;  // X-Total-Count
  };
  Answer Call(const std::string& method, const std::string& path, const json& body = nullptr) {
    auto c = Client();
    httplib::Result r = method == "GET" ? c->Get(path.c_str())
                                        : c->Post(path.c_str(), body.dump(), "application/json");
    if (!r) return {};
    return {r->status, json::parse(r->body, nullptr, false), r->get_header_value("X-Total-Count")};
  }
  std::unique_ptr<EventClient> Events(const std::string& query = "",
                                      const httplib::Headers& auth = {}) {
    return std::make_unique<EventClient>(
        stack_.service().http_port(), stack_.platform().tls().ca_cert,
        auth.empty() ? httplib::Headers{{"Authorization", "Bearer " + admin_}} : auth,
        "/api/v1/events" + query);
  }

  // After a client closed a stream: whether a new one (with `auth`) is taken once the server
  // finds the old one gone, at its next write (each device registered here makes one).
  bool SlotFreed(const std::string& node_prefix, const httplib::Headers& auth = {}) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      const Answer d =
          Call("POST", "/api/v1/devices",
               {{"product_id", "lamp"}, {"node_id", node_prefix + std::to_string(attempt)}});
      if (d.status != 201) return false;
      if (Events("", auth)->Status() == 200) return true;
    }
    return false;
  }

  // A device of `product`, reporting `fw` ("" = never reported) over the device protocol.
  std::string Device(const std::string& product, const std::string& node, const std::string& fw) {
    std::string id;
    {
      std::lock_guard<std::mutex> guard(stack_.platform().lock());
      id = stack_.platform()
               .registry()
               .CreateDevice(product, node, "", "secret-" + node)
               .first.device_id;
    }
    if (!fw.empty()) Report(id, fw);
    return id;
  }
  void Report(const std::string& device, const std::string& fw) {
    stack_.service().HandleDeviceMessage(
        "$oc/devices/" + device + "/sys/events/up",
        json({{"services",
               {{{"service_id", "$ota"},
                 {"event_type", "version_report"},
                 {"paras", {{"fw_version", fw}, {"sw_version", "SOTAV1"}}}}}}})
            .dump());
  }
  int64_t AuditRows() {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    Statement st = stack_.platform().db().Prepare("SELECT COUNT(*) FROM audit_log");
    return st.Step() ? st.Int(0) : -1;
  }

  testing::PlatformStack stack_{"ota-console"};
  testing::TestKey key_;
  PackageRecord full_, diff_;
  std::string admin_;
};

TEST_F(Console, Overview_CountsDevicesVersionsAndTasksBySqlAggregates) {
  Device("fire", "a", "FOTAV1");
  Device("fire", "b", "FOTAV1");
  Device("fire", "c", "FOTAV2");
  Device("lamp", "d", "");
  ASSERT_EQ(Call("POST", "/api/v1/tasks",
                 {{"product_id", "fire"}, {"target_version", "FOTAV2"}, {"whole_product", true}})
                .status,
            201);
  const Answer a = Call("GET", "/api/v1/overview");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.body["devices"]["total"], 4);
  EXPECT_EQ(a.body["devices"]["online"], 3);  // the three that reported (no broker presence)
  EXPECT_EQ(a.body["versions"],
            json::parse(R"([{"version":"FOTAV1","devices":2},{"version":"","devices":1},
                           {"version":"FOTAV2","devices":1}])"));
  EXPECT_EQ(a.body["products"], 2);
  EXPECT_EQ(a.body["packages"], 2);
  EXPECT_EQ(a.body["tasks"]["open"], 1);
  EXPECT_EQ(a.body["tasks"]["by_state"], json({{"running", 1}}));
}

TEST_F(Console, Overview_MoreThanTwentyVersions_TheRestSummedAsOther) {
  for (int i = 0; i < 23; ++i)
    Device("lamp", "n" + std::to_string(i), "V" + std::to_string(100 + i));
  const json versions = Call("GET", "/api/v1/overview").body["versions"];
  ASSERT_EQ(versions.size(), kOverviewVersions + 1);
  EXPECT_EQ(versions.back(), json({{"version", "(other)"}, {"devices", 3}}));
}

TEST_F(Console, DeviceSearch_FiltersPagesAndCountsBeforePaging) {
  for (int i = 0; i < 5; ++i)
    Device("fire", "Node" + std::to_string(i), i < 3 ? "FOTAV1" : "");
  Device("lamp", "other", "L1");
  {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    stack_.platform().registry().AddToGroup("fire_Node1", "canary");
    stack_.platform().registry().AddToGroup("fire_Node4", "canary");
  }
  Answer a = Call("GET", "/api/v1/devices");  // as before: everything, as an array
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.body.size(), 6u);
  EXPECT_EQ(a.total, "6");

  a = Call("GET", "/api/v1/devices?q=NODE&limit=2&offset=1");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.total, "5");
  ASSERT_EQ(a.body.size(), 2u);
  EXPECT_EQ(a.body[0]["device_id"], "fire_Node1");
  EXPECT_EQ(a.body[1]["device_id"], "fire_Node2");
  EXPECT_EQ(a.body[0]["groups"], json({"canary"}));

  EXPECT_EQ(Call("GET", "/api/v1/devices?version=FOTAV1").total, "3");
  a = Call("GET", "/api/v1/devices?version=&product_id=fire");
  EXPECT_EQ(a.total, "2");
  EXPECT_EQ(a.body[0]["device_id"], "fire_Node3");
  EXPECT_EQ(Call("GET", "/api/v1/devices?group=canary&version=FOTAV1").total, "1");
  EXPECT_EQ(Call("GET", "/api/v1/devices?online=true").total, "4");  // those that reported
  a = Call("GET", "/api/v1/devices?online=false&product_id=fire");
  EXPECT_EQ(a.total, "2");
  for (const json& d : a.body)
    EXPECT_FALSE(d["online"].get<bool>());
  a = Call("GET", "/api/v1/devices?q=node&offset=10&limit=5");
  EXPECT_EQ(a.total, "5");
  EXPECT_TRUE(a.body.empty());

  for (const char* bad : {"limit=0", "limit=1001", "limit=x", "offset=-1", "online=maybe"}) {
    const Answer b = Call("GET", std::string("/api/v1/devices?") + bad);
    EXPECT_EQ(b.status, 400) << bad;
    EXPECT_TRUE(b.body.contains("error")) << bad;
  }
}

TEST_F(Console, DeviceSearch_HundredThousandDevices_PageFromSql) {
  constexpr int kDevices = 100000;
  {
    // One transaction, straight into the table: registering is not what is measured.
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    Transaction tx(stack_.platform().db());
    Statement ins = stack_.platform().db().Prepare(
        "INSERT INTO devices (device_id, product_id, node_id, fw_version, last_seen, online, "
        "created_at) VALUES (?, 'fire', ?, ?, ?, 1, 0)");
    const int64_t now = std::time(nullptr);
    for (int i = 0; i < kDevices; ++i) {
      char node[16];
      std::snprintf(node, sizeof(node), "n%06d", i);
      ins.Reset()
          .Bind(1, std::string("fire_") + node)
          .Bind(2, node)
          .Bind(3, i % 10 == 0 ? "FOTAV2" : "FOTAV1")
          .Bind(4, i % 4 == 0 ? now : int64_t{0});
      ins.Run();
    }
    tx.Commit();
  }
  auto c = Client();
  // The whole list (no limit) is written device by device: the server's peak memory grows by
  // little more than the text (18 MB here, 18 MB more in this client); a JSON tree of it took
  // over 100 MB more.
  const int64_t peak_before = PeakMemoryKb();
  httplib::Result all = c->Get("/api/v1/devices");
  const int64_t peak_rise_mb = (PeakMemoryKb() - peak_before) / 1024;
  ASSERT_TRUE(all);
  ASSERT_EQ(all->status, 200);
  std::printf("devices-all: %zu bytes, peak memory +%lld MB\n", all->body.size(),
              static_cast<long long>(peak_rise_mb));
  EXPECT_LT(peak_rise_mb, 64);
  const json every = json::parse(all->body);
  ASSERT_EQ(every.size(), static_cast<size_t>(kDevices));
  EXPECT_EQ(every[0]["device_id"], "fire_n000000");
  EXPECT_EQ(all->get_header_value("X-Total-Count"), std::to_string(kDevices));

  const auto start = std::chrono::steady_clock::now();
  httplib::Result r = c->Get("/api/v1/devices?version=FOTAV2&limit=50&offset=9950");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::printf(
      "devices-page: total=%d page_ms=%lld\n", kDevices,
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_EQ(r->get_header_value("X-Total-Count"), "10000");
  const json page = json::parse(r->body);
  ASSERT_EQ(page.size(), 50u);
  EXPECT_EQ(page[0]["device_id"], "fire_n099500");
  EXPECT_EQ(page[49]["device_id"], "fire_n099990");

  r = c->Get("/api/v1/devices?q=N0500&online=true&limit=10");
  ASSERT_EQ(r->status, 200);
  // n050000..n050099 match; every fourth was seen now.
  EXPECT_EQ(r->get_header_value("X-Total-Count"), "25");
  EXPECT_EQ(json::parse(r->body)[1]["device_id"], "fire_n050004");
  const Answer o = Call("GET", "/api/v1/overview");
  EXPECT_EQ(o.body["devices"], json({{"total", kDevices}, {"online", kDevices / 4}}));
  EXPECT_EQ(o.body["versions"][0], json({{"version", "FOTAV1"}, {"devices", 90000}}));
}

TEST_F(Console, History_NewestFirstWithWhatTheTaskStored) {
  const std::string dev = Device("fire", "h", "FOTAV0");  // no diff from FOTAV0: full
  EXPECT_EQ(Call("GET", "/api/v1/devices/" + dev + "/history").body, json::array());
  const Answer t1 = Call("POST", "/api/v1/tasks",
                         {{"product_id", "fire"},
                          {"name", "first"},
                          {"target_version", "FOTAV2"},
                          {"devices", {dev}}});
  ASSERT_EQ(t1.status, 201) << t1.body;
  Report(dev, "FOTAV0");  // commanded: the full package
  ASSERT_EQ(
      Call("POST", "/api/v1/tasks/" + std::to_string(t1.body["task_id"].get<int64_t>()) + "/cancel")
          .status,
      200);
  const Answer t2 =
      Call("POST", "/api/v1/tasks",
           {{"product_id", "fire"}, {"target_version", "FOTAV2"}, {"devices", {dev}}});
  ASSERT_EQ(t2.status, 201) << t2.body;

  const Answer h = Call("GET", "/api/v1/devices/" + dev + "/history");
  ASSERT_EQ(h.status, 200) << h.body;
  ASSERT_EQ(h.body.size(), 2u);
  EXPECT_EQ(h.body[0]["task_id"], t2.body["task_id"]);
  EXPECT_EQ(h.body[0]["state"], "Waiting");
  EXPECT_EQ(h.body[0]["task_name"], "upgrade to FOTAV2");
  EXPECT_FALSE(h.body[0].contains("package_id"));
  EXPECT_FALSE(h.body[0].contains("diff"));
  EXPECT_EQ(h.body[1]["task_id"], t1.body["task_id"]);
  EXPECT_EQ(h.body[1]["task_name"], "first");
  EXPECT_EQ(h.body[1]["kind"], "firmware");
  EXPECT_EQ(h.body[1]["target_version"], "FOTAV2");
  EXPECT_EQ(h.body[1]["state"], "Stopped");
  EXPECT_EQ(h.body[1]["result"], "task cancelled");
  EXPECT_EQ(h.body[1]["package_id"], full_.package_id);
  EXPECT_EQ(h.body[1]["diff"], false);
  EXPECT_TRUE(h.body[1]["updated_at"].is_number_integer());
  EXPECT_TRUE(h.body[1]["created_at"].is_number_integer());
  EXPECT_EQ(Call("GET", "/api/v1/devices/nobody/history").status, 404);
}

TEST_F(Console, Preview_SaysWhatTheTaskThenSendsAndChangesNothing) {
  std::vector<std::string> v1, others;
  for (int i = 0; i < 3; ++i)
    v1.push_back(Device("fire", "v1_" + std::to_string(i), "FOTAV1"));
  others.push_back(Device("fire", "never", ""));
  others.push_back(Device("fire", "old", "FOTAV0"));
  const std::string current = Device("fire", "current", "FOTAV2");
  const json spec = {{"product_id", "fire"},
                     {"target_version", "FOTAV2"},
                     {"whole_product", true},
                     {"rollout", {{"waves", {{{"name", "canary"}, {"devices", {v1[0]}}}}}}}};
  const int64_t audit = AuditRows();
  const Answer p = Call("POST", "/api/v1/tasks/preview", spec);
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(p.body["devices"], 6);
  EXPECT_EQ(p.body["diff"], json({{"devices", 3}, {"bytes", 3 * diff_.size}}));
  EXPECT_EQ(p.body["full"], json({{"devices", 2}, {"bytes", 2 * full_.size}}));
  EXPECT_EQ(p.body["up_to_date"], 1);
  EXPECT_EQ(p.body["no_package"], 0);
  EXPECT_EQ(p.body["waves"], json::parse(R"([{"name":"canary","devices":1},
                                             {"name":"rest","devices":5}])"));
  EXPECT_EQ(AuditRows(), audit);                                // not audited
  EXPECT_EQ(Call("GET", "/api/v1/tasks").body, json::array());  // nothing made

  // A pinned diff package: devices on another version get none.
  const Answer pinned = Call(
      "POST", "/api/v1/tasks/preview",
      {{"product_id", "fire"}, {"package_id", diff_.package_id}, {"devices", {v1[1], others[1]}}});
  ASSERT_EQ(pinned.status, 200) << pinned.body;
  EXPECT_EQ(pinned.body["diff"]["devices"], 1);
  EXPECT_EQ(pinned.body["no_package"], 1);

  // The same refusals as POST /tasks.
  for (const json& bad :
       {json{{"target_version", "FOTAV2"}},
        json{{"product_id", "fire"}, {"target_version", "FOTAV9"}, {"whole_product", true}},
        json{{"product_id", "fire"}, {"target_version", "FOTAV2"}}}) {
    const Answer a = Call("POST", "/api/v1/tasks/preview", bad);
    EXPECT_EQ(a.status, 400) << bad;
    EXPECT_EQ(a.body, Call("POST", "/api/v1/tasks", bad).body) << bad;
  }

  // Then the task, with no rollout waves in the way: every device commanded from its version.
  json run = spec;
  run.erase("rollout");
  const Answer t = Call("POST", "/api/v1/tasks", run);
  ASSERT_EQ(t.status, 201) << t.body;
  for (const std::string& d : v1)
    Report(d, "FOTAV1");
  Report(others[0], "");
  Report(others[1], "FOTAV0");
  Report(current, "FOTAV2");
  const json task =
      Call("GET", "/api/v1/tasks/" + std::to_string(t.body["task_id"].get<int64_t>())).body;
  int64_t diffs = 0, fulls = 0, bytes_diff = 0, bytes_full = 0, success = 0;
  for (const json& d : task["devices"]) {
    if (d["status"] == "Success") ++success;
    if (d["package_id"] == diff_.package_id) {
      ++diffs;
      bytes_diff += diff_.size;
    } else if (d["package_id"] == full_.package_id) {
      ++fulls;
      bytes_full += full_.size;
    }
  }
  EXPECT_EQ(diffs, p.body["diff"]["devices"]);
  EXPECT_EQ(bytes_diff, p.body["diff"]["bytes"]);
  EXPECT_EQ(fulls, p.body["full"]["devices"]);
  EXPECT_EQ(bytes_full, p.body["full"]["bytes"]);
  EXPECT_EQ(success, p.body["up_to_date"]);
}

TEST_F(Console, Events_OverviewFirstThenPushedChanges) {
  const std::string dev = Device("fire", "live", "FOTAV1");
  auto events = Events("?devices=1");
  ASSERT_EQ(events->Status(), 200);
  EXPECT_EQ(events->Header("Content-Type"), "text/event-stream");
  EXPECT_EQ(events->Header("Cache-Control"), "no-store");
  EXPECT_EQ(events->Header("Content-Encoding"), "");  // never buffered by a compressor
  const auto first = events->WaitFor(0, [](const auto& e) { return e.name == "overview"; });
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, 0u);
  EXPECT_EQ(events->Events()[0].data, Call("GET", "/api/v1/overview").body);

  // A device registered through the API: a new overview.
  ASSERT_EQ(Call("POST", "/api/v1/devices", {{"product_id", "fire"}, {"node_id", "new"}}).status,
            201);
  auto next = events->WaitFor(*first + 1, [](const auto& e) {
    return e.name == "overview" && e.data["devices"]["total"] == 2;
  });
  ASSERT_TRUE(next.has_value());

  // A task: its summary, as GET /tasks/{id}?devices=false says it.
  const Answer t = Call("POST", "/api/v1/tasks",
                        {{"product_id", "fire"}, {"target_version", "FOTAV2"}, {"devices", {dev}}});
  ASSERT_EQ(t.status, 201);
  const int64_t id = t.body["task_id"];
  next = events->WaitFor(
      *next + 1, [id](const auto& e) { return e.name == "task" && e.data["task_id"] == id; });
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(events->Events()[*next].data,
            Call("GET", "/api/v1/tasks/" + std::to_string(id) + "?devices=false").body);

  // The device reports over the device protocol: commanded (Processing), a device event.
  Report(dev, "FOTAV1");
  next = events->WaitFor(*next + 1, [&](const auto& e) {
    return e.name == "device" && e.data["device_id"] == dev &&
           e.data.value("state", "") == "Processing";
  });
  ASSERT_TRUE(next.has_value());
  const json d = events->Events()[*next].data;
  EXPECT_EQ(d["task_id"], id);
  EXPECT_EQ(d["fw_version"], "FOTAV1");
  EXPECT_EQ(d["online"], true);
  // It carries the device's task row as GET /tasks/{id} lists it (the console's rows follow it).
  const json rows = Call("GET", "/api/v1/tasks/" + std::to_string(id)).body["devices"];
  ASSERT_EQ(rows.size(), 1u);
  for (const char* field : {"attempts", "progress", "package_id", "result_code", "description"}) {
    ASSERT_TRUE(d.contains(field)) << field;
    EXPECT_EQ(d[field], rows[0][field]) << field;
  }
  EXPECT_NE(d["package_id"], nullptr);
  // And the task's counts moved with it.
  ASSERT_TRUE(events
                  ->WaitFor(0,
                            [id](const auto& e) {
                              return e.name == "task" && e.data["task_id"] == id &&
                                     e.data["counts"].value("Processing", 0) == 1;
                            })
                  .has_value());
}

TEST_F(Console, Events_TaskFilter_OnlyThatTasksDevices) {
  const std::string a = Device("fire", "a", "FOTAV1");
  const std::string b = Device("fire", "b", "FOTAV1");
  const Answer t = Call("POST", "/api/v1/tasks",
                        {{"product_id", "fire"}, {"target_version", "FOTAV2"}, {"devices", {a}}});
  ASSERT_EQ(t.status, 201);
  auto events = Events("?task=" + std::to_string(t.body["task_id"].get<int64_t>()));
  ASSERT_TRUE(events->WaitFor(0, [](const auto& e) { return e.name == "overview"; }).has_value());
  Report(b, "FOTAV0");
  Report(a, "FOTAV1");
  ASSERT_TRUE(
      events
          ->WaitFor(0,
                    [&](const auto& e) { return e.name == "device" && e.data["device_id"] == a; })
          .has_value());
  for (const auto& e : events->Events())
    EXPECT_NE(e.data.value("device_id", ""), b);
  EXPECT_EQ(Events("?task=999")->Status(), 404);
  EXPECT_EQ(Events("?devices=perhaps")->Status(), 400);
}

TEST_F(Console, Events_NinthStreamRefusedOrdinaryRequestsStillServed) {
  // kMaxEventStreamsPerCaller each: the admin token and others.
  std::vector<httplib::Headers> callers = {{}};
  while (static_cast<int>(callers.size()) * kMaxEventStreamsPerCaller < kMaxEventStreams) {
    const Answer t = Call("POST", "/api/v1/tokens",
                          {{"name", "wall" + std::to_string(callers.size())}, {"scope", "read"}});
    ASSERT_EQ(t.status, 201) << t.body;
    callers.push_back({{"Authorization", "Bearer " + t.body["token"].get<std::string>()}});
  }
  std::vector<std::unique_ptr<EventClient>> open;
  for (int i = 0; i < kMaxEventStreams; ++i) {
    open.push_back(Events("", callers[i / kMaxEventStreamsPerCaller]));
    ASSERT_TRUE(
        open.back()->WaitFor(0, [](const auto& e) { return e.name == "overview"; }).has_value())
        << "stream " << i;
  }
  auto ninth = Events("", callers.back());
  EXPECT_EQ(ninth->Status(), 503);
  EXPECT_EQ(ninth->Header("Retry-After"), "5");
  // The streams hold workers of their own: the API still answers, several at once.
  std::vector<std::thread> calls;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    calls.emplace_back([&] { ok += Call("GET", "/api/v1/overview").status == 200; });
  }
  for (auto& c : calls)
    c.join();
  EXPECT_EQ(ok, 6);
  // A closed stream frees its slot once the server writes to it and finds it gone (a change
  // it sends, or at the latest its next ping).
  open.pop_back();
  EXPECT_TRUE(SlotFreed("n", callers.back())) << "the slot of the closed stream was never freed";
}

// One token (or one user, whatever the session) holds at most kMaxEventStreamsPerCaller
// streams: one more is refused with 429 while another caller still gets one; a closed one
// frees its slot.
TEST_F(Console, Events_PerCallerLimit_OthersStillServed) {
  std::vector<std::unique_ptr<EventClient>> mine;
  for (int i = 0; i < kMaxEventStreamsPerCaller; ++i) {
    mine.push_back(Events());
    ASSERT_TRUE(
        mine.back()->WaitFor(0, [](const auto& e) { return e.name == "overview"; }).has_value())
        << "stream " << i;
  }
  auto one_more = Events();
  EXPECT_EQ(one_more->Status(), 429);
  EXPECT_EQ(one_more->Header("Retry-After"), "5");
  const Answer t = Call("POST", "/api/v1/tokens", {{"name", "other"}, {"scope", "read"}});
  ASSERT_EQ(t.status, 201) << t.body;
  auto other = Events("", {{"Authorization", "Bearer " + t.body["token"].get<std::string>()}});
  EXPECT_TRUE(other->WaitFor(0, [](const auto& e) { return e.name == "overview"; }).has_value());
  mine.pop_back();
  EXPECT_TRUE(SlotFreed("m")) << "the slot of the closed stream was never freed";
}

// A stream outlives the request that checked its credential: once the token is revoked, the
// session ended or its user disabled, the stream ends (those changes wake it at once; without
// one, the next ping would), and a new one is refused.
TEST_F(Console, Events_EndWhenTheirTokenOrSessionEnds) {
  const Answer token = Call("POST", "/api/v1/tokens", {{"name", "wall"}, {"scope", "read"}});
  ASSERT_EQ(token.status, 201) << token.body;
  const httplib::Headers bearer = {
      {"Authorization", "Bearer " + token.body["token"].get<std::string>()}};
  auto by_token = Events("", bearer);
  auto by_admin = Events();
  ASSERT_TRUE(by_token->WaitFor(0, [](const auto& e) { return e.name == "overview"; }).has_value());
  ASSERT_TRUE(by_admin->WaitFor(0, [](const auto& e) { return e.name == "overview"; }).has_value());
  auto c = Client();
  auto r = c->Delete("/api/v1/tokens/" + std::to_string(token.body["id"].get<int64_t>()));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(by_token->WaitDone(seconds(5))) << "the revoked token's stream goes on";
  EXPECT_EQ(Events("", bearer)->Status(), 401);

  // Sessions: one signed out, one of a user then disabled.
  {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    stack_.platform().accounts().CreateUser("ann", "viewer", "ann-password-0123");
    stack_.platform().accounts().CreateUser("bob", "viewer", "bob-password-0123");
  }
  const auto sign_in = [&](const std::string& name, const std::string& password) {
    auto in =
        Client()->Post("/api/v1/session", json({{"username", name}, {"password", password}}).dump(),
                       "application/json");
    EXPECT_TRUE(in && in->status == 200);
    const std::string set = in ? in->get_header_value("Set-Cookie") : "";
    return std::make_pair(set.substr(0, set.find(';')),
                          in ? json::parse(in->body).value("csrf_token", "") : "");
  };
  const auto [ann_cookie, ann_csrf] = sign_in("ann", "ann-password-0123");
  const auto [bob_cookie, bob_csrf] = sign_in("bob", "bob-password-0123");
  auto ann = Events("", {{"Cookie", ann_cookie}});
  auto bob = Events("", {{"Cookie", bob_cookie}});
  ASSERT_TRUE(ann->WaitFor(0, [](const auto& e) { return e.name == "overview"; }).has_value());
  ASSERT_TRUE(bob->WaitFor(0, [](const auto& e) { return e.name == "overview"; }).has_value());
  httplib::SSLClient out("127.0.0.1", stack_.service().http_port());
  out.set_ca_cert_path(stack_.platform().tls().ca_cert.c_str());
  r = out.Delete("/api/v1/session", {{"Cookie", ann_cookie}, {"X-CSRF-Token", ann_csrf}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 204);
  EXPECT_TRUE(ann->WaitDone(seconds(5))) << "the signed-out session's stream goes on";
  r = c->Patch("/api/v1/users/bob", json({{"disabled", true}}).dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(bob->WaitDone(seconds(5))) << "the disabled user's stream goes on";

  EXPECT_FALSE(by_admin->WaitDone(milliseconds(500))) << "other streams go on";
}

TEST_F(Console, Events_StopWithStreamsOpenReturnsPromptly) {
  auto a = Events();
  auto b = Events("?devices=1");
  ASSERT_TRUE(a->WaitFor(0, [](const auto& e) { return e.name == "overview"; }).has_value());
  ASSERT_TRUE(b->WaitFor(0, [](const auto& e) { return e.name == "overview"; }).has_value());
  const auto start = std::chrono::steady_clock::now();
  stack_.service().Stop();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, seconds(3));
  EXPECT_TRUE(a->WaitDone(seconds(5)));
  EXPECT_TRUE(b->WaitDone(seconds(5)));
}

}  // namespace
}  // namespace ota::server
