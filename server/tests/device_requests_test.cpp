// Requests to devices against the whole platform: a real Mosquitto with the auth plugin, a
// real ota-server (HTTPS API, MQTT bridge, ticker) on free loopback ports, and devices that
// answer (or do not) over MQTT as IoTDA's device SDKs do.
#include <gtest/gtest.h>
#include <httplib.h>

#include <ctime>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "mqtt_test_client.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/server/device_requests.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"

namespace ota::server {
namespace {

using nlohmann::json;
using testing::MqttTestClient;
using testing::ReceivedMessage;
using Answer = testing::ApiAnswer;

constexpr const char* kA = "smoke_a";
constexpr const char* kB = "smoke_b";
constexpr const char* kSecret = "device-secret-1";

std::string Topic(const std::string& device, const std::string& rest) {
  return "$oc/devices/" + device + "/sys/" + rest;
}

// A device with the SDKs' view of its topics: it takes everything under its sys/.
class Device {
 public:
  Device(int port, const std::string& id) : id_(id) {
    client_ = std::make_unique<MqttTestClient>(id + "_0_0_" + testing::UtcHour());
    EXPECT_EQ(client_->Connect(port, id, broker::IotdaPassword(kSecret, testing::UtcHour())), 0);
    EXPECT_EQ(client_->Subscribe(Topic(id, "#")), 1);
  }
  // The next message whose topic starts with sys/{prefix}.
  std::optional<ReceivedMessage> Next(const std::string& prefix, int timeout_ms = 8000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    const std::string want = Topic(id_, prefix);
    while (std::chrono::steady_clock::now() < deadline) {
      if (inbox_.empty()) {
        for (auto& m : client_->Receive(std::chrono::milliseconds(50)))
          inbox_.push_back(std::move(m));
      }
      while (!inbox_.empty()) {
        ReceivedMessage m = std::move(inbox_.front());
        inbox_.erase(inbox_.begin());
        if (m.topic.rfind(want, 0) == 0) return m;
      }
    }
    return std::nullopt;
  }
  void Publish(const std::string& topic, const json& payload) {
    ASSERT_TRUE(client_->Publish(topic, payload.dump(2)));  // pretty, as the C SDK sends
  }
  // Answers a request on sys/{what}/response/request_id={rid} (its own topic).
  void Answer(const std::string& what, const std::string& rid, const json& payload) {
    Publish(Topic(id_, what + "/response/request_id=" + rid), payload);
  }

 private:
  std::string id_;
  std::unique_ptr<MqttTestClient> client_;
  std::vector<ReceivedMessage> inbox_;
};

std::string RequestIdOf(const std::string& topic) {
  return topic.substr(topic.rfind("request_id=") + std::string("request_id=").size());
}

class DeviceRequestsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Registry& reg = stack_.registry();
    // The C SDK demos' product: a property service and a command with typed paras.
    const json model = {
        {"services",
         {{{"service_id", "Smoke"},
           {"properties",
            {{{"name", "Smoke_value"}, {"type", "int"}}, {{"name", "label"}, {"type", "string"}}}},
           {"commands",
            {{{"command_name", "Beep"},
              {"paras", {{{"name", "on"}, {"type", "bool"}, {"required", true}}}}}}}}}}};
    reg.CreateProduct("smoke", "Smoke detector", "huawei", "MQTT", model);
    reg.CreateDevice("smoke", "a", "", kSecret);
    reg.CreateDevice("smoke", "b", "", kSecret);
    ASSERT_TRUE(stack_.Start());
  }

  Answer Call(const std::string& method, const std::string& path, const json& body = nullptr) {
    return stack_.Call(method, path, body);
  }
  std::future<Answer> CallAsync(const std::string& method, const std::string& path,
                                const json& body) {
    return std::async(std::launch::async, [=, this] { return Call(method, path, body); });
  }

