// The STM32F4's user option bytes as the loader sees them, and the one thing the loader does
// with them: write-protect its own sectors (RM0090, "Option bytes", "Read protection (RDP)",
// "Write protections", "Proprietary code readout protection (PCROP)" and the FLASH_OPTCR
// register for STM32F42xxx/43xxx; docs/firmware.md "Write and readout protection").
//
// The option bytes live in a user configuration sector of their own. One programming
// operation erases that sector and then programs every option byte from FLASH_OPTCR, so the
// loader never changes one bit alone: it programs a whole value equal to the current one
// except for the nWRP bits it clears.
#pragma once

#include <cstdint>

#include "ota/flash.hpp"
#include "ota/profile.hpp"
#include "ota/status.hpp"

namespace ota {

// Read protection (RM0090 "Read protection (RDP)"): 0xAA is level 0, 0xCC level 2, every other
// value level 1.
enum class RdpLevel : uint8_t { kLevel0 = 0, kLevel1 = 1, kLevel2 = 2 };
inline constexpr uint8_t kRdpLevel0 = 0xAA;
inline constexpr uint8_t kRdpLevel2 = 0xCC;
// The level-1 value a production board should be given: no torn option-byte program can turn
// it into 0xAA or 0xCC (see RdpSurvivesTear).
inline constexpr uint8_t kRdpLevel1 = 0xBB;

// nWRP covers sectors 0-11 (bank 1; bank 2's nWRP is in FLASH_OPTCR1 and is never touched).
inline constexpr uint32_t kWrpSectorCount = 12;
inline constexpr uint32_t kWrpSectorsAll = (1u << kWrpSectorCount) - 1;

// The user option bytes in FLASH_OPTCR's layout (STM32F42xxx/43xxx) without
// the OPTLOCK and OPTSTRT control bits: RDP, nWRP[11:0] and the user bits (BOR_LEV, BFB2,
// WDG_SW, nRST_STOP, nRST_STDBY, DB1M, SPRMOD), which the loader preserves untouched.
class UserOptionBytes {
 public:
  static constexpr uint32_t kBorLevMask = 3u << 2;
  static constexpr uint32_t kBfb2 = 1u << 4;
  static constexpr uint32_t kWdgSw = 1u << 5;
  static constexpr uint32_t kNRstStop = 1u << 6;
  static constexpr uint32_t kNRstStdby = 1u << 7;
  static constexpr uint32_t kRdpShift = 8;
  static constexpr uint32_t kRdpMask = 0xFFu << kRdpShift;
  static constexpr uint32_t kNwrpShift = 16;
  static constexpr uint32_t kNwrpMask = kWrpSectorsAll << kNwrpShift;
  static constexpr uint32_t kDb1m = 1u << 30;    // dual-bank organisation of the 1 MB part
  static constexpr uint32_t kSprmod = 1u << 31;  // 1: the nWRP bits select PCROP sectors
  static constexpr uint32_t kUserMask =
      kBorLevMask | kBfb2 | kWdgSw | kNRstStop | kNRstStdby | kDb1m | kSprmod;
  static constexpr uint32_t kOptionMask = kUserMask | kRdpMask | kNwrpMask;  // 0xCFFFFFFC
  // As shipped: FLASH_OPTCR's reset value 0x0FFFAAED without OPTLOCK: level
  // 0, no sector protected, BOR off, software watchdog, no reset on stop/standby, one bank.
  static constexpr uint32_t kFactoryWord = 0x0FFFAAECu;
  // An erased configuration sector: every option bit 1. RDP 0xFF is level 1 ("the default
  // read protection level after option byte erase"), SPRMOD 1 makes every nWRP bit a PCROP
  // sector, DB1M 1 the dual-bank layout.
  static constexpr uint32_t kErasedWord = kOptionMask;

  constexpr UserOptionBytes() = default;
  // Bits outside kOptionMask (OPTLOCK, OPTSTRT, reserved) are dropped.
  static constexpr UserOptionBytes FromWord(uint32_t word) {
    return UserOptionBytes(word & kOptionMask);
  }

  constexpr uint32_t word() const { return word_; }
  constexpr uint8_t rdp() const { return static_cast<uint8_t>(word_ >> kRdpShift); }
  constexpr RdpLevel rdp_level() const {
    return rdp() == kRdpLevel0   ? RdpLevel::kLevel0
           : rdp() == kRdpLevel2 ? RdpLevel::kLevel2
                                 : RdpLevel::kLevel1;
  }
  // Bit i = nWRPi.
  constexpr uint32_t nwrp() const { return (word_ & kNwrpMask) >> kNwrpShift; }
  constexpr uint32_t user() const { return word_ & kUserMask; }
  constexpr bool pcrop_mode() const { return (word_ & kSprmod) != 0; }

