// The Uart class and the USART IRQ handlers share this file on purpose: the handlers are
// strong definitions of startup.cpp's weak aliases, and an archive member is only linked when
// something references it, so an image without a Uart (the loader) keeps Default_Handler.
#include "uart.hpp"

#include "clock.hpp"

namespace fire {
namespace {

using namespace reg;  // NOLINT: register names read better unqualified here

// 4 priority bits (PM0214 4.2.7): the middle one. SysTick stays at 0 (its reset priority) and
// may preempt the handler, which is short.
constexpr uint8_t kIrqPriority = 8u << kNvicPriorityShift;
// IDLEIE, RXNEIE, TCIE, TXEIE, PEIE (RM0090 30.6.4).
constexpr uint32_t kUsartCr1Interrupts = 0x1Fu << 4;

// The Uart each USART's interrupt goes to, by UartId: set by Init before it enables the IRQ.
Uart* volatile g_uarts[kUartIds] = {};

// One 8N1 byte is 10 bit times (87 us at 115200 baud); 2 ms more cover SysTick's resolution.
uint32_t ByteTimeoutMs(uint32_t baud) {
  return 2 + 10000 / baud;
}

void SetAfPin(Gpio& gpio, uint32_t pin, uint32_t af) {
  gpio.MODER = (gpio.MODER & ~(3u << (pin * 2))) | (kGpioModeAf << (pin * 2));
  gpio.OSPEEDR = (gpio.OSPEEDR & ~(3u << (pin * 2))) | (kGpioSpeedHigh << (pin * 2));
  // Pull-ups on both: RX does not float (noise would read as bytes) when nothing is
  // connected, and TX stays at the idle level while the USART is disabled.
  gpio.PUPDR = (gpio.PUPDR & ~(3u << (pin * 2))) | (kGpioPullUp << (pin * 2));
  const uint32_t shift = (pin % 8) * 4;
  gpio.AFR[pin / 8] = (gpio.AFR[pin / 8] & ~(0xFu << shift)) | (af << shift);
}

void Dispatch(UartId id) {
  Uart* const uart = g_uarts[static_cast<size_t>(id)];
  if (uart != nullptr) {
    uart->OnInterrupt();
    return;
  }
  // No Uart owns this USART, yet its interrupt fired: clear RXNE and ORE (SR, then DR) and
  // its interrupt enables, or it would fire again at once, for ever.
  Usart& usart = USART(kUsartFacts[static_cast<size_t>(id)].base);
  (void)usart.SR;
  (void)usart.DR;
  usart.CR1 = usart.CR1 & ~kUsartCr1Interrupts;
}

}  // namespace

ota::Status Uart::Init() {
  if (!UartConfigValid(config_)) return ota::StatusCode::kInvalidArgument;
  const size_t size = rx_.size();
  if (size == 0 || (size & (size - 1)) != 0) return ota::StatusCode::kInvalidArgument;
  constexpr uint32_t kTickOn = kSysTickEnable | kSysTickTickInt;
  if ((SYSTICK().CTRL & kTickOn) != kTickOn) return ota::StatusCode::kFailedPrecondition;
  const size_t slot = static_cast<size_t>(config_.id);
  Uart* const owner = g_uarts[slot];
  if (owner != nullptr && owner != this) return ota::StatusCode::kFailedPrecondition;
  // Oversampling by 16: BRR = fck / baud, rounded (RM0090 30.3.4), as console.cpp does.
  const uint32_t bus_hz = config_.bus == Apb::kApb1 ? Apb1Hz() : Apb2Hz();
  const uint32_t brr = (bus_hz + config_.baud / 2) / config_.baud;
  if (brr < 16 || brr > 0xFFFFu) return ota::StatusCode::kInvalidArgument;

  // The handler stays out while the USART and the ring are reset (a second Init): PM0214
  // 4.2.3, the barriers make the disable take effect before the next instruction.
  const uint32_t irq_word = config_.irq / 32;
  const uint32_t irq_bit = 1u << (config_.irq % 32);
  NVIC_ICER()[irq_word] = irq_bit;
  Dsb();
  Isb();

  Rcc& rcc = RCC();
  rcc.AHB1ENR |= 1u << static_cast<uint32_t>(config_.port);
  // Read back: clocks are on before the peripherals are written.
  if (config_.bus == Apb::kApb1) {
    rcc.APB1ENR |= config_.rcc_enable;
    (void)rcc.APB1ENR;
  } else {
    rcc.APB2ENR |= config_.rcc_enable;
    (void)rcc.APB2ENR;
  }

  Usart& usart = USART(config_.base);
  if ((usart.CR1 & kUsartCr1Ue) != 0) {
    // Already running (the console on USART1): let the last byte out before the reset. If it
    // never goes, the USART is reconfigured all the same: nothing to report.
    (void)WaitWhile([&] { return (usart.SR & kUsartSrTc) == 0; }, ByteTimeoutMs(config_.baud));
  }
  usart.CR1 = 0;
  Gpio& gpio = GPIO(static_cast<uint32_t>(config_.port));
  SetAfPin(gpio, config_.tx_pin, config_.af);
  SetAfPin(gpio, config_.rx_pin, config_.af);
  usart.BRR = brr;
  usart.CR2 = 0;  // 1 stop bit
  usart.CR3 = 0;  // no flow control, no DMA
  // Written here although the handler owns rx_head_ and overruns_: it cannot run now.
  rx_head_ = 0;
  rx_tail_ = 0;
  overruns_reported_ = overruns_;
  (void)usart.SR;  // a byte or overrun left from before: SR then DR clears them (30.6.1)
  (void)usart.DR;
  g_uarts[slot] = this;
  Dmb();  // all the handler reads is written before its interrupt can happen
  usart.CR1 = kUsartCr1Ue | kUsartCr1Te | kUsartCr1Re | kUsartCr1Rxneie;  // 8 data bits, no parity

  NVIC_IPR()[config_.irq] = kIrqPriority;
  NVIC_ICPR()[irq_word] = irq_bit;  // nothing pending from before the reset is delivered
  NVIC_ISER()[irq_word] = irq_bit;
  ready_ = true;
  return ota::Status::Ok();
}

ota::Status Uart::Write(ota::ConstByteSpan data) {
  if (!ready_) return ota::StatusCode::kFailedPrecondition;
  Usart& usart = USART(config_.base);
  const uint32_t timeout_ms = ByteTimeoutMs(config_.baud);
  for (const uint8_t byte : data) {
    // Bounded: a USART that stops draining must not hang the caller.
    if (!WaitWhile([&] { return (usart.SR & kUsartSrTxe) == 0; }, timeout_ms)) {
      return ota::StatusCode::kIoError;
    }
    usart.DR = byte;
  }
  return ota::Status::Ok();
}

ota::Result<size_t> Uart::Read(ota::ByteSpan out, uint32_t timeout_ms) {
  if (!ready_) return ota::StatusCode::kFailedPrecondition;
  const uint32_t start = Millis();
  while (rx_head_ == rx_tail_ && overruns_ == overruns_reported_) {
    // At least timeout_ms: Millis may tick just after `start`.
    if (timeout_ms == 0 || Millis() - start > timeout_ms) return size_t{0};
    // Until the next interrupt: a received byte, or SysTick within 1 ms (so a byte that came
    // between the check and the wfi waits at most that long).
    __asm volatile("wfi" ::: "memory");
    if (wait_hook_ != nullptr) wait_hook_();
  }

  // head before overruns_: a handler run in between that lost bytes shows in overruns_, so
  // the bytes below head all came before any loss not yet reported.
  const uint32_t head = rx_head_;
  const uint32_t overruns = overruns_;
  if (overruns != overruns_reported_) {
    // Bytes were lost: drop all that came before the loss (read head again: it is past every
    // byte of a handler run counted in `overruns`), so no byte read later joins the bytes
    // before the gap. A loss after that is reported by the next Read.
    overruns_reported_ = overruns;
    rx_tail_ = rx_head_;
    return ota::StatusCode::kIoError;
  }
  Dmb();  // the bytes below head are read after head (the handler stores them before it)
  uint32_t tail = rx_tail_;
  const uint32_t mask = static_cast<uint32_t>(rx_.size() - 1);
  size_t n = 0;
  for (; n < out.size() && tail != head; ++n, ++tail)
    out[n] = rx_[tail & mask];
  Dmb();  // the bytes are copied out before their slots go back to the handler
  rx_tail_ = tail;
  return n;
}

void Uart::OnInterrupt() {
  Usart& usart = USART(config_.base);
  const uint32_t sr = usart.SR;
  if ((sr & (kUsartSrRxne | kUsartSrOre)) == 0) return;
  // Reading DR after SR clears RXNE and ORE (RM0090 30.6.1). On an overrun DR still holds
  // the last byte that arrived before the lost one.
  const uint8_t byte = static_cast<uint8_t>(usart.DR);
  bool lost = (sr & kUsartSrOre) != 0;
  if ((sr & kUsartSrRxne) != 0) {
    const uint32_t head = rx_head_;
    if (head - rx_tail_ < rx_.size()) {
      rx_[head & static_cast<uint32_t>(rx_.size() - 1)] = byte;
      Dmb();  // the byte is in the ring before Read can see the new head
      rx_head_ = head + 1;
    } else {
      lost = true;  // the ring is full: Read is behind
    }
  }
  if (lost) overruns_ = overruns_ + 1;
}

}  // namespace fire

// Override startup.cpp's weak aliases: one per UartId.
extern "C" void USART1_IRQHandler() {
  fire::Dispatch(fire::UartId::kUsart1);
}
extern "C" void USART2_IRQHandler() {
  fire::Dispatch(fire::UartId::kUsart2);
}
extern "C" void USART3_IRQHandler() {
  fire::Dispatch(fire::UartId::kUsart3);
}
extern "C" void USART6_IRQHandler() {
  fire::Dispatch(fire::UartId::kUsart6);
}
