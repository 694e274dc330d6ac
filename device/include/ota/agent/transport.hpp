// What the OTA agent needs from the board's network stack (docs/firmware.md, "Network port"):
// an MQTT client, an HTTPS range GET and a clock. The host port (sim/) implements them with
// libmosquitto and cpp-httplib; a board port with lwIP + mbedTLS or an AT modem.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota::agent {

class MqttClient {
 public:
  // Connects over TLS (checked against the platform's CA) and waits for the CONNACK.
  virtual Status Connect(const char* client_id, const char* username, const char* password) = 0;
  virtual bool connected() const = 0;
  virtual Status Subscribe(const char* filter) = 0;
  // Publishes at QoS 1, not retained, and returns Ok only once the broker has acknowledged
  // the message (its PUBACK for this message's packet ID): the broker then holds it for the
  // platform's persistent session. Anything else (no PUBACK within the port's timeout, the
  // session lost, the broker or modem refusing) is an error, and the message may or may not
  // have arrived: the agent sends what matters again (at least once; the platform takes a
  // report twice without harm). A port behind a modem takes the modem's word that the PUBACK
  // came (ESP-AT: `+MQTTPUB:OK`, docs/spec/esp-at.md); one that cannot know it must not
  // return Ok. The agent relies on this: it confirms a new image only after its report did.
  virtual Status Publish(const char* topic, ConstByteSpan payload) = 0;
  // Waits up to `timeout_ms` for one incoming message. Fills `topic` (NUL-terminated) and
  // `payload`; kNotFound when none came; kTooLarge (message dropped) if either does not fit.
  virtual Result<size_t> Receive(uint32_t timeout_ms, Span<char> topic, ByteSpan payload) = 0;
  virtual void Disconnect() = 0;

 protected:
  ~MqttClient() = default;
};

class HttpsClient {
 public:
  // GET `url` with `Authorization: Bearer {token}` and `Range: bytes=offset-(offset+len-1)`;
  // returns the bytes received (into `out`) and the file's total size from Content-Range, or 0
  // if the port cannot see it (then more bytes than asked for must be an error).
  virtual Result<size_t> GetRange(const char* url, const char* token, uint32_t offset, ByteSpan out,
                                  uint32_t* total_size) = 0;

 protected:
  ~HttpsClient() = default;
};

class Clock {
 public:
  virtual uint64_t NowMs() = 0;
  // The current UTC hour as YYYYMMDDHH (10 characters + NUL), for the IoTDA password.
  virtual void UtcHour(char (&out)[11]) = 0;

 protected:
  ~Clock() = default;
};

}  // namespace ota::agent