  // Sectors (bit i = sector i) whose program and erase the flash interface refuses with
  // WRPERR: nWRPi = 0 in write-protection mode; in PCROP mode nWRPi = 1 marks a PCROP
  // sector, which cannot be programmed or erased either.
  constexpr uint32_t ProtectedSectors() const {
    return pcrop_mode() ? nwrp() : (~nwrp() & kWrpSectorsAll);
  }
  // True if every sector of `sector_mask` is write-protected by its nWRP bit (and not PCROP).
  constexpr bool WriteProtected(uint32_t sector_mask) const {
    return !pcrop_mode() && (nwrp() & sector_mask) == 0;
  }
  // The same value with nWRPi cleared for every sector of `sector_mask`: RDP, the user bits
  // and the other nWRP bits are identical.
  constexpr UserOptionBytes WithWriteProtected(uint32_t sector_mask) const {
    return UserOptionBytes(word_ & ~((sector_mask & kWrpSectorsAll) << kNwrpShift));
  }
  // For set-up: the same value with another RDP byte or other user bits.
  constexpr UserOptionBytes WithRdp(uint8_t rdp) const {
    return UserOptionBytes((word_ & ~kRdpMask) | (uint32_t{rdp} << kRdpShift));
  }
  constexpr UserOptionBytes WithUser(uint32_t user) const {
    return UserOptionBytes((word_ & ~kUserMask) | (user & kUserMask));
  }

  constexpr bool operator==(const UserOptionBytes& other) const { return word_ == other.word_; }
  constexpr bool operator!=(const UserOptionBytes& other) const { return word_ != other.word_; }

 private:
  constexpr explicit UserOptionBytes(uint32_t word) : word_(word) {}
  uint32_t word_ = kFactoryWord;
};

// True if no torn option-byte program that keeps `rdp` can leave an RDP byte of another
// level than 1 or `rdp`'s own: a tear leaves each bit old, erased (1) or newly programmed, so
// a level-1 value whose 1 bits all lie inside 0xAA's or 0xCC's could come back as level 0
// (readout protection gone, no mass erase) or level 2 (irreversible). Level 0 itself is safe
// in this sense: a tear can only raise it to level 1.
constexpr bool RdpSurvivesTear(uint8_t rdp) {
  const auto inside = [](uint8_t value, uint8_t of) { return (value & ~of & 0xFF) == 0; };
  if (rdp == kRdpLevel0 || rdp == kRdpLevel2) return true;
  return !inside(rdp, kRdpLevel0) && !inside(rdp, kRdpLevel2);
}

// The option bytes of the internal flash: the board's FLASH_OPTCR driver, or the emulation.
class OptionBytes {
 public:
  // The option bytes in effect.
  virtual Result<UserOptionBytes> Read() = 0;
  // One option-byte programming operation (OPTSTRT): the configuration sector is erased and
  // `value` programmed; when it returns ok, `value` is in effect for the internal flash.
  // kWriteProtected: the interface refused (WRPERR: RDP level 2, or a PCROP sector or SPRMOD
  // cleared without going to level 0) and nothing changed.
  virtual Status Program(const UserOptionBytes& value) = 0;

 protected:
  ~OptionBytes() = default;  // never deleted through this interface (no heap)
};

// What EnsureWriteProtected found or did. Only kAlreadyProtected and kProtected leave the
// sectors protected; the others wrote nothing and the caller should report them.
enum class WriteProtectResult : uint8_t {
  kAlreadyProtected,  // every sector was protected: nothing written
  kProtected,         // one option-byte program, read back and verified
  kFrozen,            // RDP level 2: the option bytes can never change again
  kPcropMode,         // SPRMOD is set: nWRP selects PCROP sectors, WRP is not available
  kUnsafeRdp,         // the RDP byte is one a torn program could turn into level 0 or 2
};

const char* WriteProtectResultName(WriteProtectResult result);

constexpr bool IsWriteProtected(WriteProtectResult result) {
  return result == WriteProtectResult::kAlreadyProtected ||
         result == WriteProtectResult::kProtected;
}

// Makes sure the sectors of `sector_mask` (bit i = sector i, sectors 0-11 only) are
// write-protected, idempotently and without ever changing RDP or the user bits:
//   1. read the option bytes; already protected: kAlreadyProtected, nothing written;
//   2. RDP level 2, PCROP mode or an RDP byte that fails RdpSurvivesTear: refuse, nothing
//      written (the result says which);
//   3. program the value read with only those nWRP bits cleared (one operation);
//   4. read back: anything but that value is kVerifyFailed.
// A power cut before step 3 completes leaves the option bytes as they were, and the next
// boot does it again; after it completes, the next boot writes nothing. What a cut *during*
// step 3 leaves is the hardware's: see docs/firmware.md.
// Errors: kInvalidArgument (empty mask or a sector above 11), the interface's errors.
Result<WriteProtectResult> EnsureWriteProtected(OptionBytes& option_bytes, uint32_t sector_mask);

// The sectors (bit i = sector i) `partition` covers on `geometry`: kMisaligned if it does not
// start and end on sector boundaries, kOutOfRange past the device or sector 31,
// kInvalidArgument if empty.
Result<uint32_t> SectorMask(const FlashGeometry& geometry, const Partition& partition);
// SectorMask of the loader partition on the internal flash (kInvalidArgument if the profile
// put it on another device).
Result<uint32_t> LoaderSectorMask(const BoardProfile& profile);

}  // namespace ota
