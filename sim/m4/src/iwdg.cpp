#include "sim/m4/iwdg.hpp"

#include "sim/m4/memory_map.hpp"

namespace ota::sim::m4 {
namespace {

constexpr uint32_t kKr = 0x00;
constexpr uint32_t kPr = 0x04;
constexpr uint32_t kRlr = 0x08;
constexpr uint32_t kSr = 0x0C;
constexpr uint32_t kKeyStart = 0xCCCC;
constexpr uint32_t kKeyAccess = 0x5555;
constexpr uint32_t kKeyReload = 0xAAAA;
constexpr uint64_t kLsiPeriodNs = 1'000'000'000ull / kLsiHz;
// A PR or RLR update takes effect after a few LSI cycles (RM0090 21.4.4: up to 5 RC 40 kHz
// cycles): PVU/RVU stay set that long.
constexpr uint64_t kUpdateNs = 5 * kLsiPeriodNs;

}  // namespace

Iwdg::Iwdg(Machine& machine) : Peripheral(machine, "IWDG", kIwdgBase, kPeripheralBlock) {
  Reset();
}

void Iwdg::Reset() {
  running_ = false;
  access_ = false;
  pr_ = 0;
  rlr_ = 0xFFF;
  expires_ns_ = 0;
  update_done_ns_ = 0;
}

uint64_t Iwdg::TimeoutNs() const {
  const uint64_t divider = 4u << pr_;  // PR 0: /4 ... 6 and 7: /256
  return (rlr_ + 1) * (pr_ >= 6 ? 256 : divider) * kLsiPeriodNs;
}

void Iwdg::Reload() {
  expires_ns_ = machine_.now_ns() + TimeoutNs();
  ++refreshes_;
  machine_.TimersChanged();
}

uint64_t Iwdg::NextEventNs() {
  return running_ ? expires_ns_ : kNever;
}

void Iwdg::OnTime() {
  if (running_ && machine_.now_ns() >= expires_ns_) machine_.RequestReset(ResetCause::kWatchdog);
}

uint32_t Iwdg::Read(uint32_t offset) {
  switch (offset) {
    case kPr:
      return pr_;
    case kRlr:
      return rlr_;
    case kSr:
      return machine_.now_ns() < update_done_ns_ ? 3u : 0u;  // PVU | RVU while updating
    case kKr:
      return 0;
    default:
      return Unmodelled(offset, 4, false);
  }
}

void Iwdg::Write(uint32_t offset, uint32_t value) {
  switch (offset) {
    case kKr:
      switch (value & 0xFFFFu) {
        case kKeyStart:
          running_ = true;
          access_ = false;
          Reload();
          return;
        case kKeyAccess:
          access_ = true;
          return;
        case kKeyReload:
          access_ = false;
          if (running_) Reload();
          return;
        default:
          access_ = false;
          return;
      }
    case kPr:
    case kRlr:
      if (!access_) {
        Fail(std::string(offset == kPr ? "PR" : "RLR") +
             " written without the 0x5555 key first: ignored by the part (RM0090 21.3.4)");
        return;
      }
      if (offset == kPr) {
        pr_ = value & 7u;
      } else {
        rlr_ = value & 0xFFFu;
      }
      update_done_ns_ = machine_.now_ns() + kUpdateNs;
      return;
    case kSr:
      return;
    default:
      Unmodelled(offset, 4, true, value);
  }
}

}  // namespace ota::sim::m4
