// Polled text output on USART1 (PA9 TX, PA10 RX), 115200 8N1: the board's serial console.
#pragma once

#include <cstdint>

namespace fire {

// Call after ClockInit: the baud rate divider comes from the APB2 clock it set.
void ConsoleInit();
// Writes `text`; "\n" goes out as "\r\n".
void ConsoleWrite(const char* text);
void ConsoleWriteDec(uint32_t value);
void ConsoleWriteHex(uint32_t value);  // 0x%08x
// Waits until the last byte has left the shift register (before a reset or a jump).
void ConsoleFlush();

}  // namespace fire
