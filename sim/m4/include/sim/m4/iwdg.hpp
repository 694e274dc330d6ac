// The independent watchdog (RM0090 section 21): KR keys (0xCCCC start, 0x5555 register
// access, 0xAAAA reload), PR and RLR (writable only after 0x5555, their PVU/RVU flags set
// for the update's few LSI cycles), a down-counter on the 32 kHz LSI. When it reaches 0 the
// board resets (ResetCause::kWatchdog). Only a reset stops it.
#pragma once

#include <cstdint>

#include "sim/m4/peripheral.hpp"

namespace ota::sim::m4 {

class Iwdg final : public Peripheral {
 public:
  explicit Iwdg(Machine& machine);

  void Reset() override;
  uint32_t Read(uint32_t offset) override;
  void Write(uint32_t offset, uint32_t value) override;
  uint64_t NextEventNs() override;
  void OnTime() override;

  bool running() const { return running_; }
  // The timeout the registers give: (RLR + 1) * prescaler LSI periods.
  uint64_t TimeoutNs() const;
  uint64_t refreshes() const { return refreshes_; }

 private:
  void Reload();

  bool running_ = false;
  bool access_ = false;
  uint32_t pr_ = 0;
  uint32_t rlr_ = 0xFFF;
  uint64_t expires_ns_ = 0;
  uint64_t update_done_ns_ = 0;
  uint64_t refreshes_ = 0;
};

}  // namespace ota::sim::m4
