// The audit log and the structured logs against a real ota-server in-process: HTTPS API on a
// free loopback port (TLS checked against the platform's CA), SQLite, and for the log test a
// real Mosquitto with the auth plugin and a device that sends a report the model refuses.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "mqtt_test_client.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/host/keys.hpp"
#include "ota/server/audit_log.hpp"
#include "ota/server/log.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::server {
namespace {

using nlohmann::json;

constexpr const char* kDeviceSecret = "audit-device-secret-0123456789";

const json kModel = {{"services",
                      {{{"service_id", "DeviceStatus"},
                        {"properties", {{{"name", "radioValue"}, {"type", "int"}}}}}}}};

// Every column of every audit row, as text: where a secret must never be.
std::string AllAuditText(Database& db) {
  std::string out;
  Statement st = db.Prepare(
      "SELECT at, actor, method, route, object_ids, summary, remote_addr, status FROM audit_log");
  while (st.Step()) {
    for (int i = 0; i < 8; ++i)
      out += st.Text(i) + "\n";
  }
  return out;
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stack_.Start(testing::NoBroker(1000)));
    token_ = stack_.admin_token();
  }

  std::unique_ptr<httplib::SSLClient> Client(const std::string& token) {
    return stack_.Client(token);
  }
  int Post(const std::string& path, const json& body, const std::string& token) {
    auto r = Client(token)->Post(path, body.dump(), "application/json");
    return r ? r->status : -1;
  }
  int Post(const std::string& path, const json& body) { return Post(path, body, token_); }
  json Audit(const std::string& query) {
    auto r = Client(token_)->Get("/api/v1/audit" + query);
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r ? json::parse(r->body) : json();
  }

  testing::PlatformStack stack_{"ota-audit"};
  std::string token_;
};

TEST_F(AuditTest, Actions_RecordedWithActorRouteIdsStatusAndAddress) {
  ASSERT_EQ(Post("/api/v1/products", {{"product_id", "fire"}, {"name", "F"}, {"model", kModel}}),
            201);
  ASSERT_EQ(Post("/api/v1/devices", {{"product_id", "fire"}, {"node_id", "n1"}}), 201);
  auto r =
      Client(token_)->Patch("/api/v1/devices/fire_n1", R"({"enabled":false})", "application/json");
  ASSERT_EQ(r->status, 200);
  ASSERT_EQ(Post("/api/v1/tasks/999/pause", {{"reason", "storm"}}), 404);
  // Reads are not actions; the broker's webhooks are not operator actions.
  ASSERT_EQ(Client(token_)->Get("/api/v1/devices/fire_n1")->status, 200);
  ASSERT_EQ(
      Post("/broker/v1/acl", {{"username", "fire_n1"}, {"topic", "x"}, {"action", "publish"}}),
      200);

  const json a = Audit("");
  ASSERT_EQ(a["total"], 4) << a.dump(1);
  const json& items = a["items"];
  const std::string me = AuditActor(token_);
  EXPECT_EQ(me.rfind("token:", 0), 0u);
  EXPECT_EQ(me.size(), 6u + 12u);
  for (const json& row : items) {
    EXPECT_EQ(row["actor"], me);
    EXPECT_EQ(row["remote_addr"], "127.0.0.1");
    EXPECT_GT(row["at"].get<int64_t>(), 1700000000);
  }
  // Latest first.
  EXPECT_EQ(items[0]["method"], "POST");
  EXPECT_EQ(items[0]["route"], "/api/v1/tasks/{task_id}/pause");
  EXPECT_EQ(items[0]["object_ids"], json({{"task_id", "999"}}));
  EXPECT_EQ(items[0]["status"], 404) << "a refused action is recorded with its status";
  EXPECT_EQ(items[0]["summary"]["body"]["reason"], "storm");
  EXPECT_EQ(items[1]["method"], "PATCH");
  EXPECT_EQ(items[1]["route"], "/api/v1/devices/{device_id}");
  EXPECT_EQ(items[1]["object_ids"]["device_id"], "fire_n1");
  EXPECT_EQ(items[1]["summary"]["body"]["enabled"], false);
  EXPECT_EQ(items[2]["route"], "/api/v1/devices");
  EXPECT_EQ(items[2]["status"], 201);
  EXPECT_EQ(items[2]["object_ids"]["device_id"], "fire_n1") << "what it created";
  EXPECT_EQ(items[3]["route"], "/api/v1/products");
  EXPECT_EQ(items[3]["object_ids"]["product_id"], "fire");
}

