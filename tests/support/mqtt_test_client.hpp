// A synchronous MQTT client for tests (libmosquitto): every call waits for its answer.
#pragma once

#include <mosquitto.h>

#include <chrono>
#include <ctime>
#include <string>
#include <vector>

namespace ota::testing {

// The UTC hour (YYYYMMDDHH) `offset_s` from now: the timestamp of an IoTDA login.
std::string UtcHour(std::time_t offset_s = 0);

struct ReceivedMessage {
  std::string topic;
  std::string payload;
};

class MqttTestClient {
 public:
  explicit MqttTestClient(const std::string& client_id);
  ~MqttTestClient();
  MqttTestClient(const MqttTestClient&) = delete;
  MqttTestClient& operator=(const MqttTestClient&) = delete;

  // MQTT over TLS from the next Connect on, checked against `ca_file`; false if unusable.
  bool UseTls(const std::string& ca_file);
  // The CONNACK code (0 accepted, 5 not authorised, ...), or -1 if none came.
  int Connect(int port, const std::string& username, const std::string& password);
  // The granted QoS (0x80 = refused), or -1 if no SUBACK came.
  int Subscribe(const std::string& filter, int qos = 1);
  // True once the broker acknowledged the publish (QoS 1).
  bool Publish(const std::string& topic, const std::string& payload);
  // Runs the network loop until the broker closes the connection (true) or `timeout` passes.
  bool WaitDisconnected(std::chrono::milliseconds timeout);
  // Runs the network loop for `wait` and returns what arrived.
  std::vector<ReceivedMessage> Receive(std::chrono::milliseconds wait);

 private:
  bool LoopUntil(const bool& flag, std::chrono::milliseconds timeout);
  static void OnConnect(mosquitto*, void* self, int rc);
  static void OnSubscribe(mosquitto*, void* self, int mid, int count, const int* granted);
  static void OnPublish(mosquitto*, void* self, int mid);
  static void OnMessage(mosquitto*, void* self, const mosquitto_message* msg);
  static void OnDisconnect(mosquitto*, void* self, int rc);

  mosquitto* m_;
  int connack_ = -1;
  bool connack_seen_ = false;
  int granted_ = -1;
  bool suback_seen_ = false;
  bool puback_seen_ = false;
  bool disconnected_ = false;
  std::vector<ReceivedMessage> inbox_;
};

}  // namespace ota::testing
