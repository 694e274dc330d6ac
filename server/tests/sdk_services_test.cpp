// What Huawei's device SDKs send besides OTA, against the whole platform: a real Mosquitto with
// the auth plugin, a real ota-server (MQTT bridge, HTTPS API), a device speaking IoTDA over MQTT
// the way the C and Python SDKs do (docs/notes/iotda-sdk-behaviour.md): $time_sync, shadow get,
// $sdk_info, $log, event_time in several forms, gzip-compressed reports.
#include <gtest/gtest.h>
#include <httplib.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "mqtt_test_client.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/server/device_protocol.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"

namespace ota::server {
namespace {

using nlohmann::json;
using testing::MqttTestClient;

constexpr const char* kDevice = "smoke_n1";
constexpr const char* kOther = "smoke_n2";
constexpr const char* kSecret = "device-secret-1";
const std::string kTopic = std::string("$oc/devices/") + kDevice;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Gzip(const std::string& data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

json Envelope(const json& object_device_id, const std::string& service, const std::string& type,
              const json& paras) {
  return {{"object_device_id", object_device_id},
          {"services",
           {{{"service_id", service},
             {"event_type", type},
             {"event_id", ""},
             {"event_time", nullptr},
             {"paras", paras}}}}};
}

class SdkServices : public ::testing::Test {
 protected:
  void SetUp() override {
    Registry& reg = stack_.registry();
    // The Python SDK's properties_sample (4 ints, two of them decimal in the model) and the C
    // SDK's properties_test.
    const json model = {{"services",
                         {{{"service_id", "smokeDetector"},
                           {"properties",
                            {{{"name", "alarm"}, {"type", "int"}},
                             {{"name", "smokeConcentration"}, {"type", "decimal"}},
                             {{"name", "temperature"}, {"type", "decimal"}},
                             {{"name", "humidity"}, {"type", "int"}}}}},
                          {{"service_id", "Smoke"},
                           {"properties", {{{"name", "Smoke_value"}, {"type", "int"}}}}}}}};
    reg.CreateProduct("smoke", "SMOKE", "test", "MQTT", model);
    reg.CreateDevice("smoke", "n1", "", kSecret);
    reg.CreateDevice("smoke", "n2", "", kSecret);
    ASSERT_TRUE(stack_.Start());
    dev_ = Connect(kDevice);
    ASSERT_TRUE(dev_);
  }

  // A device as the SDKs connect it; it subscribes to its answers itself here (delivery without
  // a SUBSCRIBE is the broker plugin's, tested there).
  std::unique_ptr<MqttTestClient> Connect(const std::string& id) {
    auto c = stack_.Session(id, kSecret);
    if (!c) return nullptr;
    const std::string t = "$oc/devices/" + id;
    if (c->Subscribe(t + "/sys/events/down") != 1) return nullptr;
    if (c->Subscribe(t + "/sys/shadow/get/response/#") != 1) return nullptr;
    return c;
  }

  void Publish(const std::string& suffix, const std::string& payload) {
    ASSERT_TRUE(dev_->Publish(kTopic + suffix, payload));
  }

  // The next message to `client` (the device) whose topic ends with `suffix`, or, if `suffix`
  // ends with '/', contains it (nullopt after the timeout).
  std::optional<testing::ReceivedMessage> Next(const std::string& suffix, int timeout_ms = 5000,
                                               MqttTestClient* client = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& m : (client ? client : dev_.get())->Receive(std::chrono::milliseconds(50))) {
        const bool match =
            suffix.back() == '/'
                ? m.topic.find(suffix) != std::string::npos
                : m.topic.size() >= suffix.size() &&
                      m.topic.compare(m.topic.size() - suffix.size(), suffix.size(), suffix) == 0;
        if (match) return m;
      }
    }
    return std::nullopt;
  }

  int64_t Counter(const std::string& name) { return stack_.Counter(name); }
  // Waits until counter `name` reaches `value` (messages are handled in order).
  bool WaitCounter(const std::string& name, int64_t value, int timeout_ms = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Counter(name) >= value) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  json Shadow(const std::string& service = "") {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    return stack_.platform().registry().Shadow(kDevice, service);
  }

  httplib::Result ApiGet(const std::string& path) {
    return stack_.Client(stack_.admin_token())->Get(path);
  }

