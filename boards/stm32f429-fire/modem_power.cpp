#include "modem_power.hpp"

#include "clock.hpp"
#include "stm32f4_regs.hpp"

namespace fire {

namespace {
constexpr uint32_t kGpioC = 2;  // GPIOC: index and RCC_AHB1ENR bit (RM0090 6.3.10)
}  // namespace

void ModemPowerOn() {
  reg::RCC().AHB1ENR |= 1u << kGpioC;
  (void)reg::RCC().AHB1ENR;  // read back: the port is clocked before it is written
  reg::Gpio& gpio = reg::GPIO(kGpioC);
  // RST low first, then both pins push-pull outputs: the module stays in reset until the
  // pulse ends, whatever state it was in.
  gpio.BSRR = (1u << (kModemRstPin + 16)) | (1u << kModemChPdPin);
  const uint32_t pins[] = {kModemChPdPin, kModemRstPin};
  for (const uint32_t pin : pins) {
    gpio.OTYPER &= ~(1u << pin);
    gpio.MODER = (gpio.MODER & ~(3u << (pin * 2))) | (reg::kGpioModeOutput << (pin * 2));
  }
  DelayMs(kModemResetPulseMs);
  gpio.BSRR = 1u << kModemRstPin;
}

}  // namespace fire
