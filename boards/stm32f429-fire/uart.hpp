// Interrupt-driven USART (USART1, 2, 3 or 6) as an ota::port::SerialPort, from RM0090 section
// 30 (USART) and the STM32F429 datasheet DS9405 (table 12, alternate functions): received
// bytes go from the RXNE interrupt into a ring the caller provides, transmission is polled.
//
// Only images that use a Uart link uart.cpp, and with it the USART IRQ handlers: the loader
// keeps startup.cpp's weak Default_Handler aliases (and its size).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ota/port/serial_port.hpp"
#include "ota/span.hpp"
#include "ota/status.hpp"
#include "stm32f4_regs.hpp"

namespace fire {

// The USARTs a Uart can drive; uart.cpp has an IRQ handler for each.
enum class UartId : uint8_t { kUsart1, kUsart2, kUsart3, kUsart6 };
inline constexpr size_t kUartIds = 4;

// The bus a USART's clock comes from (RM0090 6.2): APB1 45 MHz, APB2 90 MHz.
enum class Apb : uint8_t { kApb1, kApb2 };

// GPIOA..GPIOK: the index is also the port's RCC_AHB1ENR enable bit (RM0090 6.3.10).
enum class GpioPort : uint8_t { kA, kB, kC, kD, kE, kF, kG, kH, kI, kJ, kK };

// Which USART, how it is clocked and wired, and at what speed (8N1, no flow control).
struct UartConfig {
  UartId id;
  uint32_t base;        // register block, RM0090 table 1
  Apb bus;              // USART1/6: APB2; USART2/3: APB1
  uint32_t rcc_enable;  // its bit in RCC_APB1ENR (6.3.13) or RCC_APB2ENR (6.3.14)
  GpioPort port;        // TX and RX are on the same port
  uint8_t tx_pin;
  uint8_t rx_pin;
  uint8_t af;   // alternate function of both pins: AF7 USART1/2/3, AF8 USART6 (DS9405 table 12)
  uint8_t irq;  // position in the NVIC, RM0090 table 62: 37, 38, 39, 71
  uint32_t baud;
};

// What RM0090 and DS9405 fix for each USART, to check a UartConfig against (UartConfigValid).
struct UsartFacts {
  uint32_t base;
  Apb bus;
  uint32_t rcc_enable;
  uint8_t af;
  uint8_t irq;
  // Pins that carry TX / RX (DS9405 table 12) as port * 16 + pin; 0xFF: none.
  uint8_t tx[3];
  uint8_t rx[3];
};
// clang-format off
inline constexpr UsartFacts kUsartFacts[kUartIds] = {
    // base            bus         clock enable         AF IRQ
    {reg::kUsart1Base, Apb::kApb2, reg::kRccApb2Usart1, 7, 37,
     {0x09, 0x16, 0xFF}, {0x0A, 0x17, 0xFF}},  // PA9/PA10, PB6/PB7
    {reg::kUsart2Base, Apb::kApb1, reg::kRccApb1Usart2, 7, 38,
     {0x02, 0x35, 0xFF}, {0x03, 0x36, 0xFF}},  // PA2/PA3, PD5/PD6
    {reg::kUsart3Base, Apb::kApb1, reg::kRccApb1Usart3, 7, 39,
     {0x1A, 0x2A, 0x38}, {0x1B, 0x2B, 0x39}},  // PB10/PB11, PC10/PC11, PD8/PD9
    {reg::kUsart6Base, Apb::kApb2, reg::kRccApb2Usart6, 8, 71,
     {0x26, 0x6E, 0xFF}, {0x27, 0x69, 0xFF}},  // PC6/PC7, PG14/PG9
};
// clang-format on

constexpr bool UsartPinIs(const uint8_t (&pins)[3], GpioPort port, uint8_t pin) {
  for (const uint8_t p : pins) {
    if (pin < 16 && p == static_cast<uint8_t>(static_cast<uint8_t>(port) * 16 + pin)) return true;
  }
  return false;
}

// True if `c` names a USART with its own base, bus, clock bit, AF and IRQ, on pins that carry
// it. Whether the bus clock can make the baud rate is for Init to check.
constexpr bool UartConfigValid(const UartConfig& c) {
  const size_t i = static_cast<size_t>(c.id);
  if (i >= kUartIds) return false;
  const UsartFacts& f = kUsartFacts[i];
  return c.base == f.base && c.bus == f.bus && c.rcc_enable == f.rcc_enable && c.af == f.af &&
         c.irq == f.irq && UsartPinIs(f.tx, c.port, c.tx_pin) &&
         UsartPinIs(f.rx, c.port, c.rx_pin) && c.baud != 0;
}

// The board's serial console: USART1 on PA9 (TX) / PA10 (RX), 115200, as console.cpp drives
// it (polled, output only). The app reads the console through a Uart on it.
inline constexpr UartConfig kConsoleUart = {
    UartId::kUsart1,
    reg::kUsart1Base,
    Apb::kApb2,
    reg::kRccApb2Usart1,
    GpioPort::kA,
    9,   // PA9: TX
    10,  // PA10: RX
    7,   // AF7
    37,  // USART1 global interrupt
    115200,
};
// The ESP-AT Wi-Fi modem (ESP8266 module socket): USART3 on PB10 (TX) / PB11 (RX), 115200 (the
// AT firmware's default). Embedfire's own ESP8266 examples for this board (F429 "challenger"
// V1/V2) use the same USART and pins, with CH_PD on PC8 and RST on PC9; this must match the
// wiring of the board at hand: check its schematic before relying on it.
inline constexpr UartConfig kModemUart = {
    UartId::kUsart3,
    reg::kUsart3Base,
    Apb::kApb1,
    reg::kRccApb1Usart3,
    GpioPort::kB,
    10,  // PB10: TX (to the modem's RX)
    11,  // PB11: RX (from the modem's TX)
    7,   // AF7
    39,  // USART3 global interrupt
    115200,
};
static_assert(UartConfigValid(kConsoleUart) && UartConfigValid(kModemUart));

// Receive ring sizes: the modem's must hold what arrives while the AT layer is busy (at 115200
// baud, 4096 bytes is about 350 ms); the console only sees typing.
inline constexpr size_t kConsoleRxBytes = 256;
inline constexpr size_t kModemRxBytes = 4096;

class Uart final : public ota::port::SerialPort {
 public:
  // `rx_buffer` is the receive ring: a power of two bytes that outlive the Uart (static
  // storage: the interrupt handler writes it). Constant-initialised when both are constants.
  constexpr Uart(const UartConfig& config, ota::ByteSpan rx_buffer)
      : config_(config), rx_(rx_buffer) {}
  Uart(const Uart&) = delete;
  Uart& operator=(const Uart&) = delete;