TEST_F(AuditTest, RefusedAttempts_RecordedWithoutTheToken) {
  const std::string wrong = "ota_not-a-real-token-but-secret-looking";
  EXPECT_EQ(Post("/api/v1/products", {{"name", "x"}}, wrong), 401);
  EXPECT_EQ(Post("/api/v1/products", {{"name", "y"}}, ""), 401);
  EXPECT_EQ(Post("/api/v1/products", {{"product_id", "p"}, {"name", "p"}}), 201);
  EXPECT_EQ(Post("/api/v1/products", {{"product_id", "p"}, {"name", "p"}}), 409);
  EXPECT_EQ(Post("/api/v1/products", json::array()), 400) << "not an object";

  const json items = Audit("")["items"];
  ASSERT_EQ(items.size(), 5u) << items.dump(1);
  EXPECT_EQ(items[0]["status"], 400);
  EXPECT_EQ(items[1]["status"], 409);
  EXPECT_EQ(items[2]["status"], 201);
  EXPECT_EQ(items[3]["status"], 401);
  EXPECT_EQ(items[3]["actor"], "anonymous");
  EXPECT_EQ(items[4]["status"], 401);
  EXPECT_EQ(items[4]["actor"], AuditActor(wrong));
  EXPECT_EQ(items[4]["route"], "/api/v1/products");
  const std::string all = AllAuditText(stack_.platform().db());
  EXPECT_EQ(all.find(wrong), std::string::npos);
  EXPECT_EQ(all.find(token_), std::string::npos);
  // Unauthenticated, the log itself is not readable.
  EXPECT_EQ(Client("")->Get("/api/v1/audit")->status, 401);
}

TEST_F(AuditTest, Secrets_NeverStored) {
  ASSERT_EQ(Post("/api/v1/products", {{"product_id", "fire"}, {"name", "F"}, {"model", kModel}}),
            201);
  testing::TestKey key;
  const std::string pem = host::PublicKeyPem(key.pkey());
  ASSERT_EQ(Post("/api/v1/products/fire/keys", {{"public_pem", pem}}), 201);
  auto created = Client(token_)->Post(
      "/api/v1/devices",
      json{{"product_id", "fire"}, {"node_id", "n1"}, {"secret", kDeviceSecret}}.dump(),
      "application/json");
  ASSERT_EQ(created->status, 201);
  ASSERT_EQ(json::parse(created->body)["secret"], kDeviceSecret);
  // A generated secret is only in the answer; answers are never stored.
  auto generated = Client(token_)->Post("/api/v1/devices",
                                        json{{"product_id", "fire"}, {"node_id", "n2"}}.dump(),
                                        "application/json");
  ASSERT_EQ(generated->status, 201);
  const std::string generated_secret = json::parse(generated->body)["secret"];
  // A secret nested deep and under other secret-looking names, and a refused create.
  ASSERT_EQ(Post("/api/v1/devices", {{"product_id", "nope"},
                                     {"node_id", "n3"},
                                     {"secret", kDeviceSecret},
                                     {"extra", {{"Password", kDeviceSecret}}}}),
            404);
  // A package (binary: only its size) and a download token for it (the token is an answer).
  const BoardProfile& board = kStm32f429Fire;
  host::PackageSpec spec;
  spec.version = "FOTAV2";
  spec.image = testing::MakeTestImage(
      "FOTAV2", 20000, board.internal_base + board.partition(PartitionId::kRunning).offset, 2);
  const std::vector<uint8_t> pkg = testing::MakePackage(spec, &key);
  auto up = Client(token_)->Post("/api/v1/products/fire/packages?file_name=v2.bin",
                                 std::string(pkg.begin(), pkg.end()), "application/octet-stream");
  ASSERT_EQ(up->status, 201) << up->body;
  const int64_t package_id = json::parse(up->body)["package_id"];
  auto grant =
      Client(token_)->Post("/api/v1/packages/" + std::to_string(package_id) + "/download-tokens",
                           json{{"device_id", "fire_n1"}}.dump(), "application/json");
  ASSERT_EQ(grant->status, 201);
  const std::string access_token = json::parse(grant->body)["access_token"];

  const std::string all = AllAuditText(stack_.platform().db());
  EXPECT_EQ(all.find(kDeviceSecret), std::string::npos) << all;
  EXPECT_EQ(all.find(generated_secret), std::string::npos);
  EXPECT_EQ(all.find(access_token), std::string::npos);
  EXPECT_EQ(all.find(token_), std::string::npos);
  EXPECT_EQ(all.find(pem.substr(60)), std::string::npos) << "long values are cut";

  const json items = Audit("?limit=10")["items"];
  ASSERT_EQ(items.size(), 7u);
  EXPECT_EQ(items[0]["route"], "/api/v1/packages/{package_id}/download-tokens");
  EXPECT_EQ(items[0]["object_ids"]["package_id"], std::to_string(package_id));
  EXPECT_EQ(items[1]["summary"]["body_bytes"], pkg.size());
  EXPECT_EQ(items[1]["summary"]["query"]["file_name"], "v2.bin");
  EXPECT_EQ(items[2]["status"], 404);
  EXPECT_EQ(items[2]["summary"]["body"]["secret"], "[redacted]");
  EXPECT_EQ(items[2]["summary"]["body"]["extra"]["Password"], "[redacted]");
  EXPECT_EQ(items[4]["summary"]["body"]["secret"], "[redacted]");
  EXPECT_EQ(items[4]["summary"]["body"]["node_id"], "n1");
}

