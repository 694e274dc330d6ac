#include "ota/port/esp_at_modem.hpp"

#include <cstdio>
#include <cstring>

namespace ota::port {

namespace {

constexpr uint32_t kProbeTimeoutMs = 1000;
constexpr int kProbeTries = 5;  // the modem may still be booting ("ready" comes after ~1 s)
constexpr char kSubRecv[] = "+MQTTSUBRECV:";
constexpr char kHttpData[] = "+HTTPCLIENT:";

bool StartsWith(const char* s, const char* prefix) {
  return std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

// Reads decimal digits at *p (at least one), advancing *p.
bool ParseNumber(const char** p, size_t* value) {
  const char* s = *p;
  size_t v = 0;
  if (*s < '0' || *s > '9') return false;
  for (; *s >= '0' && *s <= '9'; ++s) {
    if (v > 100000000) return false;  // no length here is anywhere near
    v = v * 10 + static_cast<size_t>(*s - '0');
  }
  *p = s;
  *value = v;
  return true;
}

// A wipe the compiler keeps even when the buffer is not read again.
void SecureZero(void* p, size_t n) {
  volatile uint8_t* b = static_cast<volatile uint8_t*>(p);
  for (size_t i = 0; i < n; ++i)
    b[i] = 0;
}

int MonthNumber(const char* m) {
  static const char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  for (int i = 0; i < 12; ++i) {
    if (std::strncmp(m, kMonths + 3 * i, 3) == 0) return i + 1;
  }
  return 0;
}

}  // namespace

bool ParseSntpTime(const char* text, char (&out)[11]) {
  // "Www Mmm dd hh:mm:ss yyyy", fixed columns; the day may be space-padded ("Aug  4").
  if (std::strlen(text) != 24 || text[3] != ' ' || text[7] != ' ' || text[13] != ':' ||
      text[16] != ':' || text[19] != ' ') {
    return false;
  }
  const int month = MonthNumber(text + 4);
  const char day_tens = text[8] == ' ' ? '0' : text[8];
  const char digits[] = {day_tens, text[9],  text[11], text[12],
                         text[20], text[21], text[22], text[23]};
  for (const char d : digits) {
    if (d < '0' || d > '9') return false;
  }
  const int day = (day_tens - '0') * 10 + (text[9] - '0');
  const int hour = (text[11] - '0') * 10 + (text[12] - '0');
  if (month == 0 || day < 1 || day > 31 || hour > 23) return false;
  const char hour_text[] = {text[20],
                            text[21],
                            text[22],
                            text[23],
                            static_cast<char>('0' + month / 10),
                            static_cast<char>('0' + month % 10),
                            day_tens,
                            text[9],
                            text[11],
                            text[12],
                            '\0'};
  std::memcpy(out, hour_text, sizeof(out));
  return true;
}

EspAtModem::EspAtModem(SerialPort& serial, const EspAtConfig& config, MillisFn millis)
    : serial_(serial), config_(config), millis_(millis) {}

void EspAtModem::WipeCommand() {
  SecureZero(cmd_, sizeof(cmd_));
  cmd_len_ = 0;
}

void EspAtModem::Start(const char* text) {
  WipeCommand();
  cmd_overflow_ = false;
  Append(text);
}

bool EspAtModem::Append(const char* text) {
  const size_t n = std::strlen(text);
  if (cmd_overflow_ || cmd_len_ + n + 1 > sizeof(cmd_)) {
    cmd_overflow_ = true;
    return false;
  }
  std::memcpy(cmd_ + cmd_len_, text, n + 1);
  cmd_len_ += n;
  return true;
}

bool EspAtModem::AppendQuoted(const char* text) {
  if (!Append("\"")) return false;
  for (const char* p = text; *p != '\0'; ++p) {
    // ESP-AT string parameters: a backslash escapes , " and itself.
    const char c[3] = {'\\', *p, '\0'};
    const bool escape = *p == ',' || *p == '"' || *p == '\\';
    if (!Append(escape ? c : c + 1)) return false;
  }
  return Append("\"");
}

bool EspAtModem::AppendNumber(uint32_t value) {
  char digits[11];
  std::snprintf(digits, sizeof(digits), "%lu", static_cast<unsigned long>(value));
  return Append(digits);
}

Status EspAtModem::Send(ConstByteSpan data) {
  return serial_.Write(data);
}

Result<uint8_t> EspAtModem::NextByte(uint64_t deadline) {
  while (rx_pos_ >= rx_len_) {
    const uint64_t now = millis_();
    const uint32_t wait = now >= deadline ? 0 : static_cast<uint32_t>(deadline - now);
    const Result<size_t> n = serial_.Read(ByteSpan(rx_), wait);
    if (!n.ok()) {
      // Lost bytes: whatever line was being read is not trustworthy.
      line_len_ = 0;
      line_overflow_ = true;
      resync_ = true;
      return n.status();
    }
    rx_pos_ = 0;
    rx_len_ = n.value();
    bytes_seen_ += rx_len_;
    if (rx_len_ == 0 && millis_() >= deadline) return StatusCode::kTimedOut;
  }
  return rx_[rx_pos_++];
}

Status EspAtModem::ReadRaw(uint64_t deadline, uint8_t* dst, size_t keep, size_t len) {
  size_t done = 0;
  while (done < len) {
    if (rx_pos_ >= rx_len_) {
      const Result<uint8_t> b = NextByte(deadline);
      if (!b.ok()) return b.status();
      --rx_pos_;  // put it back: the copy below takes it with the rest
    }
    size_t n = rx_len_ - rx_pos_;
    if (n > len - done) n = len - done;
    if (done < keep) {
      const size_t k = keep - done < n ? keep - done : n;
      std::memcpy(dst + done, rx_ + rx_pos_, k);
    }
    rx_pos_ += n;
    done += n;
  }
  return Status::Ok();
}

Result<bool> EspAtModem::MaybeRawData(uint64_t deadline) {
  // Data follows once the header is complete; the bytes may hold anything, CR LF included.
  const uint64_t data_deadline = millis_() + config_.command_timeout_ms;
  const uint64_t until = data_deadline > deadline ? data_deadline : deadline;
  const char* p = line_;
  size_t len = 0;
  if (StartsWith(line_, kSubRecv)) {
    // +MQTTSUBRECV:<LinkID>,"<topic>",<data_length>,<data>
    p += sizeof(kSubRecv) - 1;
    size_t link = 0;
    if (!ParseNumber(&p, &link) || *p++ != ',' || *p++ != '"') return false;
    const char* topic = p;
    const char* end = std::strchr(topic, '"');
    if (end == nullptr) return false;
    p = end + 1;
    if (*p++ != ',' || !ParseNumber(&p, &len) || *p++ != ',' || *p != '\0') return false;
    const size_t topic_len = static_cast<size_t>(end - topic);
    const bool keep = !inbox_full_ && len <= sizeof(inbox_) && topic_len < sizeof(inbox_topic_);
    if (keep) {
      std::memcpy(inbox_topic_, topic, topic_len);
      inbox_topic_[topic_len] = '\0';
    }
    line_len_ = 0;
    if (const Status read = ReadRaw(until, inbox_, keep ? len : 0, len); !read.ok()) {
      resync_ = true;  // the rest of the data would be read as lines
      return read;
    }
    if (keep) {
      inbox_len_ = len;
      inbox_full_ = true;
    } else {
      ++dropped_;
    }
    return true;
  }
  if (StartsWith(line_, kHttpData)) {
    // +HTTPCLIENT:<size>,<data>
    p += sizeof(kHttpData) - 1;
    if (!ParseNumber(&p, &len) || *p++ != ',' || *p != '\0') return false;
    line_len_ = 0;
    size_t keep = 0;
    if (http_dst_ != nullptr) {
      const size_t room = http_cap_ - http_len_;
      keep = len < room ? len : room;
      if (keep < len) http_overflow_ = true;
    }
    if (const Status read =
            ReadRaw(until, http_dst_ != nullptr ? http_dst_ + http_len_ : nullptr, keep, len);
        !read.ok()) {
      resync_ = true;
      return read;
    }
    http_len_ += keep;
    return true;
  }
  return false;
}

bool EspAtModem::HandleUrc() {
  if (StartsWith(line_, "+MQTTDISCONNECTED:")) {
    connected_ = false;
    return true;
  }
  if (StartsWith(line_, "+MQTTCONNECTED:")) {
    connected_ = true;
    return true;
  }
  if (std::strcmp(line_, "ready") == 0) {
    // The modem restarted (brown-out, crash, reset pin): echo is back on, SNTP and the MQTT
    // session are gone. Connect runs Begin again.
    needs_begin_ = true;
    connected_ = false;
    return true;
  }
  return false;
}

Result<EspAtModem::Outcome> EspAtModem::Pump(uint64_t deadline, Wait wait, const char* prefix) {
  for (;;) {
    if (wait == Wait::kMessage && inbox_full_) return Outcome::kLine;
    const Result<uint8_t> b = NextByte(deadline);
    if (!b.ok()) return b.status();
    const char c = static_cast<char>(b.value());
    if (c != '\n') {
      if (line_len_ + 1 >= sizeof(line_)) {
        line_overflow_ = true;  // skipped up to its end
        continue;
      }
      line_[line_len_++] = c;
      line_[line_len_] = '\0';
      if (wait == Wait::kPrompt && line_len_ == 1 && c == '>') {
        line_len_ = 0;
        return Outcome::kPrompt;
      }
      if (c == ',' && line_[0] == '+' && !line_overflow_) {
        OTA_TRY_ASSIGN(const bool raw, MaybeRawData(deadline));
        (void)raw;  // consumed or not, reading goes on
      }
      continue;
    }
    // A complete line.
    if (line_len_ > 0 && line_[line_len_ - 1] == '\r') line_[--line_len_] = '\0';
    const bool skip = line_overflow_ || line_len_ == 0;
    line_overflow_ = false;
    line_len_ = 0;
    if (skip || HandleUrc()) continue;
    if (std::strcmp(line_, "OK") == 0) {
      if (wait == Wait::kOk) return Outcome::kOk;
      continue;  // e.g. before the > prompt
    }
    const bool error = std::strcmp(line_, "ERROR") == 0 || std::strcmp(line_, "FAIL") == 0 ||
                       std::strcmp(line_, "SEND FAIL") == 0 ||
                       std::strcmp(line_, "+MQTTPUB:FAIL") == 0;
    if (error && wait != Wait::kMessage && wait != Wait::kDrain) return Outcome::kError;
    if (prefix != nullptr && StartsWith(line_, prefix)) {
      std::memcpy(line_out_, line_, sizeof(line_out_));
      if (wait == Wait::kLinePrefix) return Outcome::kLine;
    }
    // Anything else (echo, "busy p...", "WIFI CONNECTED", "ALREADY SUBSCRIBE") is not an answer.
  }
}

void EspAtModem::Resync() {
  if (!resync_) return;
  resync_ = false;
  // Until the modem has been quiet for kAtResyncMs (a late payload can take a few hundred ms
  // at 115200 baud), at most kAtResyncMaxMs. Pump ends with the deadline (kTimedOut) or lost
  // bytes: neither needs more handling here; URCs on the way are handled as always.
  const uint64_t start = millis_();
  for (;;) {
    const uint64_t seen = bytes_seen_;
    Pump(millis_() + kAtResyncMs, Wait::kDrain, nullptr).status().IgnoreError();
    if (bytes_seen_ == seen || millis_() - start >= kAtResyncMaxMs) break;
  }
  line_len_ = 0;
  line_overflow_ = false;
}

Status EspAtModem::Run(uint32_t timeout_ms, const char* capture) {
  if (cmd_overflow_ || !Append("\r\n")) {
    WipeCommand();
    return StatusCode::kTooLarge;
  }
  Resync();
  line_out_[0] = '\0';
  const Status sent = Send(ConstByteSpan(reinterpret_cast<const uint8_t*>(cmd_), cmd_len_));
  // The command may carry a password: it does not stay in RAM longer than needed.
  WipeCommand();
  OTA_TRY(sent);
  const Result<Outcome> o = Pump(millis_() + timeout_ms, Wait::kOk, capture);
  if (!o.ok()) {
    resync_ = true;  // its answer may still come
    return o.status();
  }
  if (o.value() != Outcome::kOk) return StatusCode::kIoError;
  if (capture != nullptr && line_out_[0] == '\0') return StatusCode::kNotFound;
  return Status::Ok();
}

Status EspAtModem::Begin() {
  Status s = StatusCode::kTimedOut;
  for (int i = 0; i < kProbeTries && !s.ok(); ++i) {
    Start("AT");
    s = Run(kProbeTimeoutMs);
  }
  OTA_TRY(s);
  Start("ATE0");  // no echo: responses only
  OTA_TRY(Run(config_.command_timeout_ms));
  if (config_.wifi_ssid[0] != '\0') {
    Start("AT+CWMODE=1");  // station
    OTA_TRY(Run(config_.command_timeout_ms));
    Start("AT+CWJAP=");
    AppendQuoted(config_.wifi_ssid);
    Append(",");
    AppendQuoted(config_.wifi_password);
    OTA_TRY(Run(config_.connect_timeout_ms));
  }
  Start("AT+CIPSNTPCFG=1,0,");  // enabled, UTC
  AppendQuoted(config_.sntp_server);
  OTA_TRY(Run(config_.command_timeout_ms));
  needs_begin_ = false;
  return Status::Ok();
}

Status EspAtModem::Connect(const char* client_id, const char* username, const char* password) {
  connected_ = false;
  if (needs_begin_) OTA_TRY(Begin());
  // A clean start: the modem may still hold the last session (ERROR if it holds none).
  Start("AT+MQTTCLEAN=0");
  const Status cleaned = Run(config_.command_timeout_ms);
  if (cleaned.code() != StatusCode::kIoError) OTA_TRY(cleaned);
  Start("AT+MQTTUSERCFG=0,");
  AppendNumber(static_cast<uint32_t>(config_.mqtt_scheme));
  Append(",");
  AppendQuoted(client_id);
  Append(",");
  AppendQuoted(username);
  Append(",");
  AppendQuoted(password);
  Append(",0,0,\"\"");
  OTA_TRY(Run(config_.command_timeout_ms));
  Start("AT+MQTTCONN=0,");
  AppendQuoted(config_.broker_host);
  Append(",");
  AppendNumber(config_.broker_port);
  Append(",0");  // no automatic reconnect: the agent reconnects, with back-off
  OTA_TRY(Run(config_.connect_timeout_ms));
  connected_ = true;
  return Status::Ok();
}

Status EspAtModem::Subscribe(const char* filter) {
  if (std::strlen(filter) > config_.topic_max) return StatusCode::kTooLarge;
  Start("AT+MQTTSUB=0,");
  AppendQuoted(filter);
  Append(",1");
  const Status s = Run(config_.command_timeout_ms);
  if (!s.ok()) connected_ = false;  // the agent starts again with a fresh session
  return s;
}

Status EspAtModem::SendWithPrompt(ConstByteSpan data, const char* done) {
  if (cmd_overflow_ || !Append("\r\n")) {
    WipeCommand();
    return StatusCode::kTooLarge;
  }
  Resync();
  Status s = Send(ConstByteSpan(reinterpret_cast<const uint8_t*>(cmd_), cmd_len_));
  WipeCommand();
  const uint64_t deadline = millis_() + config_.command_timeout_ms;
  Result<Outcome> o = StatusCode::kIoError;
  if (s.ok()) o = Pump(deadline, Wait::kPrompt, nullptr);
  if (s.ok() && o.ok() && o.value() == Outcome::kPrompt) {
    s = Send(data);
    // The answer line starts like `done` ("+MQTTPUB:" OK or FAIL; "SET OK").
    const size_t stem = std::strchr(done, ':') != nullptr
                            ? static_cast<size_t>(std::strchr(done, ':') - done) + 1
                            : std::strlen(done);
    char prefix[16] = {};
    std::memcpy(prefix, done, stem < sizeof(prefix) ? stem : sizeof(prefix) - 1);
    if (s.ok()) o = Pump(deadline, Wait::kLinePrefix, prefix);
  }
  if (s.ok()) {
    s = !o.ok() ? o.status()
                : (o.value() == Outcome::kLine && std::strcmp(line_out_, done) == 0
                       ? Status::Ok()
                       : Status(StatusCode::kIoError));
  }
  if (!s.ok()) resync_ = true;  // e.g. the prompt never came, and the modem still waits
  return s;
}

Status EspAtModem::Publish(const char* topic, ConstByteSpan payload) {
  if (std::strlen(topic) > config_.topic_max) return StatusCode::kTooLarge;
  Start("AT+MQTTPUBRAW=0,");
  AppendQuoted(topic);
  Append(",");
  AppendNumber(static_cast<uint32_t>(payload.size()));
  Append(",1,0");  // QoS 1, not retained
  // ESP-AT answers +MQTTPUB:OK once the broker's PUBACK for this message came, which is what
  // MqttClient::Publish promises (docs/spec/esp-at.md); a timeout is an error, never Ok.
  const Status s = SendWithPrompt(payload, "+MQTTPUB:OK");
  if (!s.ok()) connected_ = false;
  return s;
}

Result<size_t> EspAtModem::Receive(uint32_t timeout_ms, Span<char> topic, ByteSpan payload) {
  if (!inbox_full_) {
    const Result<Outcome> o = Pump(millis_() + timeout_ms, Wait::kMessage, nullptr);
    if (!o.ok() && o.status().code() != StatusCode::kTimedOut) return o.status();
    if (!inbox_full_) return StatusCode::kNotFound;
  }
  inbox_full_ = false;
  const size_t topic_len = std::strlen(inbox_topic_);
  if (topic_len + 1 > topic.size() || inbox_len_ > payload.size()) {
    ++dropped_;
    return StatusCode::kTooLarge;
  }
  std::memcpy(topic.data(), inbox_topic_, topic_len + 1);
  std::memcpy(payload.data(), inbox_, inbox_len_);
  return inbox_len_;
}

void EspAtModem::Disconnect() {
  connected_ = false;
  Start("AT+MQTTCLEAN=0");
  // Best effort: a modem that does not answer is reset by the next Connect anyway.
  Run(config_.command_timeout_ms).IgnoreError();
}

Status EspAtModem::SetLongUrl(const char* url) {
  Start("AT+HTTPURLCFG=");
  AppendNumber(static_cast<uint32_t>(std::strlen(url)));
  return SendWithPrompt(ConstByteSpan(reinterpret_cast<const uint8_t*>(url), std::strlen(url)),
                        "SET OK");
}

Result<size_t> EspAtModem::GetRange(const char* url, const char* token, uint32_t offset,
                                    ByteSpan out, uint32_t* total_size) {
  if (out.empty()) return StatusCode::kInvalidArgument;
  if (std::strlen(url) > kAtUrlMax) return StatusCode::kTooLarge;
  *total_size = 0;
  const bool https = StartsWith(url, "https://");
  char range[48];
  std::snprintf(range, sizeof(range), "Range: bytes=%lu-%lu", static_cast<unsigned long>(offset),
                static_cast<unsigned long>(offset + out.size() - 1));
  // The whole line must stay under 256 bytes: with a long URL, AT+HTTPURLCFG hands it over
  // first and the line carries "" in its place.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool url_on_line = attempt == 0;
    // GET, form content type (unused for GET), the URL, no host/path, then the transport.
    Start("AT+HTTPCLIENT=2,0,");
    AppendQuoted(url_on_line ? url : "");
    Append(https ? ",,,2," : ",,,1,");
    Append("\"Authorization: Bearer ");
    for (const char* p = token; *p != '\0'; ++p) {
      const char c[3] = {'\\', *p, '\0'};
      Append(*p == ',' || *p == '"' || *p == '\\' ? c : c + 1);
    }
    Append("\",");
    AppendQuoted(range);
    if (!cmd_overflow_ && cmd_len_ + 2 <= kAtCommandMax - 1) break;
    if (!url_on_line) {
      WipeCommand();
      return StatusCode::kTooLarge;  // the token alone is too long for the line
    }
    const Status set = SetLongUrl(url);
    if (!set.ok()) return set;
  }
  http_dst_ = out.data();
  http_cap_ = out.size();
  http_len_ = 0;
  http_overflow_ = false;
  const Status s = Run(config_.http_timeout_ms);
  http_dst_ = nullptr;
  OTA_TRY(s);
  if (http_overflow_) return StatusCode::kCorrupt;  // not the range asked for
  return http_len_;
}

Status EspAtModem::QueryUtcHour(char (&out)[11]) {
  Start("AT+CIPSNTPTIME?");
  OTA_TRY(Run(config_.command_timeout_ms, "+CIPSNTPTIME:"));
  if (!ParseSntpTime(line_out_ + std::strlen("+CIPSNTPTIME:"), out)) return StatusCode::kCorrupt;
  // Before the first synchronisation the modem counts from 1970.
  if (std::strncmp(out, "2000", 4) < 0) return StatusCode::kFailedPrecondition;
  return Status::Ok();
}

void EspAtModem::UtcHour(char (&out)[11]) {
  if (!QueryUtcHour(out).ok()) std::memcpy(out, "1970010100", sizeof(out));
}

}  // namespace ota::port
