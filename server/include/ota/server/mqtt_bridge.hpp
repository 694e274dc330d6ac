// The platform's MQTT client (libmosquitto): its privileged identity at the broker, its
// subscriptions to every device's upward topics, messages handed to a callback on
// the client's network thread, and publishing from any thread. Reconnects on its own and
// subscribes again on every connect.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "ota/server/device_protocol.hpp"

struct mosquitto;
struct mosquitto_message;

namespace ota::server {

struct MqttOptions {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string username = "ota-server";
  std::string password;
  std::string client_id;    // empty: ota-server-{pid}
  std::string share_group;  // empty: plain subscriptions (see UpSubscriptions)
  std::string ca_file;      // non-empty: TLS to the broker, checked against this CA
};

class MqttBridge {
 public:
  using Handler = std::function<void(const std::string& topic, const std::string& payload)>;
  MqttBridge(MqttOptions options, Handler on_message);
  ~MqttBridge();
  MqttBridge(const MqttBridge&) = delete;
  MqttBridge& operator=(const MqttBridge&) = delete;

  // Connects (waits up to `timeout_ms` for the broker's CONNACK) and starts the network thread.
  bool Start(int timeout_ms, std::string* error);
  void Stop();
  bool Publish(const Outgoing& message);
  bool connected() const { return connected_; }

 private:
  static void OnConnect(mosquitto* m, void* self, int rc);
  static void OnDisconnect(mosquitto* m, void* self, int rc);
  static void OnMessage(mosquitto* m, void* self, const ::mosquitto_message* msg);

  MqttOptions options_;
  Handler handler_;
  mosquitto* m_ = nullptr;
  bool started_ = false;  // the network thread runs
  std::atomic<bool> connected_{false};
  std::atomic<int> last_connack_{-1};
};

}  // namespace ota::server
