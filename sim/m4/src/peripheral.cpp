#include "sim/m4/peripheral.hpp"

#include <cstdio>

namespace ota::sim::m4 {

const char* ResetCauseName(ResetCause cause) {
  switch (cause) {
    case ResetCause::kPowerOn:
      return "power-on";
    case ResetCause::kSoftware:
      return "software (AIRCR.SYSRESETREQ)";
    case ResetCause::kWatchdog:
      return "independent watchdog";
  }
  return "?";
}

std::string Hex(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", value);
  return text;
}

uint32_t Peripheral::ReadNarrow(uint32_t offset, unsigned size) {
  return Unmodelled(offset, size, false);
}

void Peripheral::WriteNarrow(uint32_t offset, unsigned size, uint32_t value) {
  Unmodelled(offset, size, true, value);
}

std::string Peripheral::RegisterName(uint32_t offset) const {
  return name_ + "+" + Hex(offset) + " (" + Hex(base_ + offset) + ")";
}

uint32_t Peripheral::Unmodelled(uint32_t offset, unsigned size, bool write, uint32_t value) {
  std::string what = std::string("unmodelled ") + std::to_string(size * 8) + "-bit " +
                     (write ? "write of " + Hex(value) + " to " : "read of ") +
                     RegisterName(offset);
  machine_.Fail(what);
  return 0;
}

void Peripheral::Fail(const std::string& what) {
  machine_.Fail(name_ + ": " + what);
}

}  // namespace ota::sim::m4