  // Polls until the platform holds the device `online` (or not).
  bool WaitFor(const std::string& device, bool online, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    do {
      {
        std::lock_guard<std::mutex> g(stack_.platform().lock());
        if (stack_.platform().registry().GetDevice(device).online == online) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
  }
  bool WaitOnline(const std::string& device) { return WaitFor(device, true, 5000); }
  int64_t Counter(const std::string& name) { return stack_.Counter(name); }
  // Polls a counter until it reaches `value`.
  bool WaitCounter(const std::string& name, int64_t value) {
    for (int i = 0; i < 100 && Counter(name) < value; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return Counter(name) == value;
  }
  // Polls a stored request until its status is `status`.
  json WaitStatus(const std::string& device, const std::string& rid, const std::string& status) {
    json row;
    for (int i = 0; i < 100; ++i) {
      row = Call("GET", "/api/v1/devices/" + device + "/requests/" + rid).body;
      if (row["status"] == status) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return row;
  }

  static json Beep(int timeout_s = 10) {
    return {{"service_id", "Smoke"},
            {"command_name", "Beep"},
            {"paras", {{"on", true}}},
            {"timeout_s", timeout_s}};
  }
  static std::string Path(const std::string& device, const std::string& rest) {
    return "/api/v1/devices/" + device + "/" + rest;
  }

  testing::PlatformStack stack_{"ota-device-requests"};
};

TEST_F(DeviceRequestsTest, CommandAnswered_SucceededWithTheDevicesResponse) {
  Device a(stack_.broker().port(), kA);
  ASSERT_TRUE(WaitOnline(kA));
  auto pending = CallAsync("POST", Path(kA, "commands"), Beep());
  const std::optional<ReceivedMessage> cmd = a.Next("commands/request_id=");
  ASSERT_TRUE(cmd.has_value());
  const json sent = json::parse(cmd->payload);
  EXPECT_EQ(sent["object_device_id"], kA);
  EXPECT_EQ(sent["service_id"], "Smoke");
  EXPECT_EQ(sent["command_name"], "Beep");
  EXPECT_EQ(sent["paras"], json({{"on", true}}));
  const std::string rid = RequestIdOf(cmd->topic);
  EXPECT_EQ(rid.size(), 32u);
  EXPECT_TRUE(IsPlatformRequestId(rid));
  a.Answer("commands", rid,
           {{"result_code", 0}, {"response_name", "cmdResponses"}, {"paras", {{"Beep_State", 1}}}});
  const Answer r = pending.get();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["command_id"], rid);
  EXPECT_EQ(r.body["status"], "succeeded");
  EXPECT_EQ(r.body["response"]["result_code"], 0);
  EXPECT_EQ(r.body["response"]["paras"]["Beep_State"], 1);

  // Stored, and listed latest first.
  auto second = CallAsync("POST", Path(kA, "commands"), Beep(1));
  ASSERT_TRUE(a.Next("commands/request_id=").has_value());
  EXPECT_EQ(second.get().body["status"], "timeout");
  const json list = Call("GET", Path(kA, "commands?limit=1")).body;
  EXPECT_EQ(list["total"], 2);
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["status"], "timeout");
  const json page2 = Call("GET", Path(kA, "commands?limit=1&offset=1")).body;
  EXPECT_EQ(page2["items"][0]["command_id"], rid);
  EXPECT_EQ(page2["items"][0]["response"]["response_name"], "cmdResponses");
  EXPECT_EQ(Call("GET", Path(kA, "commands?limit=0")).status, 400);
}

TEST_F(DeviceRequestsTest, NoAnswer_TimesOutThenALateAnswerIsStoredAsLate) {
  Device a(stack_.broker().port(), kA);
  ASSERT_TRUE(WaitOnline(kA));
  const auto start = std::chrono::steady_clock::now();
  auto pending = CallAsync("POST", Path(kA, "commands"), Beep(1));
  const std::optional<ReceivedMessage> cmd = a.Next("commands/request_id=");
  ASSERT_TRUE(cmd.has_value());
  const Answer r = pending.get();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
  EXPECT_EQ(r.body["status"], "timeout");
  EXPECT_TRUE(r.body["response"].is_null());
  const std::string rid = RequestIdOf(cmd->topic);
  a.Answer("commands", rid, {{"result_code", 0}, {"paras", {{"late", true}}}});
  const json row = WaitStatus(kA, rid, "late");
  EXPECT_EQ(row["status"], "late");
  EXPECT_EQ(row["response"]["paras"]["late"], true);
  EXPECT_FALSE(row["answered_at"].is_null());
}

TEST_F(DeviceRequestsTest, DeviceOffline_AnsweredAtOnceAndStored) {
  const auto start = std::chrono::steady_clock::now();
  const Answer r = Call("POST", Path(kB, "commands"), Beep());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["status"], "device_offline");
  EXPECT_EQ(Call("PUT", Path(kB, "properties"),
                 {{"services", {{{"service_id", "Smoke"}, {"properties", {{"Smoke_value", 1}}}}}}})
                .body["status"],
            "device_offline");
  EXPECT_EQ(Call("POST", Path(kB, "messages"), {{"content", "hi"}}).body["status"],
            "device_offline");
  EXPECT_EQ(Call("GET", Path(kB, "requests")).body["total"], 3);
  EXPECT_EQ(Call("POST", Path("nobody", "commands"), Beep()).status, 404);
}

TEST_F(DeviceRequestsTest, AnotherDevice_CannotAnswerARequestItWasNotSent) {
  Device a(stack_.broker().port(), kA);
  Device b(stack_.broker().port(), kB);
  ASSERT_TRUE(WaitOnline(kA));
  ASSERT_TRUE(WaitOnline(kB));
  auto pending = CallAsync("POST", Path(kA, "commands"), Beep(2));
  const std::optional<ReceivedMessage> cmd = a.Next("commands/request_id=");
  ASSERT_TRUE(cmd.has_value());
  const std::string rid = RequestIdOf(cmd->topic);
  EXPECT_FALSE(b.Next("commands/", 300).has_value()) << "b never sees a's command";
  // On a's topic: the broker drops it (its ACL); on its own topic: the platform finds no
  // request of b with that ID.
  b.Publish(Topic(kA, "commands/response/request_id=" + rid), {{"result_code", 0}});
  b.Answer("commands", rid, {{"result_code", 0}, {"paras", {{"forged", true}}}});
  // Odd request IDs name nothing either.
  b.Answer("commands", "abc.def", {{"result_code", 0}});
  b.Answer("commands", std::string(65, 'a'), {{"result_code", 0}});
  EXPECT_TRUE(WaitCounter("rejected_responses", 3));
  const Answer r = pending.get();
  EXPECT_EQ(r.body["status"], "timeout");
  EXPECT_TRUE(r.body["response"].is_null());
  EXPECT_EQ(Counter("responses"), 0);
  EXPECT_NE(stack_.broker().Log().find("denied device smoke_b publish"), std::string::npos);
}

TEST_F(DeviceRequestsTest, DuplicateAnswer_Ignored) {
  Device a(stack_.broker().port(), kA);
  ASSERT_TRUE(WaitOnline(kA));
  auto pending = CallAsync("POST", Path(kA, "commands"), Beep());
  const std::optional<ReceivedMessage> cmd = a.Next("commands/request_id=");
  ASSERT_TRUE(cmd.has_value());
  const std::string rid = RequestIdOf(cmd->topic);
  a.Answer("commands", rid, {{"result_code", 0}, {"paras", {{"n", 1}}}});
  EXPECT_EQ(pending.get().body["response"]["paras"]["n"], 1);
  a.Answer("commands", rid, {{"result_code", 5}, {"paras", {{"n", 2}}}});
  EXPECT_TRUE(WaitCounter("duplicate_responses", 1));
  const json row = Call("GET", Path(kA, "requests/" + rid)).body;
  EXPECT_EQ(row["status"], "succeeded");
  EXPECT_EQ(row["response"]["paras"]["n"], 1) << "the first answer stands";
}

TEST_F(DeviceRequestsTest, CommandOutsideTheModel_RefusedBeforeAnythingIsSent) {
  Device a(stack_.broker().port(), kA);
  ASSERT_TRUE(WaitOnline(kA));
  json bad = Beep();
  bad["command_name"] = "SelfDestruct";
  EXPECT_EQ(Call("POST", Path(kA, "commands"), bad).status, 400);
  bad = Beep();
  bad["paras"] = {{"on", "yes"}};
  EXPECT_EQ(Call("POST", Path(kA, "commands"), bad).status, 400) << "on is a bool";
  bad["paras"] = json::object();
  EXPECT_EQ(Call("POST", Path(kA, "commands"), bad).status, 400) << "on is required";
  bad = Beep();
  bad["timeout_s"] = 31;
  EXPECT_EQ(Call("POST", Path(kA, "commands"), bad).status, 400);
  EXPECT_FALSE(a.Next("", 300).has_value());
  EXPECT_EQ(Call("GET", Path(kA, "requests")).body["total"], 0);
}

TEST_F(DeviceRequestsTest, PropertySet_ValidatedThenAnswered) {
  Device a(stack_.broker().port(), kA);
  ASSERT_TRUE(WaitOnline(kA));
  const auto set = [](const json& props) {
    return json{{"services", {{{"service_id", "Smoke"}, {"properties", props}}}}, {"timeout_s", 5}};
  };
  Answer r = Call("PUT", Path(kA, "properties"), set({{"Smoke_value", "high"}}));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body["error"].get<std::string>().find("Smoke.Smoke_value must be int"),
            std::string::npos);
  EXPECT_EQ(Call("PUT", Path(kA, "properties"), set({{"colour", 1}})).status, 400);
  EXPECT_FALSE(a.Next("", 300).has_value()) << "nothing is sent for a refused request";