  testing::PlatformStack stack_{"ota-sdk-services"};
  std::unique_ptr<MqttTestClient> dev_;
};

TEST_F(SdkServices, TimeSync_AnsweredOnceWithTheEchoedNumberAndSaneTimes) {
  // The C and Java SDKs send a number without object_device_id, the Python SDK a string.
  const int64_t before = NowMs();
  Publish("/sys/events/up", json{{"services",
                                  {{{"service_id", "$time_sync"},
                                    {"event_type", "time_sync_request"},
                                    {"paras", {{"device_send_time", 1700000000123}}}}}}}
                                .dump());
  std::optional<testing::ReceivedMessage> m = Next("/sys/events/down");
  ASSERT_TRUE(m.has_value());
  const int64_t after = NowMs();
  json env = json::parse(m->payload);
  EXPECT_EQ(env["object_device_id"], kDevice);
  ASSERT_EQ(env["services"].size(), 1u);
  EXPECT_EQ(env["services"][0]["service_id"], "$time_sync");
  EXPECT_EQ(env["services"][0]["event_type"], "time_sync_response");
  json paras = env["services"][0]["paras"];
  ASSERT_TRUE(paras["device_send_time"].is_number_integer());
  EXPECT_EQ(paras["device_send_time"].get<int64_t>(), 1700000000123);
  ASSERT_TRUE(paras["server_recv_time"].is_number_integer());
  ASSERT_TRUE(paras["server_send_time"].is_number_integer());
  const int64_t recv = paras["server_recv_time"], send = paras["server_send_time"];
  EXPECT_LE(before, recv);
  EXPECT_LE(recv, send);
  EXPECT_LE(send, after);

  Publish("/sys/events/up", Envelope(kDevice, "$time_sync", "time_sync_request",
                                     {{"device_send_time", "1700000000456"}})
                                .dump());
  m = Next("/sys/events/down");
  ASSERT_TRUE(m.has_value());
  paras = json::parse(m->payload)["services"][0]["paras"];
  ASSERT_TRUE(paras["device_send_time"].is_number_integer()) << "echoed as a number";
  EXPECT_EQ(paras["device_send_time"].get<int64_t>(), 1700000000456);

  // Published once, never kept for resending: a late answer would set a wrong clock.
  EXPECT_FALSE(Next("/sys/events/down", 1500).has_value());
  std::lock_guard<std::mutex> g(stack_.platform().lock());
  EXPECT_EQ(stack_.platform().outbox().Size(), 0);
}

TEST_F(SdkServices, TimeSync_WithoutUsableSendTime_RejectedAndNotAnswered) {
  Publish("/sys/events/up",
          Envelope(kDevice, "$time_sync", "time_sync_request", json::object()).dump());
  Publish(
      "/sys/events/up",
      Envelope(kDevice, "$time_sync", "time_sync_request", {{"device_send_time", "12a"}}).dump());
  Publish("/sys/events/up",
          Envelope(kDevice, "$time_sync", "time_sync_request", {{"device_send_time", -5}}).dump());
  ASSERT_TRUE(WaitCounter("rejected_events", 3));
  EXPECT_FALSE(Next("/sys/events/down", 500).has_value());
}

TEST_F(SdkServices, ShadowGet_AnsweredWithReportedPropertiesFilteredByService) {
  Publish("/sys/properties/report",
          R"({"services":[{"service_id":"Smoke","event_time":"20250414T010203Z",
              "properties":{"Smoke_value":7}}]})");
  Publish("/sys/properties/report",
          R"({"services":[{"service_id":"Smoke","event_time":"20250414T010204Z",
              "properties":{"Smoke_value":8}},
             {"service_id":"smokeDetector","properties":{"alarm":1,"humidity":2}}]})");
  ASSERT_TRUE(WaitCounter("property_reports", 2));

  // The C SDK's IOTA_GetDeviceShadow with NULLs sends "{}".
  Publish("/sys/shadow/get/request_id=requestId", "{}");
  std::optional<testing::ReceivedMessage> m = Next("/sys/shadow/get/response/request_id=requestId");
  ASSERT_TRUE(m.has_value());
  json body = json::parse(m->payload);
  EXPECT_EQ(body["object_device_id"], kDevice);
  ASSERT_TRUE(body["shadow"].is_array());
  ASSERT_EQ(body["shadow"].size(), 2u);
  const json& smoke = body["shadow"][0];
  EXPECT_EQ(smoke["service_id"], "Smoke");
  EXPECT_EQ(smoke["reported"]["properties"], (json{{"Smoke_value", 8}}));
  EXPECT_EQ(smoke["reported"]["event_time"], "20250414T010204Z");
  EXPECT_EQ(smoke["version"], 2) << "one more for each report of the service";
  EXPECT_EQ(body["shadow"][1]["service_id"], "smokeDetector");
  EXPECT_EQ(body["shadow"][1]["reported"]["properties"], (json{{"alarm", 1}, {"humidity", 2}}));
  EXPECT_EQ(body["shadow"][1]["version"], 1);

  // The Python SDK names the service; a UUID request ID (Java) comes back as it was.
  const std::string uuid = "0b7e3b4c-6a51-4f1c-9d3e-0f4c2a7b9e11";
  Publish("/sys/shadow/get/request_id=" + uuid,
          R"({"object_device_id":"smoke_n1","service_id":"smokeDetector"})");
  m = Next("/sys/shadow/get/response/request_id=" + uuid);
  ASSERT_TRUE(m.has_value());
  body = json::parse(m->payload);
  ASSERT_EQ(body["shadow"].size(), 1u);
  EXPECT_EQ(body["shadow"][0]["service_id"], "smokeDetector");

  // No such service: still a list, empty. An empty payload, object_device_id "-1": itself.
  Publish("/sys/shadow/get/request_id=7", R"({"object_device_id":"-1","service_id":"Nope"})");
  m = Next("/sys/shadow/get/response/request_id=7");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(json::parse(m->payload)["shadow"], json::array());
  Publish("/sys/shadow/get/request_id=8", "");
  m = Next("/sys/shadow/get/response/request_id=8");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(json::parse(m->payload)["shadow"].size(), 2u);
  EXPECT_EQ(Counter("shadow_requests"), 4);
}