TEST_F(AuditTest, Paging_AndFilters) {
  const std::string other = stack_.platform().CreateApiToken("second operator");
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Post("/api/v1/products", {{"product_id", "p" + std::to_string(i)}, {"name", "p"}},
                   i % 2 == 0 ? token_ : other),
              201);
  }
  const json page = Audit("?limit=2&offset=1");
  EXPECT_EQ(page["total"], 5);
  ASSERT_EQ(page["items"].size(), 2u);
  EXPECT_EQ(page["items"][0]["object_ids"]["product_id"], "p3");
  EXPECT_EQ(page["items"][1]["object_ids"]["product_id"], "p2");

  const json theirs = Audit("?actor=" + AuditActor(other));
  EXPECT_EQ(theirs["total"], 2);
  for (const json& row : theirs["items"])
    EXPECT_EQ(row["actor"], AuditActor(other));

  EXPECT_EQ(Audit("?since=" + std::to_string(std::time(nullptr) + 3600))["total"], 0);
  EXPECT_EQ(Audit("?since=" + std::to_string(std::time(nullptr) - 3600))["total"], 5);
  const json doc = json::parse(Client("")->Get("/api/v1/openapi.json")->body);
  EXPECT_TRUE(doc["paths"]["/audit"].contains("get"));
  for (const char* bad : {"?limit=0", "?limit=1001", "?offset=-1", "?since=soon"}) {
    EXPECT_EQ(Client(token_)->Get(std::string("/api/v1/audit") + bad)->status, 400) << bad;
  }
}

// Requests to devices run without the platform lock: recorded after, with their outcome.
TEST_F(AuditTest, DeviceRequests_RecordedAfterWithTheirOutcome) {
  ASSERT_EQ(Post("/api/v1/devices/ghost/commands",
                 {{"service_id", "s"}, {"command_name", "reboot"}, {"paras", {{"pin", "1234"}}}}),
            404);
  const json items = Audit("")["items"];
  ASSERT_EQ(items.size(), 1u) << items.dump(1);
  EXPECT_EQ(items[0]["route"], "/api/v1/devices/{device_id}/commands");
  EXPECT_EQ(items[0]["object_ids"]["device_id"], "ghost");
  EXPECT_EQ(items[0]["status"], 404);
  EXPECT_EQ(items[0]["summary"]["body"]["command_name"], "reboot");
}

// The row commits with the change: when it cannot be written, the change is not made either.
TEST_F(AuditTest, NoChangeWithoutItsRecord) {
  {
    std::lock_guard<std::mutex> guard(stack_.platform().lock());
    stack_.platform().db().Exec("ALTER TABLE audit_log RENAME TO audit_log_gone");
  }
  EXPECT_EQ(Post("/api/v1/products", {{"product_id", "p"}, {"name", "p"}}), 500);
  EXPECT_EQ(Client(token_)->Get("/api/v1/products/p")->status, 404);
}

