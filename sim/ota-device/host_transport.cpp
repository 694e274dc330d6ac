#include "host_transport.hpp"

#include <httplib.h>
#include <mosquitto.h>

#include <chrono>
#include <cstring>
#include <ctime>

namespace ota::device_sim {

namespace {
struct LibInit {
  LibInit() { mosquitto_lib_init(); }
};
constexpr int kWaitMs = 5000;
}  // namespace

MosquittoMqtt::MosquittoMqtt(std::string host, int port, std::string ca_file)
    : host_(std::move(host)), ca_file_(std::move(ca_file)), port_(port) {
  static LibInit init;
}

MosquittoMqtt::~MosquittoMqtt() {
  Disconnect();
}

void MosquittoMqtt::OnConnect(mosquitto*, void* self, int rc) {
  auto* c = static_cast<MosquittoMqtt*>(self);
  c->connack_ = true;
  c->connack_rc_ = rc;
  c->connected_ = rc == 0;
}
void MosquittoMqtt::OnDisconnect(mosquitto*, void* self, int) {
  static_cast<MosquittoMqtt*>(self)->connected_ = false;
}
void MosquittoMqtt::OnSubscribe(mosquitto*, void* self, int, int count, const int* granted) {
  auto* c = static_cast<MosquittoMqtt*>(self);
  c->suback_ = true;
  c->granted_ = count > 0 ? granted[0] : -1;
}
void MosquittoMqtt::OnPublish(mosquitto*, void* self, int mid) {
  // At QoS 1 libmosquitto calls this on the PUBACK. Only the one for the message being
  // published counts: a late PUBACK of an earlier publish that timed out is not its ack.
  auto* c = static_cast<MosquittoMqtt*>(self);
  if (mid == c->publish_mid_) c->puback_ = true;
}
void MosquittoMqtt::OnMessage(mosquitto*, void* self, const mosquitto_message* msg) {
  static_cast<MosquittoMqtt*>(self)->inbox_.emplace_back(
      msg->topic,
      std::string(static_cast<const char*>(msg->payload), static_cast<size_t>(msg->payloadlen)));
}

bool MosquittoMqtt::LoopUntil(const bool& flag, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!flag && std::chrono::steady_clock::now() < deadline) {
    if (mosquitto_loop(m_, 20, 1) != MOSQ_ERR_SUCCESS) {
      connected_ = false;
      return false;
    }
  }
  return flag;
}

Status MosquittoMqtt::Connect(const char* client_id, const char* username, const char* password) {
  Disconnect();
  m_ = mosquitto_new(client_id, true, this);
  if (m_ == nullptr) return StatusCode::kIoError;
  mosquitto_connect_callback_set(m_, OnConnect);
  mosquitto_disconnect_callback_set(m_, OnDisconnect);
  mosquitto_subscribe_callback_set(m_, OnSubscribe);
  mosquitto_publish_callback_set(m_, OnPublish);
  mosquitto_message_callback_set(m_, OnMessage);
  mosquitto_username_pw_set(m_, username, password);
  if (!ca_file_.empty() && mosquitto_tls_set(m_, ca_file_.c_str(), nullptr, nullptr, nullptr,
                                             nullptr) != MOSQ_ERR_SUCCESS) {
    return StatusCode::kInvalidArgument;
  }
  connack_ = false;
  if (mosquitto_connect(m_, host_.c_str(), port_, 60) != MOSQ_ERR_SUCCESS) {
    return StatusCode::kIoError;
  }
  if (!LoopUntil(connack_, kWaitMs)) return StatusCode::kIoError;
  return connack_rc_ == 0 ? Status::Ok() : Status(StatusCode::kVerifyFailed);
}

Status MosquittoMqtt::Subscribe(const char* filter) {
  if (!connected_) return StatusCode::kFailedPrecondition;
  suback_ = false;
  if (mosquitto_subscribe(m_, nullptr, filter, 1) != MOSQ_ERR_SUCCESS) return StatusCode::kIoError;
  if (!LoopUntil(suback_, kWaitMs)) return StatusCode::kIoError;
  return granted_ <= 2 ? Status::Ok() : Status(StatusCode::kVerifyFailed);
}

