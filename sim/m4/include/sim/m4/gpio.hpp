// The GPIO ports A-K (RM0090 section 8.4): mode, type, speed, pull, input and output data,
// bit set/reset, lock and alternate-function registers. Pins drive nothing by themselves; the
// board listens to the pins it wires (the W25Q128's chip select on PF6) and asks
// PinConfigured which function a pin has.
#pragma once

#include <cstdint>
#include <functional>

#include "sim/m4/peripheral.hpp"

namespace ota::sim::m4 {

class Gpio final : public Peripheral {
 public:
  static constexpr uint32_t kModeInput = 0;
  static constexpr uint32_t kModeOutput = 1;
  static constexpr uint32_t kModeAf = 2;

  // Port `index` (0 = A).
  Gpio(Machine& machine, uint32_t index);

  void Reset() override;
  uint32_t Read(uint32_t offset) override;
  void Write(uint32_t offset, uint32_t value) override;

  uint32_t mode(uint32_t pin) const { return (moder_ >> (2 * pin)) & 3u; }
  uint32_t alternate(uint32_t pin) const { return (afr_[pin / 8] >> (4 * (pin % 8))) & 0xFu; }
  // The level on `pin`: the output data when it is an output, else high (every pin the board
  // wires has a pull-up: the W25Q128's /CS, the USART lines).
  bool Level(uint32_t pin) const;
  // Called with (pin, level) whenever a pin's level changes.
  void set_on_change(std::function<void(uint32_t, bool)> on_change) {
    on_change_ = std::move(on_change);
  }

 private:
  void Changed(uint32_t old_levels);
  uint32_t Levels() const;

  uint32_t index_;
  uint32_t moder_ = 0;
  uint32_t otyper_ = 0;
  uint32_t ospeedr_ = 0;
  uint32_t pupdr_ = 0;
  uint32_t odr_ = 0;
  uint32_t lckr_ = 0;
  uint32_t afr_[2] = {};
  std::function<void(uint32_t, bool)> on_change_;
};

}  // namespace ota::sim::m4
