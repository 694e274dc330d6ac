#include "esp_at_modem_sim.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <stdexcept>

namespace ota::device_sim {

namespace {

constexpr size_t kHttpChunk = 512;  // the modem hands HTTP data over in pieces
constexpr size_t kLineMax = 256;    // ESP-AT: a whole command line is less than 256 bytes

struct Param {
  std::string text;
  bool quoted = false;
};

// AT parameters: comma-separated; strings in quotes with \ escaping , " and \.
std::vector<Param> SplitParams(const std::string& s) {
  std::vector<Param> out(1);
  bool in_quotes = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_quotes && c == '\\' && i + 1 < s.size()) {
      out.back().text.push_back(s[++i]);
    } else if (c == '"') {
      in_quotes = !in_quotes;
      out.back().quoted = true;
    } else if (c == ',' && !in_quotes) {
      out.emplace_back();
    } else {
      out.back().text.push_back(c);
    }
  }
  return out;
}

}  // namespace

Status FdSerial::Write(ConstByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return StatusCode::kIoError;
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<size_t> FdSerial::Read(ByteSpan out, uint32_t timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  const int r = ::poll(&p, 1, static_cast<int>(timeout_ms));
  if (r < 0 && errno != EINTR) return StatusCode::kIoError;
  if (r <= 0) return size_t{0};
  const ssize_t n = ::read(fd_, out.data(), out.size());
  if (n <= 0) return StatusCode::kIoError;  // the other end is gone
  return static_cast<size_t>(n);
}

EspAtModemSim::EspAtModemSim(std::string ca_file, HttplibHttps& https)
    : ca_file_(std::move(ca_file)),
      https_(https),
      board_serial_((::socketpair(AF_UNIX, SOCK_STREAM, 0, fds_) == 0) ? fds_[0] : -1) {
  if (fds_[0] < 0) throw std::runtime_error("esp-at sim: socketpair failed");
  thread_ = std::thread([this] { Loop(); });
}

EspAtModemSim::EspAtModemSim(std::string ca_file, HttplibHttps& https,
                             std::function<void(const std::string&)> output)
    : ca_file_(std::move(ca_file)), https_(https), output_(std::move(output)), board_serial_(-1) {}

EspAtModemSim::~EspAtModemSim() {
  if (!thread_.joinable()) return;  // inline
  stop_ = true;
  thread_.join();
  ::close(fds_[0]);
  ::close(fds_[1]);
}

void EspAtModemSim::Emit(const std::string& bytes) {
  uart_bytes_ += bytes.size();
  if (output_) {
    output_(bytes);
    return;
  }
  FdSerial(fds_[1])
      .Write(ConstByteSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()))
      .IgnoreError();  // the board side closed: the sim ends with it
}

void EspAtModemSim::Reply(const std::string& text) {
  Emit(text + "\r\n");
}

void EspAtModemSim::ExpectRaw(size_t len, bool is_url) {
  raw_is_url_ = is_url;
  raw_expected_ = len;
  Emit("OK\r\n\r\n>");  // the prompt ends without a line end
}

void EspAtModemSim::ReplyRaw(const std::string& prefix, const std::string& data) {
  Reply(prefix + data);
}

void EspAtModemSim::Loop() {
  FdSerial modem(fds_[1]);
  uint8_t buf[4096];
  while (!stop_) {
    const Result<size_t> n = modem.Read(ByteSpan(buf), 5);
    if (!n.ok()) return;
    Feed(std::string(reinterpret_cast<const char*>(buf), n.value()));
    PollBroker();
  }
}

void EspAtModemSim::Feed(const std::string& bytes) {
  uart_bytes_ += bytes.size();
  in_ += bytes;
  for (;;) {
    if (raw_expected_ > 0) {
      if (in_.size() < raw_expected_) return;
      const std::string data = in_.substr(0, raw_expected_);
      in_.erase(0, raw_expected_);
      raw_expected_ = 0;
      if (raw_is_url_) {
        long_url_ = data;
        Reply("SET OK");
        continue;
      }
      // As ESP-AT does at QoS 1: +MQTTPUB:OK once the broker's PUBACK came (docs/spec/esp-at.md).
      const bool ok =
          mqtt_up_ &&
          mqtt_
              ->Publish(raw_topic_.c_str(),
                        ConstByteSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size()))
              .ok();
      Reply(ok ? "+MQTTPUB:OK" : "+MQTTPUB:FAIL");
      continue;
    }
    const size_t eol = in_.find('\n');
    if (eol == std::string::npos) return;
    if (eol + 1 >= kLineMax) {  // with its CR LF
      in_.erase(0, eol + 1);
      Reply("ERROR");
      continue;
    }
    std::string line = in_.substr(0, eol);
    in_.erase(0, eol + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    ++commands_;
    if (echo_) Reply(line);
    Command(line);
  }
}

void EspAtModemSim::Restart() {
  mqtt_.reset();
  mqtt_up_ = false;
  in_.clear();
  raw_expected_ = 0;
  long_url_.clear();
  echo_ = true;
  scheme_ = 0;
  client_id_.clear();
  username_.clear();
  password_.clear();
}