TEST_F(AuditTest, Bounded_KeepsTheNewestRows) {
  Database& db = stack_.platform().db();
  for (int i = 0; i < 7; ++i) {
    AuditEntry e;
    e.at = 1000 + i;
    e.actor = "cli";
    e.method = "CLI";
    e.route = "r" + std::to_string(i);
    RecordAudit(db, e, 3);
  }
  const json all = ListAudit(db, 100, 0, "", 0);
  ASSERT_EQ(all["total"], 3);
  EXPECT_EQ(all["items"][0]["route"], "r6");
  EXPECT_EQ(all["items"][2]["route"], "r4");
}

TEST(AuditSummary, CutsAndRedacts) {
  const json s = AuditSummary(json{{"api_key", "k"},
                                   {"access_token", "t"},
                                   {"long", std::string(5000, 'x')},
                                   {"list", json::array({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})},
                                   {"deep", {{"a", {{"b", {{"c", {{"d", 1}}}}}}}}}}
                                  .dump(),
                              {{"signature", std::string(140, 'a')}});
  EXPECT_EQ(s["body"]["api_key"], "[redacted]");
  EXPECT_EQ(s["body"]["access_token"], "[redacted]");
  EXPECT_LT(s["body"]["long"].get<std::string>().size(), 80u);
  EXPECT_EQ(s["body"]["list"].size(), 11u);
  EXPECT_EQ(s["body"]["deep"]["a"]["b"]["c"], "...");
  EXPECT_LT(s["query"]["signature"].get<std::string>().size(), 80u);
  EXPECT_EQ(AuditSummary("\x01\x02 not json", {}), json({{"body_bytes", 11}}));
  // Too many members to stay compact: only the size.
  json wide = json::object();
  for (int i = 0; i < 200; ++i)
    wide["k" + std::to_string(i)] = std::string(60, 'v');
  EXPECT_TRUE(AuditSummary(wide.dump(), {}).contains("truncated"));
}

// serve --log-format json: the rejected report of a device is one JSON line naming it, and no
// secret (the device's, the platform's broker password, the API token) appears anywhere.
TEST(StructuredLogs, JsonLine_ForARejectedDeviceMessage_CarriesDeviceId_NoSecret) {
  testing::PlatformStack stack("ota-logs");
  Platform& platform = stack.platform();
  platform.registry().CreateProduct("fire", "FIRE", "embedfire", "MQTT", kModel);
  const std::string device =
      platform.registry().CreateDevice("fire", "n1", "", kDeviceSecret).first.device_id;
  std::string platform_password;  // the platform's broker identity (made by Platform)
  std::ifstream(platform.platform_password_path()) >> platform_password;
  ASSERT_FALSE(platform_password.empty());

  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  SetLogFormat(LogFormat::kJson);
  SetLogStream(out);
  {
    ASSERT_TRUE(stack.Start());
    auto dev = stack.Session(device, kDeviceSecret);
    ASSERT_TRUE(dev);
    ASSERT_TRUE(dev->Publish(
        "$oc/devices/" + device + "/sys/properties/report",
        R"({"services":[{"service_id":"DeviceStatus","properties":{"radioValue":"x"}}]})"));
    for (int i = 0; i < 100 && platform.registry().Counter("rejected_property_reports") == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(platform.registry().Counter("rejected_property_reports"), 1);
    stack.StopService();
  }
  SetLogStream(nullptr);
  SetLogFormat(LogFormat::kText);

  std::rewind(out);
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), out)) > 0;)
    text.append(buf, n);
  std::fclose(out);
  std::istringstream lines(text);
  std::string line;
  int rejected = 0;
  while (std::getline(lines, line)) {
    const json j = json::parse(line);  // every line is one JSON object
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_TRUE(j["ts"].is_string() && j["level"].is_string() && j["msg"].is_string()) << line;
    if (j["msg"].get<std::string>().rfind("rejected property_reports", 0) == 0) {
      ++rejected;
      EXPECT_EQ(j["device_id"], device) << line;
      EXPECT_EQ(j["level"], "warning");
    }
  }
  EXPECT_EQ(rejected, 1) << text;
  EXPECT_EQ(text.find(kDeviceSecret), std::string::npos);
  EXPECT_EQ(text.find(platform_password), std::string::npos);
}

}  // namespace
}  // namespace ota::server
