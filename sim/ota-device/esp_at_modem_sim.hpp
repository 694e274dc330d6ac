// A simulated ESP-AT Wi-Fi modem on the board's modem UART (docs/spec/esp-at.md): it answers
// the AT commands the board's network port sends and does the networking for real, with the
// host transports (libmosquitto for MQTT over TLS, cpp-httplib for HTTPS). Two ways to attach
// the board: a socket pair whose board side is a port::SerialPort, exactly what fire::Uart is
// on the board (the host build of the app; the modem runs on its own thread), or inline, fed
// by the caller with what the board transmits and answering synchronously through a callback
// (the emulated board's USART3, emulated_board.hpp).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "host_transport.hpp"
#include "ota/port/serial_port.hpp"

namespace ota::device_sim {

// One end of a socket pair as a serial line.
class FdSerial final : public port::SerialPort {
 public:
  explicit FdSerial(int fd) : fd_(fd) {}
  Status Write(ConstByteSpan data) override;
  Result<size_t> Read(ByteSpan out, uint32_t timeout_ms) override;

 private:
  int fd_;
};

class EspAtModemSim {
 public:
  // `https` does the modem's HTTP requests (shared with the board runner for its counters).
  EspAtModemSim(std::string ca_file, HttplibHttps& https);
  // Inline: no thread, no socket pair. `output` receives every byte the modem sends, in order,
  // from inside Feed and PollBroker.
  EspAtModemSim(std::string ca_file, HttplibHttps& https,
                std::function<void(const std::string&)> output);
  ~EspAtModemSim();

  // Inline: bytes the board transmitted; complete commands are answered before this returns
  // (an MQTT connect or an HTTP request is done for real meanwhile).
  void Feed(const std::string& bytes);
  // Inline: URCs from the broker (a lost connection, a received message), once no command is
  // half-received. Waits up to about 20 ms for the broker's socket when there is a session.
  void PollBroker();
  // Whether an MQTT session is up (PollBroker then waits on the broker's socket).
  bool has_session() const { return mqtt_up_; }
  // Inline: the module was reset or powered off: its state is gone (the broker session too,
  // echo back on, half-received input dropped). It says `ready` when it has booted again:
  // the caller sends that (Ready) once the boot time has passed.
  void Restart();
  void Ready() { Emit("ready\r\n"); }

  port::SerialPort& board_side() { return board_serial_; }
  // Test hook: the modem loses the broker (as when the Wi-Fi drops): +MQTTDISCONNECTED.
  void DropMqtt() { drop_mqtt_ = true; }
  uint64_t commands() const { return commands_; }
  // Bytes that crossed the UART both ways, and what they take at the board's 115200 baud
  // (8N1: 10 bits a byte), since the last reset.
  uint64_t uart_bytes() const { return uart_bytes_; }
  double uart_seconds() const { return static_cast<double>(uart_bytes_) * 10.0 / kBaud; }
  void reset_uart_bytes() { uart_bytes_ = 0; }
  static constexpr double kBaud = 115200;

 private:
  void Loop();
  void Emit(const std::string& bytes);
  void Command(const std::string& line);
  void Reply(const std::string& text);
  void ReplyRaw(const std::string& prefix, const std::string& data);
  // Answers with the > prompt; the next `len` bytes are AT+MQTTPUBRAW data or a URL.
  void ExpectRaw(size_t len, bool is_url);

  std::string ca_file_;
  HttplibHttps& https_;
  std::function<void(const std::string&)> output_;  // inline only
  int fds_[2] = {-1, -1};
  FdSerial board_serial_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> drop_mqtt_{false};
  std::atomic<uint64_t> commands_{0};
  std::atomic<uint64_t> uart_bytes_{0};

  // Modem state (the sim thread only).
  std::string in_;
  size_t raw_expected_ = 0;  // bytes of AT+MQTTPUBRAW or AT+HTTPURLCFG data still to come
  bool raw_is_url_ = false;
  std::string raw_topic_;
  std::string long_url_;  // set by AT+HTTPURLCFG
  bool echo_ = true;
  int scheme_ = 0;
  std::string client_id_, username_, password_;
  std::unique_ptr<MosquittoMqtt> mqtt_;
  bool mqtt_up_ = false;
};

}  // namespace ota::device_sim
