#include "fleet_transport.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <mosquitto.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace ota::fleet {

namespace {

constexpr int kWaitMs = 10000;  // CONNACK, SUBACK, PUBACK (a busy broker in a connect storm)
constexpr int kKeepaliveS = 120;

struct LibInit {
  LibInit() { mosquitto_lib_init(); }
};

bool IsIpAddress(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

}  // namespace

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

SharedTls::SharedTls(const std::string& ca_file, const std::string& host) {
  static LibInit init;
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) throw std::runtime_error("cannot make a TLS context");
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) {
    SSL_CTX_free(ctx_);
    throw std::runtime_error(ca_file + ": cannot load the CA");
  }
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  // The broker's name is checked by OpenSSL itself (libmosquitto checks it only on contexts
  // it makes), the same for every session.
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx_);
  const int named = IsIpAddress(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                                      : X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  if (named != 1) {
    SSL_CTX_free(ctx_);
    throw std::runtime_error(host + ": cannot verify the broker by this name");
  }
  // 10,000 idle sessions: no 34 KB read buffer each while nothing arrives.
  SSL_CTX_set_mode(ctx_, SSL_MODE_RELEASE_BUFFERS);
}

SharedTls::~SharedTls() {
  SSL_CTX_free(ctx_);
}

FleetMqtt::FleetMqtt(std::string host, int port, const SharedTls& tls, FleetCounters& counters,
                     MqttObserver& observer, const MqttFaults& faults)
    : host_(std::move(host)),
      port_(port),
      tls_(tls),
      counters_(counters),
      observer_(observer),
      faults_(faults),
      rng_(faults.seed) {}

FleetMqtt::~FleetMqtt() {
  Disconnect();
}

void FleetMqtt::OnConnect(mosquitto*, void* self, int rc) {
  auto* c = static_cast<FleetMqtt*>(self);
  c->connack_ = true;
  c->connack_rc_ = rc;
}
void FleetMqtt::OnDisconnect(mosquitto*, void* self, int) {
  static_cast<FleetMqtt*>(self)->Lost();
}
void FleetMqtt::OnSubscribe(mosquitto*, void* self, int, int count, const int* granted) {
  auto* c = static_cast<FleetMqtt*>(self);
  c->suback_ = true;
  c->granted_ = count > 0 ? granted[0] : -1;
}
void FleetMqtt::OnPublish(mosquitto*, void* self, int mid) {
  // At QoS 1 libmosquitto calls this on the PUBACK. Only the one for the message being
  // published counts: a late PUBACK of an earlier publish that timed out is not its ack.
  auto* c = static_cast<FleetMqtt*>(self);
  if (mid == c->publish_mid_) c->puback_ = true;
}
void FleetMqtt::OnMessage(mosquitto*, void* self, const mosquitto_message* msg) {
  auto* c = static_cast<FleetMqtt*>(self);
  c->counters_.received.fetch_add(1, std::memory_order_relaxed);
  c->inbox_.emplace_back(msg->topic, std::string(static_cast<const char*>(msg->payload),
                                                 static_cast<size_t>(msg->payloadlen)));
}

void FleetMqtt::Lost() {
  if (connected_) {
    connected_ = false;
    counters_.connected.fetch_sub(1, std::memory_order_relaxed);
    observer_.OnConnected(false);
  }
}

void FleetMqtt::ScheduleDrop() {
  if (faults_.drop_mean_ms <= 0) return;
  std::uniform_int_distribution<int> d(faults_.drop_mean_ms / 4, faults_.drop_mean_ms * 7 / 4);
  drop_at_ms_ = NowMs() + d(rng_);
}

bool FleetMqtt::RunFor(int timeout_ms, const std::function<bool()>& done) {
  const int64_t deadline = NowMs() + timeout_ms;
  while (m_ != nullptr && !done()) {
    const int64_t now = NowMs();
    if (drop_at_ms_ != 0 && now >= drop_at_ms_) {
      // The link goes: the socket dies under the session, as when a board loses its network.
      drop_at_ms_ = 0;
      counters_.drops.fetch_add(1, std::memory_order_relaxed);
      ::shutdown(mosquitto_socket(m_), SHUT_RDWR);
    }
    const int sock = mosquitto_socket(m_);
    if (sock < 0) {
      Lost();
      return false;
    }
    pollfd p{};
    p.fd = sock;
    p.events = static_cast<short>(POLLIN | (mosquitto_want_write(m_) ? POLLOUT : 0));
    int wait = static_cast<int>(deadline - now);
    if (wait < 0) wait = 0;
    if (drop_at_ms_ != 0 && drop_at_ms_ - now < wait) wait = static_cast<int>(drop_at_ms_ - now);
    const int n = ::poll(&p, 1, wait);
    if (n < 0 && errno != EINTR) {
      Lost();
      return false;
    }
    if (n > 0 && (p.revents & POLLIN) != 0) {
      if (mosquitto_loop_read(m_, 1) != MOSQ_ERR_SUCCESS) {
        Lost();
        return false;
      }
    }
    if (n > 0 && (p.revents & (POLLERR | POLLHUP)) != 0) {
      // Hung up or refused. libmosquitto still reads "success" from a socket whose
      // non-blocking connect was refused (connect pending), and poll() answers at once, for
      // ever: the session is gone whatever it says.
      Lost();
      return false;
    }
    if (mosquitto_want_write(m_) && (n <= 0 || (p.revents & POLLOUT) != 0)) {
      if (mosquitto_loop_write(m_, 1) != MOSQ_ERR_SUCCESS) {
        Lost();
        return false;
      }
    }
    if (mosquitto_loop_misc(m_) != MOSQ_ERR_SUCCESS) {  // keepalive
      Lost();
      return false;
    }
    if (NowMs() >= deadline) break;
  }
  return m_ != nullptr && (connected_ || connack_);
}

