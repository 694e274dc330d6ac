// The platform's MQTT client (libmosquitto): its privileged identity at the broker, a
// persistent session (clean session off, a fixed client ID, QoS 1 subscriptions: device
// messages sent while the platform restarts wait at the broker), subscriptions to every
// device's upward topics and to the broker's presence events, messages handed to a callback
// on the client's network thread, and publishing from any thread with the broker's
// acknowledgement reported back (the outbox deletes a message only then). Reconnects on its
// own and subscribes again on every connect.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "ota/server/device_protocol.hpp"

struct mosquitto;
struct mosquitto_message;

namespace ota::server {

struct MqttOptions {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string username = "ota-server";
  std::string password;
  std::string client_id = "ota-server";  // the session's name: distinct per instance
  std::string share_group;               // empty: plain subscriptions (see UpSubscriptions)
  std::string ca_file;                   // non-empty: TLS to the broker, checked against this CA
};

class MqttBridge {
 public:
  using Handler = std::function<void(const std::string& topic, const std::string& payload)>;
  // A message over this size is dropped (and `on_oversized` told) before it is copied.
  using OversizedHandler = std::function<void(const std::string& topic, size_t size)>;
  // The broker acknowledged the message that Publish numbered `mid`.
  using AckHandler = std::function<void(int mid)>;
  // Connected (again); `session_present`: the broker still had the platform's session (its
  // subscriptions and the messages queued meanwhile); false after a broker restart that lost it.
  using ConnectHandler = std::function<void(bool session_present)>;
  MqttBridge(MqttOptions options, Handler on_message, size_t max_payload = SIZE_MAX,
             OversizedHandler on_oversized = nullptr, AckHandler on_ack = nullptr,
             ConnectHandler on_connect = nullptr);
  ~MqttBridge();
  MqttBridge(const MqttBridge&) = delete;
  MqttBridge& operator=(const MqttBridge&) = delete;

  // Connects and starts the network thread; waits up to `timeout_ms` until the broker accepted
  // the login and acknowledged every subscription.
  bool Start(int timeout_ms, std::string* error);
  void Stop();
  // QoS 1. Returns the message ID (for the AckHandler), or -1 when libmosquitto refused it.
  int Publish(const Outgoing& message);
  // Logged in and subscribed: a device message published from now on reaches the platform.
  bool connected() const { return connected_; }

 private:
  static void OnConnect(mosquitto* m, void* self, int rc, int flags);
  static void OnDisconnect(mosquitto* m, void* self, int rc);
  static void OnMessage(mosquitto* m, void* self, const ::mosquitto_message* msg);
  static void OnPublish(mosquitto* m, void* self, int mid);
  static void OnSubscribe(mosquitto* m, void* self, int mid, int count, const int* granted);

  MqttOptions options_;
  Handler handler_;
  size_t max_payload_;
  OversizedHandler on_oversized_;
  AckHandler on_ack_;
  ConnectHandler on_connect_;
  mosquitto* m_ = nullptr;
  void Run();             // the network thread
  bool started_ = false;  // the network thread runs
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::atomic<bool> connected_{false};
  std::atomic<int> last_connack_{-1};
  // Between CONNACK and the last SUBACK (network thread only): the subscriptions not yet
  // acknowledged, and whether the broker kept the session.
  std::set<int> pending_subscriptions_;
  bool session_present_ = false;
};

}  // namespace ota::server
