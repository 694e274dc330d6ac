// The whole platform on free loopback ports, for integration tests: a fresh data directory, a
// Platform on it, a real Mosquitto with the auth plugin on that registry (plain MQTT, or the
// platform's own MQTTS configuration, or no broker at all) and an ota-server Service (HTTPS
// API and downloads on ports chosen free, its MQTT bridge on that broker); and what tests ask
// of them: the admin token, HTTPS clients that trust the platform's CA, JSON calls to the API,
// device logins. The test fills the registry between construction and Start().
//
//   testing::PlatformStack stack_{"ota-my-test"};            // a member of the fixture
//   void SetUp() override {
//     stack_.registry().CreateProduct(...);                   // before Start(): no lock needed
//     ASSERT_TRUE(stack_.Start());
//   }
//   auto [status, body] = stack_.Call("GET", "/api/v1/devices");
//
// Members are destroyed service first, broker last; if the test failed, the broker's log is
// printed to stderr.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mosquitto_process.hpp"
#include "mqtt_test_client.hpp"
#include "ota/server/service.hpp"
#include "temp_dir.hpp"
#include "test_images.hpp"  // FireAppAddress()

namespace ota::testing {

enum class StackBroker {
  kNone,         // no broker; the service runs with mqtt_enabled = false
  kPlugin,       // Mosquitto with ota_auth_plugin, plain MQTT on a free port (broker_port())
  kPlatformTls,  // the platform's MosquittoConfig: the plugin and MQTTS on a free port
                 // (mqtts_port()); the service connects to "localhost" over TLS with the CA
};

struct StackOptions {
  StackBroker broker = StackBroker::kPlugin;
  // More Mosquitto configuration lines, after the plugin's (e.g. "plugin_opt_... 1").
  std::vector<std::string> broker_lines;
  int tick_ms = 100;  // the service's ticker
  // The service's remaining options (public_host, metrics_public ...) as Start() passes them.
  server::ServiceOptions service;
};

// The model most tests give product "fire": service DeviceStatus with an int radioValue.
nlohmann::json DeviceStatusModel();

// The service alone (no broker, MQTT off), its ticker every `tick_ms`.
StackOptions NoBroker(int tick_ms = 100);

// An API answer: the HTTP status (-1: no answer) and the body as JSON (discarded if not JSON).
struct ApiAnswer {
  int status = -1;
  nlohmann::json body;
};

class PlatformStack {
 public:
  // `name` prefixes the data directory (TempDir: one per test and process).
  explicit PlatformStack(const std::string& name);
  ~PlatformStack();
  PlatformStack(const PlatformStack&) = delete;
  PlatformStack& operator=(const PlatformStack&) = delete;

  const std::filesystem::path& dir() const { return dir_.path(); }
  server::Platform& platform() const { return *platform_; }
  server::Registry& registry() const { return platform_->registry(); }

  // Product "fire" (FIRE by embedfire, MQTT) with `model`, and `key`'s public half as its
  // package signing key if not null; returns that key's id ("" without a key).
  std::string AddFireProduct(EVP_PKEY* key, const nlohmann::json& model = DeviceStatusModel());

  // Starts the broker `options` asks for, then the service on it.
  ::testing::AssertionResult Start(const StackOptions& options = {});
  // The service's options as Start() made them (free ports, the bridge on this broker), for a
  // test that stops the service and starts it again with some of them changed.
  server::ServiceOptions service_options() const { return service_options_; }
  ::testing::AssertionResult StartService(const server::ServiceOptions& options);
  void StopService() { service_.reset(); }
  // A server restart: stops the service and opens the data directory with a new Platform
  // (the broker stays); StartService() brings the service back.
  void ReopenPlatform();

  MosquittoProcess& broker() const { return *broker_; }
  // The broker's plain MQTT listener (with kPlatformTls: one devices do not use).
  int broker_port() const { return broker_->port(); }
  int mqtts_port() const { return mqtts_port_; }  // kPlatformTls only
  server::Service& service() const { return *service_; }
  // The first API token, the one Platform wrote to admin.token (scope admin).
  const std::string& admin_token() const { return admin_token_; }

  // Under the platform lock: a task made from `spec` now, a task's JSON, a device, a counter.
  int64_t CreateTask(const server::TaskSpec& spec);
  nlohmann::json Task(int64_t task_id);
  server::Device GetDevice(const std::string& device_id);
  int64_t Counter(const std::string& name);

  // An HTTPS client of the operator API (`downloads`: of the download port) that verifies the
  // platform's certificate and sends `token` as bearer (none if empty).
  std::unique_ptr<httplib::SSLClient> Client(const std::string& token = "",
                                             bool downloads = false) const;
  // `method` (GET, POST, PUT, PATCH, DELETE) of `path` with `body` as JSON (none if null),
  // with `token`, else the admin token.
  ApiAnswer Call(const std::string& method, const std::string& path,
                 const nlohmann::json& body = nullptr, const std::string& token = "") const;

  // Whether the broker takes a login as `device` with `secret` (IoTDA's password form).
  bool CanLogin(const std::string& device, const std::string& secret) const;
  // A device session that stays open (null if the broker refused it).
  std::unique_ptr<MqttTestClient> Session(const std::string& device,
                                          const std::string& secret) const;

 private:
  TempDir dir_;
  std::unique_ptr<server::Platform> platform_;
  std::unique_ptr<MosquittoProcess> broker_;
  std::unique_ptr<server::Service> service_;
  server::ServiceOptions service_options_;
  std::string admin_token_;
  int mqtts_port_ = 0;
};

}  // namespace ota::testing
