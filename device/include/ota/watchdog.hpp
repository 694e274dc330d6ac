// The independent watchdog as the loader sees it: started early, refreshed between bounded
// flash steps. KickingFlash is how: it wraps a flash device and refreshes the watchdog before
// every operation, splitting erases into single erase commands, so no step between two
// refreshes is longer than the part's slowest command (2 s on both the STM32F4 and the
// W25Q128, docs/firmware.md "Watchdog").
#pragma once

#include <cstdint>

#include "ota/flash.hpp"

namespace ota {

class Watchdog {
 public:
  virtual void Kick() = 0;

 protected:
  ~Watchdog() = default;  // not virtual: see Flash
};

// A watchdog that is not there (host tools that run the loader's code).
class NoWatchdog final : public Watchdog {
 public:
  void Kick() override {}
};

class KickingFlash final : public Flash {
 public:
  KickingFlash(Flash& inner, Watchdog& watchdog)
      : Flash(inner.geometry()), inner_(inner), watchdog_(watchdog) {}

 private:
  Status DoRead(uint32_t addr, ByteSpan out) override;
  Status DoProgram(uint32_t addr, ConstByteSpan data) override;
  Status DoErase(uint32_t addr, uint32_t len) override;

  Flash& inner_;
  Watchdog& watchdog_;
};

}  // namespace ota