TEST_F(SdkServices, ShadowGet_MalformedRequestIdOrAnotherDevice_IgnoredAndCounted) {
  Publish("/sys/properties/report",
          R"({"services":[{"service_id":"Smoke","properties":{"Smoke_value":7}}]})");
  ASSERT_TRUE(WaitCounter("property_reports", 1));
  Publish("/sys/shadow/get/request_id=" + std::string(129, 'a'), "{}");  // too long
  Publish("/sys/shadow/get/request_id=", "{}");                          // empty
  Publish("/sys/shadow/get/request_id=a'b", "{}");                       // odd character
  Publish("/sys/shadow/get/request_id=a%2Fb", "{}");
  // Another device's shadow is not this device's to read.
  Publish("/sys/shadow/get/request_id=9", R"({"object_device_id":"smoke_n2"})");
  Publish("/sys/shadow/get/request_id=10", "[1,2]");
  ASSERT_TRUE(WaitCounter("rejected_shadow_requests", 6));
  EXPECT_FALSE(Next("/sys/shadow/get/response/", 500).has_value());
  Publish("/sys/shadow/get/request_id=" + std::string(128, 'a'), "{}");
  EXPECT_TRUE(Next("/sys/shadow/get/response/request_id=" + std::string(128, 'a')).has_value());
  EXPECT_EQ(Counter("rejected_shadow_requests"), 6);
}

TEST_F(SdkServices, ShadowGet_OnAnotherDevicesTopic_NeverReachesThePlatform) {
  // The answer goes to the topic's device, and the broker keeps a device to its own topics.
  std::unique_ptr<MqttTestClient> other = Connect(kOther);
  ASSERT_TRUE(other);
  dev_->Publish(std::string("$oc/devices/") + kOther + "/sys/shadow/get/request_id=1", "{}");
  ASSERT_TRUE(
      other->Publish(std::string("$oc/devices/") + kOther + "/sys/shadow/get/request_id=2", "{}"));
  EXPECT_TRUE(Next("/sys/shadow/get/response/request_id=2", 5000, other.get()).has_value());
  EXPECT_EQ(Counter("shadow_requests"), 1);
  EXPECT_FALSE(Next("/sys/shadow/get/response/", 300).has_value());
}