  auto pending = CallAsync("PUT", Path(kA, "properties"), set({{"Smoke_value", 7}}));
  const std::optional<ReceivedMessage> m = a.Next("properties/set/request_id=");
  ASSERT_TRUE(m.has_value());
  const json sent = json::parse(m->payload);
  EXPECT_EQ(sent["object_device_id"], kA);
  EXPECT_EQ(sent["services"][0]["properties"]["Smoke_value"], 7);
  a.Answer("properties/set", RequestIdOf(m->topic), {{"result_code", 0}, {"result_desc", "ok"}});
  r = pending.get();
  EXPECT_EQ(r.body["kind"], "properties_set");
  EXPECT_EQ(r.body["status"], "succeeded");
  EXPECT_EQ(r.body["response"]["result_desc"], "ok");
}

TEST_F(DeviceRequestsTest, PropertyGet_AnswerStoredAsProperties) {
  Device a(stack_.broker().port(), kA);
  ASSERT_TRUE(WaitOnline(kA));
  auto pending =
      CallAsync("POST", Path(kA, "properties/get"), {{"service_id", "Smoke"}, {"timeout_s", 5}});
  const std::optional<ReceivedMessage> m = a.Next("properties/get/request_id=");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(json::parse(m->payload)["service_id"], "Smoke");
  // An answer to a properties/set ID on the get topic names nothing.
  a.Answer("properties/set", RequestIdOf(m->topic), {{"result_code", 0}});
  a.Answer("properties/get", RequestIdOf(m->topic),
           {{"services",
             {{{"service_id", "Smoke"},
               {"properties", {{"Smoke_value", 42}, {"label", "kitchen"}}},
               {"event_time", nullptr}}}}});
  const Answer r = pending.get();
  EXPECT_EQ(r.body["status"], "succeeded");
  EXPECT_EQ(r.body["response"]["services"][0]["properties"]["Smoke_value"], 42);
  const json props = Call("GET", Path(kA, "properties")).body;
  EXPECT_EQ(props["Smoke"]["Smoke_value"], 42);
  EXPECT_EQ(props["Smoke"]["label"], "kitchen");
  EXPECT_EQ(Counter("rejected_responses"), 1);
  EXPECT_EQ(Call("POST", Path(kA, "properties/get"), {{"service_id", "Nope"}}).status, 400);
}

