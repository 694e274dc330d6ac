#include "sim/option_bytes.hpp"

#include <algorithm>
#include <random>

#include "sim/emulated_flash.hpp"

namespace ota::sim {
namespace {

// Same seed and op number, same draws: a torn option-byte program replays exactly.
std::mt19937_64 OptionTearRng(uint64_t seed, uint64_t op) {
  // A constant apart from the flash devices' generator, so the draws differ from theirs.
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(op), static_cast<uint32_t>(op >> 32), 0x0B7E5u};
  return std::mt19937_64(seq);
}

}  // namespace

Result<UserOptionBytes> EmulatedOptionBytes::Read() {
  if (power_ != nullptr && power_->lost()) return StatusCode::kPowerLost;
  return value_;
}

bool EmulatedOptionBytes::Refuses(const UserOptionBytes& value) const {
  if (value_.rdp_level() == RdpLevel::kLevel2) return true;
  if (!value_.pcrop_mode()) return false;
  // RM0090, PCROP: SPRMOD can be cleared, and a PCROP sector released, only together with
  // the regression from level 1 to level 0.
  const bool regression =
      value_.rdp_level() == RdpLevel::kLevel1 && value.rdp_level() == RdpLevel::kLevel0;
  const bool releases = !value.pcrop_mode() || (value_.nwrp() & ~value.nwrp()) != 0;
  return releases && !regression;
}

Status EmulatedOptionBytes::Program(const UserOptionBytes& value) {
  if (power_ != nullptr && power_->lost()) return StatusCode::kPowerLost;
  if (Refuses(value)) {
    ++refused_ops_;
    return StatusCode::kWriteProtected;
  }
  const PowerDecision decision =
      power_ != nullptr ? power_->BeginMutatingOp() : PowerDecision::kProceed;
  if (decision == PowerDecision::kCut) return StatusCode::kPowerLost;
  ++program_ops_;

  // Level 1 -> 0: the main flash is mass-erased first (RM0090, "Read protection").
  if (main_flash_ != nullptr && value_.rdp_level() == RdpLevel::kLevel1 &&
      value.rdp_level() == RdpLevel::kLevel0) {
    std::fill(main_flash_->raw().begin(), main_flash_->raw().end(), Flash::kErased);
    OTA_TRY(main_flash_->Sync());
  }
  if (decision == PowerDecision::kTear) {
    std::mt19937_64 rng = OptionTearRng(power_->plan().seed, power_->ops_since_arm());
    const uint64_t phase_draw = rng();
    value_ = Torn(value_, value, phase_draw, rng());
    return StatusCode::kPowerLost;
  }
  value_ = value;
  return Status::Ok();
}

UserOptionBytes EmulatedOptionBytes::Torn(const UserOptionBytes& before,
                                          const UserOptionBytes& after, uint64_t phase_draw,
                                          uint64_t bits_draw) {
  const auto bits = static_cast<uint32_t>(bits_draw);
  if ((phase_draw & 1u) == 0) {
    // Cut while the configuration sector was being erased: erase only moves bits to 1.
    return UserOptionBytes::FromWord(before.word() | bits);
  }
  // Cut while it was being programmed: erased, and only some of the new 0 bits are in.
  return UserOptionBytes::FromWord(UserOptionBytes::kErasedWord & (after.word() | bits));
}

}  // namespace ota::sim
