// A byte stream to a peripheral such as an AT modem (docs/firmware.md, "Network port"). The
// board implements it on a UART with an interrupt-filled receive buffer; the host simulation
// on a socket pair.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota::port {

class SerialPort {
 public:
  // Sends all of `data` (blocking until it is queued or sent); kIoError if the line is gone.
  virtual Status Write(ConstByteSpan data) = 0;
  // Waits up to `timeout_ms` for at least one byte and returns what is there, at most
  // out.size() bytes; 0 bytes after the timeout is not an error. kIoError if the line is gone
  // or bytes were lost (receive overrun).
  virtual Result<size_t> Read(ByteSpan out, uint32_t timeout_ms) = 0;

 protected:
  ~SerialPort() = default;
};

}  // namespace ota::port
