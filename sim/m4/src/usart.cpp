#include "sim/m4/usart.hpp"

namespace ota::sim::m4 {
namespace {

constexpr uint32_t kSr = 0x00;
constexpr uint32_t kDr = 0x04;
constexpr uint32_t kBrr = 0x08;
constexpr uint32_t kCr1 = 0x0C;
constexpr uint32_t kCr2 = 0x10;
constexpr uint32_t kCr3 = 0x14;

constexpr uint32_t kSrOre = 1u << 3;
constexpr uint32_t kSrRxne = 1u << 5;
constexpr uint32_t kSrTc = 1u << 6;
constexpr uint32_t kSrTxe = 1u << 7;
constexpr uint32_t kCr1Re = 1u << 2;
constexpr uint32_t kCr1Te = 1u << 3;
constexpr uint32_t kCr1Rxneie = 1u << 5;
constexpr uint32_t kCr1Tcie = 1u << 6;
constexpr uint32_t kCr1Txeie = 1u << 7;
constexpr uint32_t kCr1Over8 = 1u << 15;
constexpr uint32_t kCr1Ue = 1u << 13;
constexpr uint32_t kCr1Parity = 1u << 10;
constexpr uint32_t kCr1Word9 = 1u << 12;

}  // namespace

Usart::Usart(Machine& machine, std::string name, uint32_t base, uint32_t irq,
             std::function<uint32_t()> bus_hz)
    : Peripheral(machine, std::move(name), base, 0x400), irq_(irq), bus_hz_(std::move(bus_hz)) {
  Reset();
}

void Usart::Reset() {
  sr_ = kSrTxe | kSrTc;
  dr_ = 0;
  brr_ = 0;
  cr1_ = cr2_ = cr3_ = 0;
  next_rx_ns_ = rx_queue_.empty() ? kNever : 0;
}

uint32_t Usart::baud() const {
  if (brr_ == 0) return 0;
  return bus_hz_() / brr_;
}

void Usart::Receive(const std::string& bytes) {
  for (const char c : bytes)
    rx_queue_.push_back(static_cast<uint8_t>(c));
  if (next_rx_ns_ == kNever) next_rx_ns_ = machine_.now_ns();
  machine_.TimersChanged();
}

uint64_t Usart::NextEventNs() {
  return rx_queue_.empty() ? kNever : next_rx_ns_;
}

void Usart::OnTime() {
  if (rx_queue_.empty()) return;
  Deliver();
  // One 8N1 frame later (a receiver not yet configured: look again 1 ms later).
  const uint32_t baud_now = baud();
  next_rx_ns_ = machine_.now_ns() + (baud_now == 0 ? 1'000'000 : 10'000'000'000ull / baud_now);
}

void Usart::Deliver() {
  if ((cr1_ & kCr1Ue) == 0 || (cr1_ & kCr1Re) == 0) return;  // not listening yet: wait
  const uint8_t byte = rx_queue_.front();
  rx_queue_.pop_front();
  if ((sr_ & kSrRxne) != 0) {
    sr_ |= kSrOre;  // the previous byte was not read: this one is lost
    ++dropped_;
  } else {
    dr_ = byte;
    sr_ |= kSrRxne;
  }
  if ((cr1_ & kCr1Rxneie) != 0) machine_.SetPending(16 + irq_);
}

uint32_t Usart::Read(uint32_t offset) {
  switch (offset) {
    case kSr:
      return sr_;
    case kDr:
      sr_ &= ~(kSrRxne | kSrOre);  // after a read of SR, reading DR clears ORE too
      return dr_;
    case kBrr:
      return brr_;
    case kCr1:
      return cr1_;
    case kCr2:
      return cr2_;
    case kCr3:
      return cr3_;
    default:
      return Unmodelled(offset, 4, false);
  }
}

void Usart::Write(uint32_t offset, uint32_t value) {
  switch (offset) {
    case kSr:
      sr_ &= value | ~(kSrRxne | kSrTc);  // RXNE and TC are cleared by writing 0
      return;
    case kDr:
      if ((cr1_ & kCr1Ue) == 0 || (cr1_ & kCr1Te) == 0) {
        Fail("DR written with UE or TE clear: the byte " + Hex(value) + " goes nowhere");
        return;
      }
      ++transmitted_;
      if (sink_) sink_(static_cast<uint8_t>(value));
      return;  // the frame time is not modelled: TXE and TC stay set
    case kBrr:
      brr_ = value & 0xFFFFu;
      return;
    case kCr1:
      if ((value & (kCr1Parity | kCr1Word9 | kCr1Over8)) != 0) {
        Fail("CR1 " + Hex(value) + ": parity, 9-bit words and oversampling by 8 are not modelled");
      }
      if ((value & (kCr1Txeie | kCr1Tcie)) != 0) {
        Fail("CR1 " + Hex(value) + ": transmit interrupts are not modelled");
      }
      cr1_ = value & 0xFFFFu;
      if ((cr1_ & kCr1Rxneie) != 0 && (sr_ & kSrRxne) != 0) machine_.SetPending(16 + irq_);
      machine_.TimersChanged();
      return;
    case kCr2:
      if ((value & (3u << 12)) != 0) Fail("stop bits other than 1 are not modelled");
      cr2_ = value;
      return;
    case kCr3:
      if (value != 0) Fail("CR3 " + Hex(value) + ": flow control and DMA are not modelled");
      cr3_ = value;
      return;
    default:
      Unmodelled(offset, 4, true, value);
  }
}

}  // namespace ota::sim::m4
