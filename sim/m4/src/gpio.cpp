#include "sim/m4/gpio.hpp"

#include "sim/m4/memory_map.hpp"

namespace ota::sim::m4 {
namespace {

constexpr uint32_t kModer = 0x00;
constexpr uint32_t kOtyper = 0x04;
constexpr uint32_t kOspeedr = 0x08;
constexpr uint32_t kPupdr = 0x0C;
constexpr uint32_t kIdr = 0x10;
constexpr uint32_t kOdr = 0x14;
constexpr uint32_t kBsrr = 0x18;
constexpr uint32_t kLckr = 0x1C;
constexpr uint32_t kAfrl = 0x20;
constexpr uint32_t kAfrh = 0x24;

std::string PortName(uint32_t index) {
  return std::string("GPIO") + static_cast<char>('A' + index);
}

}  // namespace

Gpio::Gpio(Machine& machine, uint32_t index)
    : Peripheral(machine, PortName(index), kGpioBase + kPeripheralBlock * index, kPeripheralBlock),
      index_(index) {
  Reset();
}

void Gpio::Reset() {
  // RM0090 8.4.1-8.4.4: ports A and B come out of reset with the debug pins configured.
  moder_ = index_ == 0 ? 0xA8000000u : index_ == 1 ? 0x00000280u : 0;
  otyper_ = 0;
  ospeedr_ = index_ == 0 ? 0x0C000000u : index_ == 1 ? 0x000000C0u : 0;
  pupdr_ = index_ == 0 ? 0x64000000u : index_ == 1 ? 0x00000100u : 0;
  odr_ = 0;
  lckr_ = 0;
  afr_[0] = afr_[1] = 0;
}

bool Gpio::Level(uint32_t pin) const {
  return mode(pin) == kModeOutput ? ((odr_ >> pin) & 1u) != 0 : true;
}

uint32_t Gpio::Levels() const {
  uint32_t levels = 0;
  for (uint32_t pin = 0; pin < 16; ++pin) {
    if (Level(pin)) levels |= 1u << pin;
  }
  return levels;
}

void Gpio::Changed(uint32_t old_levels) {
  const uint32_t now = Levels();
  if (now == old_levels || !on_change_) return;
  for (uint32_t pin = 0; pin < 16; ++pin) {
    if (((now ^ old_levels) >> pin & 1u) != 0) on_change_(pin, (now >> pin & 1u) != 0);
  }
}

uint32_t Gpio::Read(uint32_t offset) {
  switch (offset) {
    case kModer:
      return moder_;
    case kOtyper:
      return otyper_;
    case kOspeedr:
      return ospeedr_;
    case kPupdr:
      return pupdr_;
    case kIdr:
      return Levels();
    case kOdr:
      return odr_;
    case kBsrr:
      return 0;  // write-only
    case kLckr:
      return lckr_;
    case kAfrl:
      return afr_[0];
    case kAfrh:
      return afr_[1];
    default:
      return Unmodelled(offset, 4, false);
  }
}

void Gpio::Write(uint32_t offset, uint32_t value) {
  const uint32_t old_levels = Levels();
  switch (offset) {
    case kModer:
      moder_ = value;
      break;
    case kOtyper:
      otyper_ = value & 0xFFFFu;
      break;
    case kOspeedr:
      ospeedr_ = value;
      break;
    case kPupdr:
      pupdr_ = value;
      break;
    case kIdr:
      return;  // read-only
    case kOdr:
      odr_ = value & 0xFFFFu;
      break;
    case kBsrr:
      // Set has priority over reset (RM0090 8.4.7).
      odr_ = (odr_ & ~(value >> 16)) | (value & 0xFFFFu);
      break;
    case kLckr:
      if (value != 0) Fail("port configuration lock (LCKR) is not modelled");
      return;
    case kAfrl:
      afr_[0] = value;
      break;
    case kAfrh:
      afr_[1] = value;
      break;
    default:
      Unmodelled(offset, 4, true, value);
      return;
  }
  Changed(old_levels);
}

}  // namespace ota::sim::m4