  // Clocks, pins, baud rate, then the receive interrupt. Call after ClockInit (the baud rate
  // comes from the bus clock it set; Read's timeout and wake-up need its SysTick), else
  // kFailedPrecondition, as for a second Uart on the same USART. kInvalidArgument for a config
  // that fails UartConfigValid, a baud rate the bus clock cannot make (RM0090 30.3.4: with
  // oversampling by 16, BRR = f / baud must be 16..0xFFFF) or a ring that is not a power of
  // two. Calling it again restarts the USART and empties the ring.
  ota::Status Init();

  // Polled: each byte waits for TXE, at most the time of a few bytes; kIoError if the
  // USART stops taking them. kFailedPrecondition before Init.
  ota::Status Write(ota::ConstByteSpan data) override;
  // Waits until a byte is in the ring, at most `timeout_ms` (0: no wait; 1 ms resolution),
  // then copies out what is there, up to out.size(); 0 bytes after the timeout. Lost bytes
  // (the USART's overrun, or the ring full) give kIoError once: the ring is emptied with it,
  // so the bytes read after the error all came after the loss (no splice across the gap).
  ota::Result<size_t> Read(ota::ByteSpan out, uint32_t timeout_ms) override;

  size_t rx_capacity() const { return rx_.size(); }
  // Called on every wake-up while Read waits (the app kicks the watchdog there, so a wait
  // for the modem, up to 30 s, never outlasts it). Null: none.
  void set_wait_hook(void (*hook)()) { wait_hook_ = hook; }

  // The USART's interrupt: moves the received byte into the ring. Called by the IRQ handler
  // in uart.cpp, nowhere else.
  void OnInterrupt();

 private:
  const UartConfig config_;
  const ota::ByteSpan rx_;
  // Free-running byte counts; the ring index is count & (size - 1). Each is written by one
  // side only: the handler counts bytes received and losses, Read bytes consumed and losses
  // reported. 32-bit aligned accesses are single-copy atomic on the M4.
  volatile uint32_t rx_head_ = 0;
  volatile uint32_t rx_tail_ = 0;
  volatile uint32_t overruns_ = 0;
  uint32_t overruns_reported_ = 0;
  bool ready_ = false;
  void (*wait_hook_)() = nullptr;
};

}  // namespace fire
