#include "console.hpp"

#include "clock.hpp"
#include "stm32f4_regs.hpp"

namespace fire {
namespace {

using namespace reg;  // NOLINT: register names read better unqualified here

constexpr uint32_t kBaud = 115200;
constexpr uint32_t kTxPin = 9;
constexpr uint32_t kRxPin = 10;
constexpr uint32_t kAfUsart1 = 7;  // PA9/PA10 AF7: datasheet DS9405 table 12
// One byte at 115200 baud is 87 us; 2 ms covers it even at the slowest clock.
constexpr uint32_t kByteTimeoutMs = 2;

void PutByte(char c) {
  Usart& usart = USART1();
  // Bounded: a console that stops draining must not hang the loader.
  if (!WaitWhile([&] { return (usart.SR & kUsartSrTxe) == 0; }, kByteTimeoutMs)) return;
  usart.DR = static_cast<uint8_t>(c);
}

}  // namespace

void ConsoleInit() {
  Rcc& rcc = RCC();
  rcc.AHB1ENR |= kRccAhb1GpioA;
  rcc.APB2ENR |= kRccApb2Usart1;
  (void)rcc.APB2ENR;  // read back: clocks are on before the peripherals are written

  Gpio& gpio = GPIOA();
  const uint32_t pins[] = {kTxPin, kRxPin};
  for (const uint32_t pin : pins) {
    gpio.MODER = (gpio.MODER & ~(3u << (pin * 2))) | (kGpioModeAf << (pin * 2));
    gpio.OSPEEDR = (gpio.OSPEEDR & ~(3u << (pin * 2))) | (kGpioSpeedHigh << (pin * 2));
    gpio.PUPDR = (gpio.PUPDR & ~(3u << (pin * 2))) | (kGpioPullUp << (pin * 2));
    const uint32_t shift = (pin % 8) * 4;
    gpio.AFR[pin / 8] = (gpio.AFR[pin / 8] & ~(0xFu << shift)) | (kAfUsart1 << shift);
  }

  Usart& usart = USART1();
  usart.CR1 = 0;
  // Oversampling by 16: BRR = fck / baud, rounded (RM0090 30.3.4): 90 MHz -> 0x30D.
  usart.BRR = (Apb2Hz() + kBaud / 2) / kBaud;
  usart.CR2 = 0;  // 1 stop bit
  usart.CR3 = 0;
  usart.CR1 = kUsartCr1Ue | kUsartCr1Te | kUsartCr1Re;  // 8 data bits, no parity
}

void ConsoleWrite(const char* text) {
  for (; *text != '\0'; ++text) {
    if (*text == '\n') PutByte('\r');
    PutByte(*text);
  }
}

void ConsoleWriteDec(uint32_t value) {
  char buf[11];
  char* p = buf + sizeof(buf);
  *--p = '\0';
  do {
    *--p = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  ConsoleWrite(p);
}

void ConsoleWriteHex(uint32_t value) {
  char buf[11] = {'0', 'x'};
  for (int i = 0; i < 8; ++i) {
    const uint32_t nibble = (value >> (28 - 4 * i)) & 0xFu;
    buf[2 + i] = static_cast<char>(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
  }
  buf[10] = '\0';
  ConsoleWrite(buf);
}

void ConsoleFlush() {
  Usart& usart = USART1();
  (void)WaitWhile([&] { return (usart.SR & kUsartSrTc) == 0; }, kByteTimeoutMs);
}

}  // namespace fire