bool FleetMqtt::RunUntil(const bool& flag, int timeout_ms) {
  return RunFor(timeout_ms, [&flag] { return flag; }) && flag;
}

bool FleetMqtt::RunUntilMessage(int timeout_ms) {
  return RunFor(timeout_ms, [this] { return !inbox_.empty(); });
}

Status FleetMqtt::Connect(const char* client_id, const char* username, const char* password) {
  Disconnect();
  m_ = mosquitto_new(client_id, true, this);
  if (m_ == nullptr) return StatusCode::kIoError;
  mosquitto_connect_callback_set(m_, OnConnect);
  mosquitto_disconnect_callback_set(m_, OnDisconnect);
  mosquitto_subscribe_callback_set(m_, OnSubscribe);
  mosquitto_publish_callback_set(m_, OnPublish);
  mosquitto_message_callback_set(m_, OnMessage);
  mosquitto_username_pw_set(m_, username, password);
  // The fleet's one TLS context, as it is (the CA is in it already).
  mosquitto_int_option(m_, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
  if (mosquitto_void_option(m_, MOSQ_OPT_SSL_CTX, tls_.ctx()) != MOSQ_ERR_SUCCESS) {
    return StatusCode::kInvalidArgument;
  }
  connack_ = false;
  connack_rc_ = -1;
  // Non-blocking: the TCP connect and the TLS handshake run in RunFor(), with a timeout.
  if (mosquitto_connect_async(m_, host_.c_str(), port_, kKeepaliveS) != MOSQ_ERR_SUCCESS) {
    counters_.connect_failures.fetch_add(1, std::memory_order_relaxed);
    Disconnect();
    return StatusCode::kIoError;
  }
  if (!RunUntil(connack_, kWaitMs) || connack_rc_ != 0) {
    counters_.connect_failures.fetch_add(1, std::memory_order_relaxed);
    const bool refused = connack_ && connack_rc_ != 0;
    Disconnect();
    return refused ? Status(StatusCode::kVerifyFailed) : Status(StatusCode::kIoError);
  }
  connected_ = true;
  counters_.connected.fetch_add(1, std::memory_order_relaxed);
  counters_.connects.fetch_add(1, std::memory_order_relaxed);
  observer_.OnConnected(true);
  ScheduleDrop();
  return Status::Ok();
}

Status FleetMqtt::Subscribe(const char* filter) {
  if (!connected_) return StatusCode::kFailedPrecondition;
  suback_ = false;
  if (mosquitto_subscribe(m_, nullptr, filter, 1) != MOSQ_ERR_SUCCESS) return StatusCode::kIoError;
  if (!RunUntil(suback_, kWaitMs)) return StatusCode::kIoError;
  return granted_ <= 2 ? Status::Ok() : Status(StatusCode::kVerifyFailed);
}

Status FleetMqtt::Publish(const char* topic, ConstByteSpan payload) {
  if (faults_.slow_ms > 0) {
    // A slow board: its publishes leave late (a slow modem, a busy app), the session runs on.
    RunFor(faults_.slow_ms, [] { return false; });
  }
  if (!connected_) {
    counters_.publish_failures.fetch_add(1, std::memory_order_relaxed);
    return StatusCode::kFailedPrecondition;
  }
  puback_ = false;
  publish_mid_ = -1;  // set by mosquitto_publish; packet IDs are 1..65535
  if (mosquitto_publish(m_, &publish_mid_, topic, static_cast<int>(payload.size()), payload.data(),
                        1, false) != MOSQ_ERR_SUCCESS ||
      !RunUntil(puback_, kWaitMs)) {
    counters_.publish_failures.fetch_add(1, std::memory_order_relaxed);
    return StatusCode::kIoError;
  }
  counters_.published.fetch_add(1, std::memory_order_relaxed);
  observer_.OnPublished(topic, reinterpret_cast<const char*>(payload.data()), payload.size());
  return Status::Ok();
}

Result<size_t> FleetMqtt::Receive(uint32_t timeout_ms, Span<char> topic, ByteSpan payload) {
  if (inbox_.empty() && connected_) RunUntilMessage(static_cast<int>(timeout_ms));
  if (inbox_.empty()) return StatusCode::kNotFound;
  auto [t, p] = std::move(inbox_.front());
  inbox_.pop_front();
  observer_.OnReceived(p.data(), p.size());
  if (t.size() + 1 > topic.size() || p.size() > payload.size()) return StatusCode::kTooLarge;
  std::memcpy(topic.data(), t.c_str(), t.size() + 1);
  std::memcpy(payload.data(), p.data(), p.size());
  return p.size();
}

void FleetMqtt::Disconnect() {
  if (m_ == nullptr) return;
  Lost();
  mosquitto_disconnect(m_);
  mosquitto_destroy(m_);
  m_ = nullptr;
  drop_at_ms_ = 0;
  inbox_.clear();
}

FleetHttps::FleetHttps(std::string ca_file, FleetCounters& counters, const HttpFaults& faults,
                       std::function<void()> power_cut)
    : ca_file_(std::move(ca_file)),
      counters_(counters),
      faults_(faults),
      power_cut_(std::move(power_cut)),
      rng_(faults.seed) {}

FleetHttps::~FleetHttps() {
  Close();
}

void FleetHttps::Close() {
  if (client_) {
    client_.reset();
    counters_.downloading.fetch_sub(1, std::memory_order_relaxed);
  }
}

Result<size_t> FleetHttps::GetRange(const char* url, const char* token, uint32_t offset,
                                    ByteSpan out, uint32_t* total_size) {
  counters_.http_requests.fetch_add(1, std::memory_order_relaxed);
  if (first_request_ms_ < 0) first_request_ms_ = NowMs();
  if (faults_.fail_rate > 0 &&
      std::uniform_real_distribution<double>(0, 1)(rng_) < faults_.fail_rate) {
    counters_.http_failures.fetch_add(1, std::memory_order_relaxed);
    Close();  // as a dropped connection does
    return StatusCode::kIoError;
  }
  const std::string u(url);
  const std::string scheme = "https://";
  if (u.rfind(scheme, 0) != 0 || out.empty()) return StatusCode::kInvalidArgument;
  const size_t slash = u.find('/', scheme.size());
  const std::string authority = u.substr(scheme.size(), slash - scheme.size());
  const std::string path = slash == std::string::npos ? "/" : u.substr(slash);
  const size_t colon = authority.rfind(':');
  const std::string host = authority.substr(0, colon);
  const int port = colon == std::string::npos ? 443 : std::atoi(authority.c_str() + colon + 1);
  if (client_ && authority != authority_) Close();
  if (!client_) {
    // One connection per download, kept alive for its blocks and closed at its end.
    client_ = std::make_unique<httplib::SSLClient>(host, port);
    client_->set_ca_cert_path(ca_file_.c_str());
    client_->enable_server_certificate_verification(true);
    client_->set_keep_alive(true);
    client_->set_connection_timeout(10);
    client_->set_read_timeout(30);
    authority_ = authority;
    counters_.downloading.fetch_add(1, std::memory_order_relaxed);
    counters_.http_connections.fetch_add(1, std::memory_order_relaxed);
  }
  const std::string range =
      "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + out.size() - 1);
  httplib::Result r = client_->Get(
      path.c_str(), {{"Authorization", std::string("Bearer ") + token}, {"Range", range}});
  if (!r || r->status != 206) {
    counters_.http_failures.fetch_add(1, std::memory_order_relaxed);
    Close();
    if (r && (r->status == 401 || r->status == 403)) return StatusCode::kVerifyFailed;
    return StatusCode::kIoError;
  }
  const std::string cr = r->get_header_value("Content-Range");
  const size_t slash_total = cr.rfind('/');
  if (slash_total == std::string::npos || r->body.size() > out.size()) {
    Close();
    return StatusCode::kCorrupt;
  }
  *total_size = static_cast<uint32_t>(std::strtoul(cr.c_str() + slash_total + 1, nullptr, 10));
  std::memcpy(out.data(), r->body.data(), r->body.size());
  bytes_ += r->body.size();
  counters_.bytes_downloaded.fetch_add(r->body.size(), std::memory_order_relaxed);
  if (offset + r->body.size() >= *total_size) {
    Close();  // the last block: no idle keep-alive connection left on the server
    last_complete_ms_ = NowMs();
  }
  if (faults_.power_cut_after >= 0 && bytes_ >= static_cast<uint64_t>(faults_.power_cut_after)) {
    faults_.power_cut_after = -1;  // once
    counters_.power_cuts.fetch_add(1, std::memory_order_relaxed);
    power_cut_();
  }
  return r->body.size();
}

}  // namespace ota::fleet
