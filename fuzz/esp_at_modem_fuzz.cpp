// Fuzz target: the ESP-AT port reading whatever a (faulty or hostile) modem sends: the bytes
// are the modem's output while the port subscribes, downloads, reads the time and receives.
// The port must stay inside its buffers and never hang (time advances when input runs out).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ota/port/esp_at_modem.hpp"

namespace {

uint64_t g_now = 0;
uint64_t Now() {
  return g_now;
}

class FuzzedModem final : public ota::port::SerialPort {
 public:
  FuzzedModem(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  ota::Status Write(ota::ConstByteSpan) override { return ota::Status::Ok(); }
  ota::Result<size_t> Read(ota::ByteSpan out, uint32_t timeout_ms) override {
    if (pos_ >= size_) {
      g_now += timeout_ms + 1;
      return size_t{0};
    }
    // The first byte of each read picks its length: every split of the stream is reachable.
    const size_t want = 1 + data_[pos_] % 61;
    size_t n = size_ - pos_;
    if (n > want) n = want;
    if (n > out.size()) n = out.size();
    std::memcpy(out.data(), data_ + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedModem serial(data, size);
  ota::port::EspAtConfig config;
  config.broker_host = "broker";
  ota::port::EspAtModem modem(serial, config, Now);
  char topic[64];
  uint8_t payload[256];
  for (int i = 0; i < 3; ++i) {
    const ota::Result<size_t> n =
        modem.Receive(100, ota::Span<char>(topic), ota::ByteSpan(payload));
    if (n.ok() &&
        (n.value() > sizeof(payload) || std::memchr(topic, 0, sizeof(topic)) == nullptr)) {
      __builtin_trap();
    }
  }
  modem.Subscribe("t").IgnoreError();  // any outcome is fine: only memory safety is checked
  uint8_t block[64];
  uint32_t total = 0;
  const ota::Result<size_t> got =
      modem.GetRange("https://h/f", "t", 0, ota::ByteSpan(block), &total);
  if (got.ok() && got.value() > sizeof(block)) __builtin_trap();
  char hour[11];
  if (modem.QueryUtcHour(hour).ok() && std::strlen(hour) != 10) __builtin_trap();
  return 0;
}
