#include "mqtt_test_client.hpp"

namespace ota::testing {

namespace {
struct LibInit {
  LibInit() { mosquitto_lib_init(); }
};
}  // namespace

std::string UtcHour(std::time_t offset_s) {
  const std::time_t t = std::time(nullptr) + offset_s;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y%m%d%H", &tm);
  return buf;
}

MqttTestClient::MqttTestClient(const std::string& client_id) {
  static LibInit init;
  m_ = mosquitto_new(client_id.c_str(), true, this);
  mosquitto_connect_callback_set(m_, OnConnect);
  mosquitto_subscribe_callback_set(m_, OnSubscribe);
  mosquitto_publish_callback_set(m_, OnPublish);
  mosquitto_message_callback_set(m_, OnMessage);
  mosquitto_disconnect_callback_set(m_, OnDisconnect);
}

MqttTestClient::~MqttTestClient() {
  mosquitto_disconnect(m_);
  mosquitto_destroy(m_);
}

void MqttTestClient::OnConnect(mosquitto*, void* self, int rc) {
  auto* c = static_cast<MqttTestClient*>(self);
  c->connack_ = rc;
  c->connack_seen_ = true;
}
void MqttTestClient::OnSubscribe(mosquitto*, void* self, int, int count, const int* granted) {
  auto* c = static_cast<MqttTestClient*>(self);
  c->granted_ = count > 0 ? granted[0] : -1;
  c->suback_seen_ = true;
}
void MqttTestClient::OnPublish(mosquitto*, void* self, int) {
  static_cast<MqttTestClient*>(self)->puback_seen_ = true;
}
void MqttTestClient::OnMessage(mosquitto*, void* self, const mosquitto_message* msg) {
  auto* c = static_cast<MqttTestClient*>(self);
  c->inbox_.push_back({msg->topic, std::string(static_cast<const char*>(msg->payload),
                                               static_cast<size_t>(msg->payloadlen))});
}

void MqttTestClient::OnDisconnect(mosquitto*, void* self, int) {
  static_cast<MqttTestClient*>(self)->disconnected_ = true;
}

bool MqttTestClient::LoopUntil(const bool& flag, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!flag && std::chrono::steady_clock::now() < deadline) {
    if (mosquitto_loop(m_, 20, 1) != MOSQ_ERR_SUCCESS) break;  // refused: the broker hung up
  }
  return flag;
}

bool MqttTestClient::UseTls(const std::string& ca_file) {
  return mosquitto_tls_set(m_, ca_file.c_str(), nullptr, nullptr, nullptr, nullptr) ==
         MOSQ_ERR_SUCCESS;
}

int MqttTestClient::Connect(int port, const std::string& username, const std::string& password) {
  mosquitto_username_pw_set(m_, username.c_str(), password.c_str());
  connack_seen_ = false;
  disconnected_ = false;
  if (mosquitto_connect(m_, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) return -1;
  LoopUntil(connack_seen_, std::chrono::seconds(5));
  return connack_seen_ ? connack_ : -1;
}

int MqttTestClient::Subscribe(const std::string& filter, int qos) {
  suback_seen_ = false;
  if (mosquitto_subscribe(m_, nullptr, filter.c_str(), qos) != MOSQ_ERR_SUCCESS) return -1;
  LoopUntil(suback_seen_, std::chrono::seconds(5));
  return suback_seen_ ? granted_ : -1;
}

bool MqttTestClient::Publish(const std::string& topic, const std::string& payload) {
  puback_seen_ = false;
  if (mosquitto_publish(m_, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                        payload.data(), 1, false) != MOSQ_ERR_SUCCESS) {
    return false;
  }
  return LoopUntil(puback_seen_, std::chrono::seconds(5));
}

bool MqttTestClient::WaitDisconnected(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!disconnected_ && std::chrono::steady_clock::now() < deadline) {
    // An error is the connection closing: the disconnect callback has run (or runs next turn).
    if (mosquitto_loop(m_, 20, 1) != MOSQ_ERR_SUCCESS && !disconnected_) {
      return mosquitto_socket(m_) < 0;
    }
  }
  return disconnected_;
}

std::vector<ReceivedMessage> MqttTestClient::Receive(std::chrono::milliseconds wait) {
  const bool never = false;
  LoopUntil(never, wait);
  std::vector<ReceivedMessage> out;
  out.swap(inbox_);
  return out;
}

}  // namespace ota::testing
