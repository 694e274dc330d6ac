// System clock, SysTick time base and bounded waits for the stm32f429-fire board.
#pragma once

#include <cstdint>

namespace fire {

// 180 MHz from the 25 MHz HSE crystal (AHB 180, APB1 45, APB2 90 MHz), 5 flash wait states,
// SysTick at 1 ms. If the HSE does not start, stays on the 16 MHz HSI (all buses 16 MHz) and
// returns false. Idempotent: an app started by the loader finds the PLL already running.
bool ClockInit();

uint32_t SysclkHz();
uint32_t Apb1Hz();  // USART2/3, SPI2/3, I2C, ...: 45 MHz (16 on the HSI)
uint32_t Apb2Hz();  // USART1/6, SPI1/4/5/6, ...: 90 MHz (16 on the HSI)
// Milliseconds since ClockInit (wraps after 49 days).
uint32_t Millis();
void DelayMs(uint32_t ms);

// Polls `busy()` until it returns false: true if it did within `timeout_ms`. Bounded even if
// SysTick stops: a poll takes at least one CPU cycle, so after timeout_ms * 180000 polls at
// least timeout_ms have passed at 180 MHz (and more at 16 MHz). Keep timeout_ms <= 20000.
template <typename Busy>
bool WaitWhile(Busy busy, uint32_t timeout_ms) {
  constexpr uint32_t kMaxPollsPerMs = 180000;
  const uint32_t start = Millis();
  const uint32_t max_polls = timeout_ms * kMaxPollsPerMs;
  for (uint32_t polls = 0; polls < max_polls; ++polls) {
    if (!busy()) return true;
    if (Millis() - start > timeout_ms) break;
  }
  return !busy();
}

}  // namespace fire