TEST_F(SdkServices, EventTime_BothFormatsParsed_MissingMalformedOrFutureGetReceiptTime) {
  const auto report = [&](const json& event_time, int n) {
    json svc = {{"service_id", "Smoke"}, {"properties", {{"Smoke_value", n}}}};
    if (!event_time.is_discarded()) svc["event_time"] = event_time;
    Publish("/sys/properties/report", json{{"services", {svc}}}.dump());
    EXPECT_TRUE(WaitCounter("property_reports", n));
    return Shadow("Smoke")[0]["reported"]["event_time"].get<std::string>();
  };
  const auto receipt_like = [](const std::string& t) {
    const std::optional<int64_t> s = ParseEventTime(t);
    return s && std::llabs(*s - static_cast<int64_t>(std::time(nullptr))) < 30;
  };
  EXPECT_EQ(report("20250414T010203Z", 1), "20250414T010203Z");          // IoTDA, C, Java
  EXPECT_EQ(report("2025-04-14T09:02:03Z", 2), "20250414T090203Z");      // the Python SDK's
  EXPECT_TRUE(receipt_like(report(nullptr, 3)));                         // Python's default null
  EXPECT_TRUE(receipt_like(report(json(json::value_t::discarded), 4)));  // C leaves it out
  EXPECT_EQ(Counter("property_event_time_replaced"), 0);
  EXPECT_TRUE(receipt_like(report("yesterday", 5)));
  EXPECT_TRUE(receipt_like(report("20250231T010203Z", 6)));  // 31 February
  EXPECT_TRUE(receipt_like(report(20250414, 7)));
  EXPECT_TRUE(receipt_like(report(FormatEventTime(std::time(nullptr) + 8 * 3600), 8)));
  EXPECT_EQ(Counter("property_event_time_replaced"), 4);
  EXPECT_EQ(Counter("rejected_property_reports"), 0) << "never refused for its time";
  // A clock a little ahead is kept.
  const std::string ahead = FormatEventTime(std::time(nullptr) + 60);
  EXPECT_EQ(report(ahead, 9), ahead);
}

TEST_F(SdkServices, SdkInfo_KeptAndShownByTheApi) {
  auto r = ApiGet(std::string("/api/v1/devices/") + kDevice);
  ASSERT_TRUE(r);
  EXPECT_TRUE(json::parse(r->body)["sdk_info"].is_null());
  Publish("/sys/events/up", Envelope(kDevice, "$sdk_info", "sdk_info_report",
                                     {{"device_sdk_version", "Python_v1.2.0"},
                                      {"sw_version", "v1.0.0"},
                                      {"fw_version", "v1.0.0"},
                                      {"device_ip", "10.0.0.7"},
                                      {"extra", std::string(5000, 'x')}})
                                .dump());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  json info;
  while (std::chrono::steady_clock::now() < deadline && info.is_null()) {
    r = ApiGet(std::string("/api/v1/devices/") + kDevice);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    info = json::parse(r->body)["sdk_info"];
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(info, (json{{"device_sdk_version", "Python_v1.2.0"},
                        {"sw_version", "v1.0.0"},
                        {"fw_version", "v1.0.0"},
                        {"device_ip", "10.0.0.7"}}));
  EXPECT_EQ(Counter("rejected_events"), 0);
  std::lock_guard<std::mutex> g(stack_.platform().lock());
  EXPECT_EQ(stack_.platform().registry().GetDevice(kDevice).fw_version, "")
      << "versions come from $ota version_report only";
}

TEST_F(SdkServices, Logs_KeptNewestFirstCappedAndShownByTheApi) {
  // What the Python SDK sends on every connect.
  Publish("/sys/events/up", Envelope(kDevice, "$log", "log_report",
                                     {{"timestamp", "1700000000000"},
                                      {"type", "DEVICE_STATUS"},
                                      {"content", "connect complete, the uri is 127.0.0.1"}})
                                .dump());
  auto r = ApiGet(std::string("/api/v1/devices/") + kDevice + "/logs");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  for (int i = 0; i < 100 && json::parse(r->body).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = ApiGet(std::string("/api/v1/devices/") + kDevice + "/logs");
  }
  ASSERT_EQ(r->status, 200) << r->body;
  json logs = json::parse(r->body);
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0]["type"], "DEVICE_STATUS");
  EXPECT_EQ(logs[0]["content"], "connect complete, the uri is 127.0.0.1");
  EXPECT_EQ(logs[0]["timestamp"], "1700000000000");

  // 150 more lines, 30 a message, the last one oversized: the newest 100 are kept.
  for (int batch = 0; batch < 5; ++batch) {
    json env = {{"object_device_id", kDevice}, {"services", json::array()}};
    for (int i = 0; i < 30; ++i) {
      const int n = batch * 30 + i;
      env["services"].push_back(
          {{"service_id", "$log"},
           {"event_type", "log_report"},
           {"paras",
            {{"type", "DEVICE_LOG"},
             {"timestamp", "2025041401"},
             {"content", n == 149 ? std::string(3000, 'z') : "line " + std::to_string(n)}}}});
    }
    Publish("/sys/events/up", env.dump());
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    logs = json::parse(ApiGet(std::string("/api/v1/devices/") + kDevice + "/logs")->body);
    if (!logs.empty() && logs.back()["content"].get<std::string>()[0] == 'z') break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(logs.size(), 100u);
  EXPECT_EQ(logs[0]["content"], "line 50");
  EXPECT_EQ(logs[98]["content"], "line 148");
  EXPECT_EQ(logs[99]["content"].get<std::string>().size(), kMaxLogContent);
  EXPECT_EQ(Counter("rejected_events"), 0);
  EXPECT_EQ(ApiGet("/api/v1/devices/nobody/logs")->status, 404);
}

