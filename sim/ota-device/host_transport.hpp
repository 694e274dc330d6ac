// The host port of the agent's transport: MQTT over TLS through libmosquitto, HTTPS range GETs
// through cpp-httplib, and the system clock. What a board port supplies with lwIP + mbedTLS.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>

#include "ota/agent/transport.hpp"

struct mosquitto;
struct mosquitto_message;
namespace httplib {
class SSLClient;
}

namespace ota::device_sim {

class MosquittoMqtt final : public agent::MqttClient {
 public:
  MosquittoMqtt(std::string host, int port, std::string ca_file);
  ~MosquittoMqtt();
  Status Connect(const char* client_id, const char* username, const char* password) override;
  bool connected() const override { return connected_; }
  Status Subscribe(const char* filter) override;
  Status Publish(const char* topic, ConstByteSpan payload) override;
  Result<size_t> Receive(uint32_t timeout_ms, Span<char> topic, ByteSpan payload) override;
  void Disconnect() override;

 private:
  bool LoopUntil(const bool& flag, int timeout_ms);
  static void OnConnect(mosquitto*, void* self, int rc);
  static void OnDisconnect(mosquitto*, void* self, int rc);
  static void OnSubscribe(mosquitto*, void* self, int, int, const int* granted);
  static void OnPublish(mosquitto*, void* self, int mid);
  static void OnMessage(mosquitto*, void* self, const mosquitto_message* msg);

  std::string host_, ca_file_;
  int port_;
  mosquitto* m_ = nullptr;
  bool connected_ = false;
  bool connack_ = false;
  int connack_rc_ = -1;
  bool suback_ = false;
  int granted_ = -1;
  bool puback_ = false;  // the PUBACK of publish_mid_ came
  int publish_mid_ = -1;
  std::deque<std::pair<std::string, std::string>> inbox_;
};

class HttplibHttps final : public agent::HttpsClient {
 public:
  explicit HttplibHttps(std::string ca_file);
  ~HttplibHttps();
  Result<size_t> GetRange(const char* url, const char* token, uint32_t offset, ByteSpan out,
                          uint32_t* total_size) override;
  // For the demo's summary.
  uint64_t bytes_received() const { return bytes_; }
  void reset_bytes() { bytes_ = 0; }
  // Test hook: after `ok` more successful requests, `n` requests fail as if the connection
  // dropped.
  void DropAfter(int ok, int n) {
    ok_before_drop_ = ok;
    drop_ = n;
  }

 private:
  std::string ca_file_;
  std::map<std::string, std::unique_ptr<httplib::SSLClient>> clients_;
  uint64_t bytes_ = 0;
  int drop_ = 0;
  int ok_before_drop_ = 0;
};

class SystemClock final : public agent::Clock {
 public:
  uint64_t NowMs() override;
  void UtcHour(char (&out)[11]) override;
};

}  // namespace ota::device_sim
