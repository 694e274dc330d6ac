// The ESP8266 module's enable (CH_PD) and reset (RST) lines: the module runs only with CH_PD
// high, and a low pulse on RST restarts it (it then prints `ready`, which the ESP-AT port
// notices). PC8 and PC9 as in Embedfire's own ESP8266 examples for this board: check the
// schematic of the board at hand, as for kModemUart.
#pragma once

#include <cstdint>

namespace fire {

inline constexpr uint32_t kModemChPdPin = 8;  // PC8
inline constexpr uint32_t kModemRstPin = 9;   // PC9
inline constexpr uint32_t kModemResetPulseMs = 100;

// Drives CH_PD high and pulses RST low: the module boots (about 1 s before it answers AT).
void ModemPowerOn();

}  // namespace fire
