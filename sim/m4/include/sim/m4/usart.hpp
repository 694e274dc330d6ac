// A USART (RM0090 section 30) as the board port drives it: 8N1, polled transmit, receive by
// the RXNE interrupt. Transmitted bytes go to a sink (USART1: the console the tests read;
// USART3: the ESP-AT modem's side); bytes for the firmware are queued with Receive and
// arrive one per frame time (10 bits at the baud rate BRR gives), setting RXNE (ORE if the
// previous one was not read) and the USART's interrupt when RXNEIE is set.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "sim/m4/peripheral.hpp"

namespace ota::sim::m4 {

class Usart final : public Peripheral {
 public:
  // `irq`: the USART's NVIC line (USART1 37, USART3 39); `bus_hz`: its APB clock.
  Usart(Machine& machine, std::string name, uint32_t base, uint32_t irq,
        std::function<uint32_t()> bus_hz);

  void Reset() override;
  uint32_t Read(uint32_t offset) override;
  void Write(uint32_t offset, uint32_t value) override;
  uint64_t NextEventNs() override;
  void OnTime() override;

  // Every byte the firmware transmits.
  void set_sink(std::function<void(uint8_t)> sink) { sink_ = std::move(sink); }
  // Queues bytes for the firmware to receive.
  void Receive(const std::string& bytes);
  // The baud rate BRR selects now (0 before BRR is set).
  uint32_t baud() const;
  uint64_t transmitted() const { return transmitted_; }
  uint64_t dropped() const { return dropped_; }
  // Bytes queued by Receive and not yet delivered.
  size_t rx_pending() const { return rx_queue_.size(); }

 private:
  void Deliver();

  uint32_t irq_;
  std::function<uint32_t()> bus_hz_;
  std::function<void(uint8_t)> sink_;
  uint32_t sr_ = 0;
  uint32_t dr_ = 0;
  uint32_t brr_ = 0;
  uint32_t cr1_ = 0;
  uint32_t cr2_ = 0;
  uint32_t cr3_ = 0;
  std::deque<uint8_t> rx_queue_;
  uint64_t next_rx_ns_ = kNever;
  uint64_t transmitted_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace ota::sim::m4
