// A running ota-server: the HTTPS API on its thread, the MQTT bridge on libmosquitto's, and a
// ticker that drives upgrade tasks. Device messages are handled here (docs/server.md).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ota/server/http_api.hpp"
#include "ota/server/mqtt_bridge.hpp"
#include "ota/server/platform.hpp"
#include "ota/server/upgrade_tasks.hpp"

namespace ota::server {

inline constexpr size_t kMaxDevicePayload = 64 * 1024;

struct ServiceOptions {
  std::string http_host = "127.0.0.1";
  int http_port = 8443;  // 0: any free port
  bool mqtt_enabled = true;
  MqttOptions mqtt;
  int tick_ms = 1000;
};

class Service {
 public:
  Service(Platform& platform, ServiceOptions options);
  ~Service();

  bool Start(std::string* error);
  void Stop();
  void Wait();  // until Stop()

  HttpApi& api() { return *api_; }
  UpgradeTasks& tasks() { return *tasks_; }
  int http_port() const { return http_port_; }

  // One message from a device (the bridge calls this; tests may too).
  void HandleDeviceMessage(const std::string& topic, const std::string& payload);
  void TickNow();

 private:
  void Send(const std::vector<Outgoing>& messages);
  void Reject(const std::string& device, const std::string& what, const std::string& why);

  Platform& platform_;
  ServiceOptions options_;
  std::unique_ptr<UpgradeTasks> tasks_;
  std::unique_ptr<HttpApi> api_;
  std::unique_ptr<MqttBridge> bridge_;
  int http_port_ = -1;
  std::thread http_thread_, tick_thread_;
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool started_ = false;
};

}  // namespace ota::server
