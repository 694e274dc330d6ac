#include "platform_stack.hpp"

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "ota/broker/device_auth.hpp"
#include "ota/host/keys.hpp"

namespace ota::testing {

nlohmann::json DeviceStatusModel() {
  return {{"services",
           {{{"service_id", "DeviceStatus"},
             {"properties", {{{"name", "radioValue"}, {"type", "int"}}}}}}}};
}

StackOptions NoBroker(int tick_ms) {
  StackOptions o;
  o.broker = StackBroker::kNone;
  o.tick_ms = tick_ms;
  return o;
}

PlatformStack::PlatformStack(const std::string& name)
    : dir_(name), platform_(std::make_unique<server::Platform>(dir_.path())) {
  std::ifstream(dir_ / "admin.token") >> admin_token_;
}

PlatformStack::~PlatformStack() {
  service_.reset();
  if (broker_ && ::testing::Test::HasFailure())
    std::fprintf(stderr, "broker log:\n%s\n", broker_->Log().c_str());
  broker_.reset();
}

std::string PlatformStack::AddFireProduct(EVP_PKEY* key, const nlohmann::json& model) {
  std::lock_guard<std::mutex> g(platform_->lock());
  registry().CreateProduct("fire", "FIRE", "embedfire", "MQTT", model);
  if (key == nullptr) return "";
  return registry().AddProductKey("fire", host::PublicKeyPem(key), false).key_id;
}

::testing::AssertionResult PlatformStack::Start(const StackOptions& options) {
  server::ServiceOptions o = options.service;
  o.http_port = 0;
  o.download_port = 0;
  o.tick_ms = options.tick_ms;
  std::vector<std::string> conf;
  switch (options.broker) {
    case StackBroker::kNone:
      o.mqtt_enabled = false;
      break;
    case StackBroker::kPlugin:
      conf = {std::string("plugin ") + OTA_AUTH_PLUGIN,
              "plugin_opt_registry " + platform_->database_path().string(),
              "plugin_opt_secret_key " + platform_->secret_key_path().string(),
              "plugin_opt_platform_password_file " + platform_->platform_password_path().string()};
      break;
    case StackBroker::kPlatformTls: {
      mqtts_port_ = FreeLoopbackPort();
      std::istringstream lines(
          platform_->MosquittoConfig(OTA_AUTH_PLUGIN, mqtts_port_, 0, "127.0.0.1"));
      for (std::string line; std::getline(lines, line);)
        conf.push_back(line);
      o.mqtt.host = "localhost";
      o.mqtt.ca_file = platform_->tls().ca_cert.string();
      break;
    }
  }
  if (options.broker != StackBroker::kNone) {
    conf.insert(conf.end(), options.broker_lines.begin(), options.broker_lines.end());
    broker_ = std::make_unique<MosquittoProcess>(dir_.path(), conf);
    if (!broker_->running()) return ::testing::AssertionFailure() << "Mosquitto did not start";
    if (mqtts_port_ != 0 && !WaitForPort(mqtts_port_, 5000))
      return ::testing::AssertionFailure() << "Mosquitto's MQTTS listener never accepted";
    o.mqtt.port = mqtts_port_ != 0 ? mqtts_port_ : broker_->port();
    std::ifstream(platform_->platform_password_path()) >> o.mqtt.password;
  }
  return StartService(o);
}

::testing::AssertionResult PlatformStack::StartService(const server::ServiceOptions& options) {
  service_options_ = options;
  service_ = std::make_unique<server::Service>(*platform_, options);
  std::string error;
  if (!service_->Start(&error))
    return ::testing::AssertionFailure() << "the service did not start: " << error;
  return ::testing::AssertionSuccess();
}

void PlatformStack::ReopenPlatform() {
  service_.reset();
  platform_.reset();
  platform_ = std::make_unique<server::Platform>(dir_.path());
}

int64_t PlatformStack::CreateTask(const server::TaskSpec& spec) {
  std::lock_guard<std::mutex> g(platform_->lock());
  return service_->tasks().Create(spec, std::time(nullptr));
}

nlohmann::json PlatformStack::Task(int64_t task_id) {
  std::lock_guard<std::mutex> g(platform_->lock());
  return service_->tasks().Get(task_id);
}

server::Device PlatformStack::GetDevice(const std::string& device_id) {
  std::lock_guard<std::mutex> g(platform_->lock());
  return registry().GetDevice(device_id);
}

int64_t PlatformStack::Counter(const std::string& name) {
  std::lock_guard<std::mutex> g(platform_->lock());
  return registry().Counter(name);
}

std::unique_ptr<httplib::SSLClient> PlatformStack::Client(const std::string& token,
                                                          bool downloads) const {
  auto c = std::make_unique<httplib::SSLClient>(
      "127.0.0.1", downloads ? service_->download_port() : service_->http_port());
  c->set_ca_cert_path(platform_->tls().ca_cert.c_str());
  c->enable_server_certificate_verification(true);
  if (!token.empty()) c->set_bearer_token_auth(token.c_str());
  return c;
}

ApiAnswer PlatformStack::Call(const std::string& method, const std::string& path,
                              const nlohmann::json& body, const std::string& token) const {
  auto c = Client(token.empty() ? admin_token_ : token);
  c->set_read_timeout(60);
  const std::string text = body.is_null() ? "" : body.dump();
  httplib::Result r = method == "GET"      ? c->Get(path)
                      : method == "DELETE" ? c->Delete(path)
                      : method == "PATCH"  ? c->Patch(path, text, "application/json")
                      : method == "PUT"    ? c->Put(path, text, "application/json")
                                           : c->Post(path, text, "application/json");
  if (!r) return {};
  return {r->status, nlohmann::json::parse(r->body, nullptr, false)};
}

bool PlatformStack::CanLogin(const std::string& device, const std::string& secret) const {
  return Session(device, secret) != nullptr;
}

std::unique_ptr<MqttTestClient> PlatformStack::Session(const std::string& device,
                                                       const std::string& secret) const {
  auto c = std::make_unique<MqttTestClient>(device + "_0_0_" + UtcHour());
  if (c->Connect(broker_port(), device, broker::IotdaPassword(secret, UtcHour())) != 0)
    return nullptr;
  return c;
}

}  // namespace ota::testing
