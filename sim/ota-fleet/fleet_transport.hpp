// The agent's transports for thousands of boards in one process: an MQTT client that sleeps
// in poll() on its socket (libmosquitto's mosquitto_loop() uses select(), which refuses
// descriptors above 1023) and shares one SSL_CTX with every other board, and an HTTPS range
// client (cpp-httplib) that holds its connection only while a download is under way. Both
// count what they do and can misbehave on purpose (dropped sessions, failed requests, slow
// publishes, a power cut after some bytes) for the fleet's behaviour mix.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "ota/agent/transport.hpp"

struct mosquitto;
struct mosquitto_message;
struct ssl_ctx_st;
namespace httplib {
class SSLClient;
}

namespace ota::fleet {

// Milliseconds on the steady clock (the fleet's time base).
int64_t NowMs();

// Counters of the whole fleet (every board adds to them).
struct FleetCounters {
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> publish_failures{0};
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> connects{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> drops{0};  // sessions dropped on purpose
  std::atomic<uint64_t> http_requests{0};
  std::atomic<uint64_t> http_failures{0};
  std::atomic<uint64_t> http_connections{0};
  std::atomic<uint64_t> bytes_downloaded{0};
  std::atomic<uint64_t> power_cuts{0};
  std::atomic<uint64_t> boots{0};
  std::atomic<int> connected{0};    // sessions up now
  std::atomic<int> downloading{0};  // downloads with an open HTTPS connection now
  std::atomic<int> rebooting{0};    // boards in the loader now
  std::atomic<int> done{0};         // boards that reported a final result
};

// One client-side TLS context for every MQTT session of the fleet: the platform's CA loaded
// once, the peer verified against `host` (a name or an IP address), buffers released while
// idle. Throws std::runtime_error.
class SharedTls {
 public:
  SharedTls(const std::string& ca_file, const std::string& host);
  ~SharedTls();
  SharedTls(const SharedTls&) = delete;
  SharedTls& operator=(const SharedTls&) = delete;
  ssl_ctx_st* ctx() const { return ctx_; }

 private:
  ssl_ctx_st* ctx_ = nullptr;
};

// What one board's MQTT client reports to its board (called on the board's thread).
class MqttObserver {
 public:
  virtual void OnConnected(bool up) = 0;
  virtual void OnPublished(const char* topic, const char* payload, size_t len) = 0;
  virtual void OnReceived(const char* payload, size_t len) = 0;

 protected:
  ~MqttObserver() = default;
};

struct MqttFaults {
  int slow_ms = 0;       // every publish waits this long first
  int drop_mean_ms = 0;  // >0: the session is cut at random moments, this far apart on average
  uint32_t seed = 1;
};

class FleetMqtt final : public agent::MqttClient {
 public:
  FleetMqtt(std::string host, int port, const SharedTls& tls, FleetCounters& counters,
            MqttObserver& observer, const MqttFaults& faults);
  ~FleetMqtt();
  Status Connect(const char* client_id, const char* username, const char* password) override;
  bool connected() const override { return connected_; }
  Status Subscribe(const char* filter) override;
  Status Publish(const char* topic, ConstByteSpan payload) override;
  Result<size_t> Receive(uint32_t timeout_ms, Span<char> topic, ByteSpan payload) override;
  void Disconnect() override;

 private:
  // Runs the session until `flag` is set or `timeout_ms` has passed, sleeping in poll().
  // False if the session is gone.
  bool RunUntil(const bool& flag, int timeout_ms);
  bool RunUntilMessage(int timeout_ms);
  bool RunFor(int timeout_ms, const std::function<bool()>& done);
  void Lost();
  void ScheduleDrop();
  static void OnConnect(mosquitto*, void* self, int rc);
  static void OnDisconnect(mosquitto*, void* self, int rc);
  static void OnSubscribe(mosquitto*, void* self, int, int, const int* granted);
  static void OnPublish(mosquitto*, void* self, int mid);
  static void OnMessage(mosquitto*, void* self, const mosquitto_message* msg);

  std::string host_;
  int port_;
  const SharedTls& tls_;
  FleetCounters& counters_;
  MqttObserver& observer_;
  MqttFaults faults_;
  std::mt19937 rng_;
  mosquitto* m_ = nullptr;
  bool connected_ = false;
  bool connack_ = false;
  int connack_rc_ = -1;
  bool suback_ = false;
  int granted_ = -1;
  bool puback_ = false;  // the PUBACK of publish_mid_ came
  int publish_mid_ = -1;
  int64_t drop_at_ms_ = 0;  // 0: none planned
  std::deque<std::pair<std::string, std::string>> inbox_;
};

struct HttpFaults {
  double fail_rate = 0;          // each request fails (connection dropped) with this chance
  int64_t power_cut_after = -1;  // >=0: call `power_cut` once this many bytes have come
  uint32_t seed = 1;
};

class FleetHttps final : public agent::HttpsClient {
 public:
  FleetHttps(std::string ca_file, FleetCounters& counters, const HttpFaults& faults,
             std::function<void()> power_cut);
  ~FleetHttps();
  Result<size_t> GetRange(const char* url, const char* token, uint32_t offset, ByteSpan out,
                          uint32_t* total_size) override;
  // Closes the connection (a download is over, or the board resets).
  void Close();
  uint64_t bytes() const { return bytes_; }
  // When the first request of this client was made and the last download completed (-1: never).
  int64_t first_request_ms() const { return first_request_ms_; }
  int64_t last_complete_ms() const { return last_complete_ms_; }

 private:
  std::string ca_file_;
  FleetCounters& counters_;
  HttpFaults faults_;
  std::function<void()> power_cut_;
  std::mt19937 rng_;
  std::string authority_;
  std::unique_ptr<httplib::SSLClient> client_;
  uint64_t bytes_ = 0;
  int64_t first_request_ms_ = -1;
  int64_t last_complete_ms_ = -1;
};

}  // namespace ota::fleet