Status MosquittoMqtt::Publish(const char* topic, ConstByteSpan payload) {
  if (!connected_) return StatusCode::kFailedPrecondition;
  puback_ = false;
  publish_mid_ = -1;  // set by mosquitto_publish; packet IDs are 1..65535
  if (mosquitto_publish(m_, &publish_mid_, topic, static_cast<int>(payload.size()), payload.data(),
                        1, false) != MOSQ_ERR_SUCCESS) {
    return StatusCode::kIoError;
  }
  return LoopUntil(puback_, kWaitMs) ? Status::Ok() : Status(StatusCode::kIoError);
}

Result<size_t> MosquittoMqtt::Receive(uint32_t timeout_ms, Span<char> topic, ByteSpan payload) {
  if (inbox_.empty() && connected_) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    do {
      if (mosquitto_loop(m_, 20, 1) != MOSQ_ERR_SUCCESS) {
        connected_ = false;
        break;
      }
    } while (inbox_.empty() && std::chrono::steady_clock::now() < deadline);
  }
  if (inbox_.empty()) return StatusCode::kNotFound;
  auto [t, p] = std::move(inbox_.front());
  inbox_.pop_front();
  if (t.size() + 1 > topic.size() || p.size() > payload.size()) return StatusCode::kTooLarge;
  std::memcpy(topic.data(), t.c_str(), t.size() + 1);
  std::memcpy(payload.data(), p.data(), p.size());
  return p.size();
}

void MosquittoMqtt::Disconnect() {
  if (m_ == nullptr) return;
  mosquitto_disconnect(m_);
  mosquitto_destroy(m_);
  m_ = nullptr;
  connected_ = false;
}

HttplibHttps::HttplibHttps(std::string ca_file) : ca_file_(std::move(ca_file)) {}
HttplibHttps::~HttplibHttps() = default;

Result<size_t> HttplibHttps::GetRange(const char* url, const char* token, uint32_t offset,
                                      ByteSpan out, uint32_t* total_size) {
  if (drop_ > 0 && ok_before_drop_-- <= 0) {
    --drop_;
    clients_.clear();  // as a dropped connection does
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
  const int port = colon == std::string::npos ? 443 : std::stoi(authority.substr(colon + 1));
  std::unique_ptr<httplib::SSLClient>& c = clients_[authority];
  if (!c) {
    c = std::make_unique<httplib::SSLClient>(host, port);
    c->set_ca_cert_path(ca_file_.c_str());
    c->enable_server_certificate_verification(true);
    c->set_keep_alive(true);
    c->set_connection_timeout(5);
    c->set_read_timeout(10);
  }
  const std::string range =
      "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + out.size() - 1);
  httplib::Result r =
      c->Get(path.c_str(), {{"Authorization", std::string("Bearer ") + token}, {"Range", range}});
  if (!r) {
    clients_.erase(authority);
    return StatusCode::kIoError;
  }
  if (r->status == 401 || r->status == 403) return StatusCode::kVerifyFailed;
  if (r->status != 206) return StatusCode::kIoError;
  const std::string cr = r->get_header_value("Content-Range");
  const size_t slash_total = cr.rfind('/');
  if (slash_total == std::string::npos || r->body.size() > out.size()) return StatusCode::kCorrupt;
  *total_size = static_cast<uint32_t>(std::stoul(cr.substr(slash_total + 1)));
  std::memcpy(out.data(), r->body.data(), r->body.size());
  bytes_ += r->body.size();
  return r->body.size();
}

uint64_t SystemClock::NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void SystemClock::UtcHour(char (&out)[11]) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(out, sizeof(out), "%Y%m%d%H", &tm);
}

}  // namespace ota::device_sim
