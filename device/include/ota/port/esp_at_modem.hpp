// The network port for boards with an ESP-AT Wi-Fi modem (ESP8266/ESP32 running Espressif's
// AT firmware) on a UART: MQTT over TLS, HTTPS range GETs and the UTC hour, all done by the
// modem; this side only speaks the AT commands of docs/spec/esp-at.md. The same code runs on
// the board (fire::Uart) and on the host against sim/esp-at (a socket pair).
// No heap: every buffer is a member, sized below.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/agent/transport.hpp"
#include "ota/port/serial_port.hpp"

namespace ota::port {

inline constexpr size_t kAtLineMax = 256;         // one response line; longer lines are skipped
inline constexpr size_t kAtCommandMax = 256;      // ESP-AT's limit for a whole command line
inline constexpr size_t kAtUrlMax = 256;          // a longer URL is refused (AT+HTTPURLCFG below)
inline constexpr size_t kAtTopicMax = 160;        // an incoming topic
inline constexpr size_t kAtInboxMax = 2048;       // an incoming MQTT payload
inline constexpr size_t kAtRxChunk = 128;         // bytes taken from the UART at a time
inline constexpr uint32_t kAtResyncMs = 50;       // quiet that ends a resync after an error
inline constexpr uint32_t kAtResyncMaxMs = 2000;  // a resync never takes longer

struct EspAtConfig {
  const char* broker_host = "";
  uint16_t broker_port = 8883;
  // AT+MQTTUSERCFG scheme: 3 = MQTT over TLS, the broker's certificate checked against the CA
  // stored in the modem (the default and the only one a product should use); 1 = plain TCP.
  int mqtt_scheme = 3;
  const char* wifi_ssid = "";  // empty: the modem joins the network it has saved
  const char* wifi_password = "";
  const char* sntp_server = "pool.ntp.org";
  uint32_t command_timeout_ms = 15000;  // ESP-AT answers MQTT commands within 10 s
  uint32_t connect_timeout_ms = 30000;  // AT+MQTTCONN and AT+CWJAP take longer
  uint32_t http_timeout_ms = 30000;
  size_t topic_max = 128;  // the firmware's MQTT topic limit (128 bytes in ESP-AT 3.x)
};

// Milliseconds from a monotonic clock (SysTick on the board).
using MillisFn = uint64_t (*)();

class EspAtModem final : public agent::MqttClient, public agent::HttpsClient, public agent::Clock {
 public:
  EspAtModem(SerialPort& serial, const EspAtConfig& config, MillisFn millis);

  // Once at start-up: waits for the modem to answer, echo off, joins Wi-Fi if configured,
  // starts SNTP (UTC). Run again by Connect when the modem restarted (its `ready`).
  Status Begin();

  // agent::MqttClient
  Status Connect(const char* client_id, const char* username, const char* password) override;
  bool connected() const override { return connected_; }
  Status Subscribe(const char* filter) override;
  Status Publish(const char* topic, ConstByteSpan payload) override;
  Result<size_t> Receive(uint32_t timeout_ms, Span<char> topic, ByteSpan payload) override;
  void Disconnect() override;

  // agent::HttpsClient. AT+HTTPCLIENT reports neither the status line nor Content-Range:
  // *total_size is 0 (unknown); more bytes than asked for (a server that ignored Range) is
  // kCorrupt, and the modem answers ERROR for an HTTP error status.
  Result<size_t> GetRange(const char* url, const char* token, uint32_t offset, ByteSpan out,
                          uint32_t* total_size) override;

  // agent::Clock: NowMs from `millis`; UtcHour from the modem's SNTP time
  // ("1970010100" until the modem has synchronised: the broker then refuses the password and
  // the agent retries with back-off).
  uint64_t NowMs() override { return millis_(); }
  void UtcHour(char (&out)[11]) override;
  // The same, with the reason when there is no time yet.
  Status QueryUtcHour(char (&out)[11]);

