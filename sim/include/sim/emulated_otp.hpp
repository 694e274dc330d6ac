// The STM32F4's OTP area on the host (RM0090 3.7): 16 blocks of 32 bytes and 16 lock bytes.
// Programming only clears bits (and can be cut or torn like any flash operation: the cells
// are an EmulatedFlash on the board's supply), nothing erases it, and a block whose lock byte
// reads 0x00 refuses to be programmed, as the part does.
#pragma once

#include "ota/flash.hpp"
#include "ota/profile.hpp"
#include "sim/emulated_flash.hpp"
#include "sim/power.hpp"

namespace ota::sim {

class EmulatedOtp final : public Flash {
 public:
  explicit EmulatedOtp(PowerSupply* power);

  // The cells: raw() for set-up and assertions, OpenFile() for a board that persists.
  EmulatedFlash& cells() { return cells_; }
  const EmulatedFlash& cells() const { return cells_; }

 private:
  Status DoRead(uint32_t addr, ByteSpan out) override;
  Status DoProgram(uint32_t addr, ConstByteSpan data) override;
  Status DoErase(uint32_t addr, uint32_t len) override;

  EmulatedFlash cells_;
};

}  // namespace ota::sim
