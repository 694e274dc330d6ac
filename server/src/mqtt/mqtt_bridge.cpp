#include "ota/server/mqtt_bridge.hpp"

#include <mosquitto.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "ota/server/log.hpp"

namespace ota::server {

namespace {
struct LibInit {
  LibInit() { mosquitto_lib_init(); }
};
}  // namespace

MqttBridge::MqttBridge(MqttOptions options, Handler on_message, size_t max_payload,
                       OversizedHandler on_oversized, AckHandler on_ack, ConnectHandler on_connect)
    : options_(std::move(options)),
      handler_(std::move(on_message)),
      max_payload_(max_payload),
      on_oversized_(std::move(on_oversized)),
      on_ack_(std::move(on_ack)),
      on_connect_(std::move(on_connect)) {
  static LibInit init;
  if (options_.client_id.empty()) options_.client_id = "ota-server";
  // clean_session false: the broker keeps the subscriptions and queues QoS 1 messages for
  // the platform while it is away.
  m_ = mosquitto_new(options_.client_id.c_str(), false, this);
  mosquitto_connect_with_flags_callback_set(m_, OnConnect);
  mosquitto_disconnect_callback_set(m_, OnDisconnect);
  mosquitto_message_callback_set(m_, OnMessage);
  mosquitto_publish_callback_set(m_, OnPublish);
  mosquitto_subscribe_callback_set(m_, OnSubscribe);
  mosquitto_reconnect_delay_set(m_, 1, 10, true);
}

MqttBridge::~MqttBridge() {
  Stop();
  mosquitto_destroy(m_);
}

void MqttBridge::OnConnect(mosquitto* m, void* self, int rc, int flags) {
  auto* b = static_cast<MqttBridge*>(self);
  b->last_connack_ = rc;
  if (rc != 0) return;
  // Not connected until every SUBACK is in: a device message published before the broker
  // added a subscription would be lost to the platform (and a device that connects then would
  // never be seen online).
  b->session_present_ = (flags & 1) != 0;
  b->pending_subscriptions_.clear();
  for (const std::string& filter : UpSubscriptions(b->options_.share_group)) {
    int mid = 0;
    const int s = mosquitto_subscribe(m, &mid, filter.c_str(), 1);
    if (s != MOSQ_ERR_SUCCESS) {
      Log(LogLevel::kError, "mqtt: cannot subscribe " + filter + ": " + mosquitto_strerror(s));
      mosquitto_disconnect(m);  // and the loop connects (and subscribes) again
      return;
    }
    b->pending_subscriptions_.insert(mid);
  }
}

void MqttBridge::OnSubscribe(mosquitto* m, void* self, int mid, int count, const int* granted) {
  auto* b = static_cast<MqttBridge*>(self);
  if (b->pending_subscriptions_.erase(mid) == 0) return;
  for (int i = 0; i < count; ++i) {
    if (granted[i] > 2) {  // 0x80: refused
      Log(LogLevel::kError, "mqtt: the broker refused a subscription");
      mosquitto_disconnect(m);
      return;
    }
  }
  if (!b->pending_subscriptions_.empty()) return;
  b->connected_ = true;
  if (b->on_connect_) b->on_connect_(b->session_present_);
}

void MqttBridge::OnPublish(mosquitto*, void* self, int mid) {
  auto* b = static_cast<MqttBridge*>(self);
  if (b->on_ack_) b->on_ack_(mid);
}

void MqttBridge::OnDisconnect(mosquitto*, void* self, int) {
  static_cast<MqttBridge*>(self)->connected_ = false;
}

void MqttBridge::OnMessage(mosquitto*, void* self, const mosquitto_message* msg) {
  auto* b = static_cast<MqttBridge*>(self);
  const auto size = static_cast<size_t>(msg->payloadlen);
  if (size > b->max_payload_) {  // checked before anything is copied
    if (b->on_oversized_) b->on_oversized_(msg->topic, size);
    return;
  }
  b->handler_(msg->topic, std::string(static_cast<const char*>(msg->payload), size));
}

bool MqttBridge::Start(int timeout_ms, std::string* error) {
  mosquitto_username_pw_set(m_, options_.username.c_str(), options_.password.c_str());
  if (!options_.ca_file.empty() && mosquitto_tls_set(m_, options_.ca_file.c_str(), nullptr, nullptr,
                                                     nullptr, nullptr) != MOSQ_ERR_SUCCESS) {
    *error = "mqtt: cannot use CA " + options_.ca_file;
    return false;
  }
  // Publish() from other threads only queues; the network thread below writes.
  mosquitto_threaded_set(m_, true);
  const int rc = mosquitto_connect(m_, options_.host.c_str(), options_.port, 30);
  if (rc != MOSQ_ERR_SUCCESS) {
    *error = "mqtt: cannot connect to " + options_.host + ":" + std::to_string(options_.port) +
             ": " + mosquitto_strerror(rc);
    return false;
  }
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
  started_ = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!connected_ && last_connack_ <= 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!connected_) {
    *error = last_connack_ > 0
                 ? std::string("mqtt: broker refused: ") + mosquitto_connack_string(last_connack_)
                 : "mqtt: no answer from the broker";
    Stop();
    return false;
  }
  return true;
}

// libmosquitto's own loop (mosquitto_loop_start) waits in select(), which fails for a socket
// numbered 1024 or more: a platform with thousands of device downloads open gets such numbers.
// This loop waits in poll() and reconnects with a capped back-off.
void MqttBridge::Run() {
  int backoff_ms = 1000;
  while (!stop_) {
    const int fd = mosquitto_socket(m_);
    if (fd < 0) {
      connected_ = false;
      for (int waited = 0; waited < backoff_ms && !stop_; waited += 50) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (stop_) break;
      backoff_ms =
          mosquitto_reconnect(m_) == MOSQ_ERR_SUCCESS ? 1000 : std::min(backoff_ms * 2, 10000);
      continue;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (mosquitto_want_write(m_) ? POLLOUT : 0)), 0};
    // Short: a message another thread queued is written within this time.
    const int n = ::poll(&p, 1, 10);
    int rc = MOSQ_ERR_SUCCESS;
    if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) rc = mosquitto_loop_read(m_, 1);
    // Hung up: nothing more will come (libmosquitto may not notice while a connect is pending).
    if (rc == MOSQ_ERR_SUCCESS && n > 0 && (p.revents & (POLLERR | POLLHUP)) != 0) {
      rc = MOSQ_ERR_CONN_LOST;
    }
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(m_)) rc = mosquitto_loop_write(m_, 1);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_loop_misc(m_);
    if (rc != MOSQ_ERR_SUCCESS) {
      connected_ = false;
      if (mosquitto_socket(m_) >= 0) mosquitto_disconnect(m_);
    }
  }
}

void MqttBridge::Stop() {
  if (!started_) return;
  started_ = false;
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  // The session stays at the broker (clean session off): reports queue there until we are back.
  if (mosquitto_socket(m_) >= 0) {
    mosquitto_disconnect(m_);
    mosquitto_loop_write(m_, 1);
  }
  connected_ = false;
}

int MqttBridge::Publish(const Outgoing& message) {
  int mid = -1;
  if (mosquitto_publish(m_, &mid, message.topic.c_str(), static_cast<int>(message.payload.size()),
                        message.payload.data(), 1, false) != MOSQ_ERR_SUCCESS) {
    return -1;
  }
  return mid;
}

}  // namespace ota::server