void EspAtModemSim::PollBroker() {
  if (!in_.empty() || raw_expected_ > 0 || !mqtt_) return;
  if (drop_mqtt_.exchange(false) && mqtt_up_) mqtt_->Disconnect();
  if (mqtt_up_ && !mqtt_->connected()) {
    mqtt_up_ = false;
    Reply("+MQTTDISCONNECTED:0");
    return;
  }
  if (!mqtt_up_) return;
  char topic[256];
  static uint8_t payload[64 * 1024];
  const Result<size_t> m = mqtt_->Receive(0, Span<char>(topic), ByteSpan(payload));
  if (m.ok()) {
    ReplyRaw("+MQTTSUBRECV:0,\"" + std::string(topic) + "\"," + std::to_string(m.value()) + ",",
             std::string(reinterpret_cast<const char*>(payload), m.value()));
  }
}

void EspAtModemSim::Command(const std::string& line) {
  const size_t eq = line.find('=');
  const std::string name = line.substr(0, eq);
  const std::vector<Param> p =
      eq == std::string::npos ? std::vector<Param>() : SplitParams(line.substr(eq + 1));
  if (line == "AT" || name == "AT+CWMODE" || name == "AT+CIPSNTPCFG") {
    Reply("OK");
  } else if (line == "ATE0" || line == "ATE1") {
    echo_ = line == "ATE1";
    Reply("OK");
  } else if (name == "AT+CWJAP" && p.size() >= 2) {
    Reply("WIFI CONNECTED\r\nWIFI GOT IP\r\n\r\nOK");
  } else if (line == "AT+CIPSNTPTIME?") {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof(text), "%a %b %d %H:%M:%S %Y", &tm);
    Reply(std::string("+CIPSNTPTIME:") + text + "\r\nOK");
  } else if (name == "AT+MQTTCLEAN" && p.size() == 1) {
    if (!mqtt_) {
      Reply("ERROR");
      return;
    }
    mqtt_.reset();
    mqtt_up_ = false;
    Reply("OK");
  } else if (name == "AT+MQTTUSERCFG" && p.size() == 8) {
    scheme_ = std::atoi(p[1].text.c_str());
    if (scheme_ != 1 && scheme_ != 3) {
      Reply("ERROR");
      return;
    }
    client_id_ = p[2].text;
    username_ = p[3].text;
    password_ = p[4].text;
    Reply("OK");
  } else if (name == "AT+MQTTCONN" && p.size() == 4 && scheme_ != 0) {
    mqtt_ = std::make_unique<MosquittoMqtt>(p[1].text, std::atoi(p[2].text.c_str()),
                                            scheme_ == 3 ? ca_file_ : std::string());
    mqtt_up_ = mqtt_->Connect(client_id_.c_str(), username_.c_str(), password_.c_str()).ok();
    if (!mqtt_up_) {
      Reply("ERROR");
      return;
    }
    Reply("+MQTTCONNECTED:0," + std::to_string(scheme_) + ",\"" + p[1].text + "\",\"" + p[2].text +
          "\",\"\",0\r\nOK");
  } else if (name == "AT+MQTTSUB" && p.size() == 3) {
    const bool ok = mqtt_up_ && mqtt_->Subscribe(p[1].text.c_str()).ok();
    Reply(ok ? "OK" : "ERROR");
  } else if (name == "AT+MQTTPUBRAW" && p.size() == 5) {
    const long len = std::atol(p[2].text.c_str());
    if (!mqtt_up_ || len <= 0 || len > 64 * 1024) {
      Reply("ERROR");
      return;
    }
    raw_topic_ = p[1].text;
    ExpectRaw(static_cast<size_t>(len), false);
  } else if (name == "AT+HTTPURLCFG" && p.size() == 1) {
    const long len = std::atol(p[0].text.c_str());
    if (len <= 0 || len > 8192) {
      Reply("ERROR");
      return;
    }
    ExpectRaw(static_cast<size_t>(len), true);
  } else if (name == "AT+HTTPCLIENT" && p.size() >= 6 && p[0].text == "2") {
    std::string token;
    uint32_t first = 0, last = 0;
    bool range = false;
    for (size_t i = 6; i < p.size(); ++i) {
      const std::string& h = p[i].text;
      if (h.rfind("Authorization: Bearer ", 0) == 0) token = h.substr(22);
      if (h.rfind("Range: bytes=", 0) == 0 &&
          std::sscanf(h.c_str() + 13, "%u-%u", &first, &last) == 2 && last >= first) {
        range = true;
      }
    }
    if (!range) {
      Reply("ERROR");  // the board port always asks for a range
      return;
    }
    std::vector<uint8_t> body(last - first + 1);
    uint32_t total = 0;
    // An empty URL: the one AT+HTTPURLCFG set.
    const std::string& url = p[2].text.empty() ? long_url_ : p[2].text;
    const Result<size_t> n = https_.GetRange(url.c_str(), token.c_str(), first,
                                             ByteSpan(body.data(), body.size()), &total);
    if (!n.ok()) {
      Reply("ERROR");  // as ESP-AT does for a failed request or an HTTP error status
      return;
    }
    for (size_t off = 0; off < n.value(); off += kHttpChunk) {
      const size_t len = std::min(kHttpChunk, n.value() - off);
      ReplyRaw("+HTTPCLIENT:" + std::to_string(len) + ",",
               std::string(reinterpret_cast<const char*>(body.data() + off), len));
    }
    Reply("\r\nOK");
  } else {
    Reply("ERROR");
  }
}

}  // namespace ota::device_sim