  // Messages the modem delivered that did not fit (kAtInboxMax, a full inbox, or the
  // caller's buffer).
  uint32_t dropped_messages() const { return dropped_; }
  // The modem said `ready` (it restarted: echo on, SNTP and the MQTT session gone).
  bool restarted() const { return needs_begin_; }

 private:
  // kDrain: nothing ends the wait but the deadline (URCs are still handled).
  enum class Wait : uint8_t { kOk, kPrompt, kLinePrefix, kMessage, kDrain };
  // What ended a wait.
  enum class Outcome : uint8_t { kOk, kError, kPrompt, kLine };

  // Command builder: appends to cmd_, false when it does not fit.
  void Start(const char* text);
  // Clears cmd_ in a way the compiler cannot drop: it may hold a password or a token.
  void WipeCommand();
  // AT+HTTPURLCFG: hands the modem a URL too long for the AT+HTTPCLIENT line.
  Status SetLongUrl(const char* url);
  bool Append(const char* text);
  bool AppendQuoted(const char* text);  // "..." with ESP-AT's escapes for , " and backslash
  bool AppendNumber(uint32_t value);

  // Sends cmd_ and waits for OK (or ERROR/FAIL) handling URCs meanwhile. If `capture` is
  // set, a line starting with it is copied into line_out_.
  Status Run(uint32_t timeout_ms, const char* capture = nullptr);
  Status Send(ConstByteSpan data);
  // Sends cmd_, waits for the > prompt, sends `data`, and waits for the line `done` (a line
  // with the same stem, e.g. "+MQTTPUB:FAIL", is an error).
  Status SendWithPrompt(ConstByteSpan data, const char* done);
  // Before a command, after a timeout or lost bytes: whatever the modem still sends about the
  // last command (a late OK, the rest of a payload) is read and dropped, so the next command
  // cannot take it for its own answer.
  void Resync();
  // Reads until `wait` is satisfied or the deadline; URCs are handled on the way.
  Result<Outcome> Pump(uint64_t deadline, Wait wait, const char* prefix);
  // One byte from the UART buffer, refilled with a wait up to the deadline.
  Result<uint8_t> NextByte(uint64_t deadline);
  Status ReadRaw(uint64_t deadline, uint8_t* dst, size_t keep, size_t len);
  // A complete line in line_ (NUL-terminated): URCs are consumed here (true).
  bool HandleUrc();
  // Called when line_ holds "+MQTTSUBRECV:..." up to the comma before the data, or
  // "+HTTPCLIENT:<n>,": reads the raw data that follows.
  Result<bool> MaybeRawData(uint64_t deadline);

  SerialPort& serial_;
  EspAtConfig config_;
  MillisFn millis_;
  bool connected_ = false;
  bool resync_ = false;
  bool needs_begin_ = false;
  uint64_t bytes_seen_ = 0;  // from the UART: a resync ends when it stops growing
  uint32_t dropped_ = 0;

  char cmd_[kAtCommandMax] = {};
  size_t cmd_len_ = 0;
  bool cmd_overflow_ = false;

  uint8_t rx_[kAtRxChunk] = {};
  size_t rx_len_ = 0;
  size_t rx_pos_ = 0;
  char line_[kAtLineMax] = {};
  size_t line_len_ = 0;
  bool line_overflow_ = false;
  char line_out_[kAtLineMax] = {};

  // One incoming MQTT message, kept until Receive hands it over.
  bool inbox_full_ = false;
  char inbox_topic_[kAtTopicMax] = {};
  uint8_t inbox_[kAtInboxMax] = {};
  size_t inbox_len_ = 0;

  // The destination of +HTTPCLIENT data during GetRange.
  uint8_t* http_dst_ = nullptr;
  size_t http_cap_ = 0;
  size_t http_len_ = 0;
  bool http_overflow_ = false;
};

// "Thu Aug 04 14:48:05 2016" (AT+CIPSNTPTIME) to "2016080414"; false if it is not one.
bool ParseSntpTime(const char* text, char (&out)[11]);

}  // namespace ota::port