TEST_F(DeviceRequestsTest, MessageDown_DeliveredAndAcknowledged) {
  Device a(stack_.broker().port(), kA);
  ASSERT_TRUE(WaitOnline(kA));
  const Answer r =
      Call("POST", Path(kA, "messages"), {{"name", "greeting"}, {"content", "hello device"}});
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id = r.body["message_id"];
  const std::optional<ReceivedMessage> m = a.Next("messages/down");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->topic, Topic(kA, "messages/down"));
  const json sent = json::parse(m->payload);
  EXPECT_EQ(sent, json({{"object_device_id", kA},
                        {"name", "greeting"},
                        {"id", id},
                        {"content", "hello device"}}))
      << "only the four keys of IoTDA's system format";
  const json row = WaitStatus(kA, id, "delivered");
  EXPECT_EQ(row["status"], "delivered");
  EXPECT_EQ(Call("GET", Path(kA, "messages")).body["items"][0]["message_id"], id);
  EXPECT_EQ(Call("POST", Path(kA, "messages"), {{"name", "x"}}).status, 400) << "no content";
  EXPECT_EQ(Call("POST", Path(kA, "messages"), {{"content", std::string(70000, 'x')}}).status, 413);
}

TEST_F(DeviceRequestsTest, ServerStoppedWhileWaiting_RequestTimesOutAtItsDeadline) {
  // A request left pending by a server that went away: the ticker times it out.
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    stack_.platform()
        .db()
        .Prepare(
            "INSERT INTO device_requests (request_id, device_id, kind, request, status, "
            "created_at, deadline) VALUES ('r1', 'smoke_a', 'command', '{}', 'pending', 1, 2)")
        .Run();
  }
  EXPECT_EQ(WaitStatus(kA, "r1", "timeout")["status"], "timeout");
}

TEST_F(DeviceRequestsTest, OpenApi_ListsTheRequestRoutes) {
  const json doc = Call("GET", "/api/v1/openapi.json").body;
  for (const char* path : {"/devices/{device_id}/commands", "/devices/{device_id}/properties/get",
                           "/devices/{device_id}/messages", "/devices/{device_id}/requests",
                           "/devices/{device_id}/requests/{request_id}"}) {
    EXPECT_TRUE(doc["paths"].contains(path)) << path;
  }
  EXPECT_TRUE(doc["paths"]["/devices/{device_id}/properties"].contains("put"));
  EXPECT_TRUE(doc["paths"]["/devices/{device_id}/commands"].contains("get"));
}

}  // namespace
}  // namespace ota::server