TEST_F(SdkServices, GzipReport_InflatedAndStored) {
  Publish("/sys/properties/report?encoding=gzip",
          Gzip(R"({"services":[{"service_id":"Smoke","properties":{"Smoke_value":42}}]})"));
  ASSERT_TRUE(WaitCounter("property_reports", 1));
  EXPECT_EQ(Shadow("Smoke")[0]["reported"]["properties"]["Smoke_value"], 42);
  // A message compressed the same way is taken (and not refused).
  Publish("/sys/messages/up?encoding=gzip", Gzip(R"({"content":"hello"})"));
  Publish("/sys/properties/report?encoding=gzip", "plain text, not gzip");
  ASSERT_TRUE(WaitCounter("rejected_property_reports", 1));
  EXPECT_EQ(Counter("rejected_events"), 0);
  EXPECT_EQ(Counter("rejected_oversized"), 0);
}

TEST_F(SdkServices, GzipBomb_RefusedCheaplyAndCountedOversized) {
  // 20 MB of a report inflating far past 64 KB, in about 20 KB on the wire.
  const std::string bomb_json =
      R"({"services":[{"service_id":"Smoke","properties":{"Smoke_value":)" +
      std::string(20 * 1024 * 1024, '1') + "}}]}";
  const std::string bomb = Gzip(bomb_json);
  ASSERT_LT(bomb.size(), kMaxDevicePayload);
  const auto start = std::chrono::steady_clock::now();
  Publish("/sys/properties/report?encoding=gzip", bomb);
  ASSERT_TRUE(WaitCounter("rejected_oversized", 1));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(Counter("property_reports"), 0);
  EXPECT_TRUE(Shadow().empty());
}

