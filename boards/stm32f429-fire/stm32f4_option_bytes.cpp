#include "stm32f4_option_bytes.hpp"

#include "clock.hpp"
#include "stm32f4_regs.hpp"

namespace fire {
namespace {

using namespace reg;  // NOLINT: register names read better unqualified here

// A flash operation started before us (none should be): a word program or a sector erase.
constexpr uint32_t kIdleTimeoutMs = 5000;
// The datasheet gives no figure for erasing and programming the option bytes; the longest
// flash operation it lists is a 128 KB sector erase, 4 s at x32 (DS9405 table 45).
constexpr uint32_t kOptionTimeoutMs = 5000;

bool Busy() {
  return (FLASH().SR & kFlashSrBsy) != 0;
}

// Unlocks FLASH_OPTCR for the lifetime of the object and locks it again on every path. A
// wrong key sequence would lock OPTCR until the next reset (and raise a bus error).
class OptionsUnlocked {
 public:
  OptionsUnlocked() {
    FlashIf& flash = FLASH();
    if ((flash.OPTCR & kFlashOptcrOptlock) != 0) {
      flash.OPTKEYR = kFlashOptKey1;
      flash.OPTKEYR = kFlashOptKey2;
    }
  }
  ~OptionsUnlocked() { FLASH().OPTCR |= kFlashOptcrOptlock; }
  OptionsUnlocked(const OptionsUnlocked&) = delete;
  OptionsUnlocked& operator=(const OptionsUnlocked&) = delete;

  bool ok() const { return (FLASH().OPTCR & kFlashOptcrOptlock) == 0; }
};

}  // namespace

ota::Result<ota::UserOptionBytes> Stm32f4OptionBytes::Read() {
  return ota::UserOptionBytes::FromWord(FLASH().OPTCR);
}

ota::Status Stm32f4OptionBytes::Program(const ota::UserOptionBytes& value) {
  FlashIf& flash = FLASH();
  if (!WaitWhile(Busy, kIdleTimeoutMs)) return ota::StatusCode::kIoError;
  OptionsUnlocked unlocked;
  if (!unlocked.ok()) return ota::StatusCode::kIoError;
  flash.SR = kFlashSrErrors | kFlashSrEop;  // write 1 to clear stale flags
  // The option value first (OPTLOCK stays 0), then OPTSTRT: the interface erases the option
  // bytes and programs them from OPTCR (and OPTCR1).
  flash.OPTCR = value.word();
  flash.OPTCR = value.word() | kFlashOptcrOptstrt;
  Dsb();
  if (!WaitWhile(Busy, kOptionTimeoutMs)) return ota::StatusCode::kTimedOut;
  const uint32_t sr = flash.SR;
  flash.SR = sr & (kFlashSrErrors | kFlashSrEop);
  if ((sr & kFlashSrWrperr) != 0) return ota::StatusCode::kWriteProtected;
  if ((sr & kFlashSrErrors) != 0) return ota::StatusCode::kIoError;
  return ota::Status::Ok();
}

}  // namespace fire