TEST_F(SdkServices, PythonSdkPropertyReportAndEnvelopes_Accepted) {
  // properties_sample.py, as json.dumps(indent=4) would print it: ints where the model says
  // decimal, event_time null.
  Publish(
      "/sys/properties/report",
      json{{"services",
            {{{"service_id", "smokeDetector"},
              {"properties",
               {{"alarm", 10}, {"smokeConcentration", 36}, {"temperature", 64}, {"humidity", 32}}},
              {"event_time", nullptr}}}}}
          .dump(4));
  ASSERT_TRUE(WaitCounter("property_reports", 1));
  {
    std::lock_guard<std::mutex> g(stack_.platform().lock());
    EXPECT_EQ(
        stack_.platform().registry().Properties(kDevice)["smokeDetector"],
        (json{{"alarm", 10}, {"smokeConcentration", 36}, {"temperature", 64}, {"humidity", 32}}));
  }
  // version_report with "object_device_id" "-1" (C), "" and null, "event_id": "" (Python), and
  // services the platform does not handle next to it: none refused.
  Publish("/sys/events/up",
          Envelope("-1", "$ota", "version_report", {{"fw_version", "v1.0"}, {"sw_version", "v1.0"}})
              .dump(1, '\t'));
  Publish("/sys/events/up",
          Envelope("", "$file_manager", "get_upload_url", {{"file_name", "a"}}).dump());
  json mixed = Envelope(nullptr, "$ota", "version_report", {{"fw_version", "v2.0"}});
  mixed["services"].push_back({{"service_id", "$device_rule"}, {"event_type", "whatever"}});
  mixed["services"].push_back({{"service_id", "$log"}, {"event_type", "log_report"}, {"paras", 5}});
  Publish("/sys/events/up", mixed.dump());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::string fw;
  while (std::chrono::steady_clock::now() < deadline && fw != "v2.0") {
    {
      std::lock_guard<std::mutex> g(stack_.platform().lock());
      fw = stack_.platform().registry().GetDevice(kDevice).fw_version;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(fw, "v2.0");
  EXPECT_EQ(Counter("rejected_events"), 0);
}

TEST(DeviceProtocol, UpTopics_GzipSuffixAndShadowRequests) {
  auto up = ParseUpTopic("$oc/devices/d1/sys/properties/report?encoding=gzip");
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->kind, UpKind::kPropertiesReport);
  EXPECT_TRUE(up->gzip);
  up = ParseUpTopic("$oc/devices/d1/sys/messages/up?encoding=gzip");
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->kind, UpKind::kMessagesUp);
  EXPECT_TRUE(up->gzip);
  EXPECT_FALSE(ParseUpTopic("$oc/devices/d1/sys/properties/report?encoding=zip"));
  EXPECT_FALSE(ParseUpTopic("$oc/devices/d1/sys/properties/report?encoding=gzip?encoding=gzip"));
  up = ParseUpTopic("$oc/devices/d1/sys/shadow/get/request_id=r1");
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->kind, UpKind::kShadowGet);
  EXPECT_EQ(up->request_id, "r1");
  EXPECT_FALSE(ParseUpTopic("$oc/devices/d1/sys/shadow/get/response/request_id=r1"))
      << "the platform's own answer";
  EXPECT_TRUE(IsValidRequestId("0b7e3b4c-6a51-4f1c-9d3e-0f4c2a7b9e11"));
  EXPECT_FALSE(IsValidRequestId("a+b"));
  EXPECT_FALSE(IsValidRequestId("a#"));
  EXPECT_FALSE(IsValidRequestId("a/b"));
  EXPECT_FALSE(IsValidRequestId(std::string("a\0b", 3)));
}

TEST(DeviceProtocol, Gunzip_CapsOutputAndRefusesTruncatedOrTrailingData) {
  const std::string z = Gzip(std::string(1000, 'a'));
  EXPECT_EQ(Gunzip(z, 1000), std::string(1000, 'a'));
  try {
    Gunzip(z, 999);
    ADD_FAILURE() << "inflated past the cap";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 413);
  }
  for (const std::string& bad : {z.substr(0, z.size() - 4), z + "x", std::string("\x1f\x8b")}) {
    try {
      Gunzip(bad, 100000);
      ADD_FAILURE() << "took broken gzip";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
    }
  }
}

TEST(DeviceProtocol, EventTime_ParsedStrictly) {
  EXPECT_EQ(ParseEventTime("19700101T000000Z"), 0);
  EXPECT_EQ(ParseEventTime("20250414T010203Z"), ParseEventTime("2025-04-14T01:02:03Z"));
  EXPECT_EQ(FormatEventTime(*ParseEventTime("2025-04-14T01:02:03Z")), "20250414T010203Z");
  for (const char* bad :
       {"20250414T250203Z", "20251314T010203Z", "20250414T010203", "2025041",
        "2025-04-14 01:02:03Z", "20250414T01020ZZ", "-0250414T010203Z", "19691231T235959Z"}) {
    EXPECT_FALSE(ParseEventTime(bad).has_value()) << bad;
  }
  EXPECT_FALSE(ParseEventTime(nullptr).has_value());
  EXPECT_FALSE(ParseEventTime(20250414).has_value());
}

}  // namespace
}  // namespace ota::server
