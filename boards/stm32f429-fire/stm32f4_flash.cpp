#include "stm32f4_flash.hpp"

#include <cstring>

#include "clock.hpp"
#include "ota/option_bytes.hpp"
#include "ota/profile.hpp"
#include "stm32f4_regs.hpp"

namespace fire {
namespace {

using namespace reg;  // NOLINT: register names read better unqualified here

constexpr uint32_t kBase = 0x08000000;
// Datasheet DS9405 table 45 maximums at x32: word program 100 us, 128 KB sector 4 s.
// Code runs from this flash, so the CPU mostly stalls until the operation ends anyway.
constexpr uint32_t kProgramTimeoutMs = 2;
constexpr uint32_t kEraseTimeoutMs = 5000;

volatile uint32_t* Word(uint32_t cpu_address) {
  return reinterpret_cast<volatile uint32_t*>(cpu_address);
}

// Unlocks FLASH_CR for the lifetime of the object and locks it again on every path.
class Unlocked {
 public:
  Unlocked() {
    FlashIf& flash = FLASH();
    if ((flash.CR & kFlashCrLock) != 0) {
      flash.KEYR = kFlashKey1;
      flash.KEYR = kFlashKey2;
    }
    flash.SR = kFlashSrErrors | kFlashSrEop;  // write 1 to clear stale flags
  }
  ~Unlocked() {
    FLASH().CR = kFlashCrLock;
    FlushCaches();
  }
  Unlocked(const Unlocked&) = delete;
  Unlocked& operator=(const Unlocked&) = delete;

  bool ok() const { return (FLASH().CR & kFlashCrLock) == 0; }

 private:
  // The ART caches are not updated by program/erase: reset them so no stale line is read
  // back (RM0090 3.5.2).
  static void FlushCaches() {
    FlashIf& flash = FLASH();
    const uint32_t on = flash.ACR & (kFlashAcrIcen | kFlashAcrDcen);
    flash.ACR &= ~(kFlashAcrIcen | kFlashAcrDcen);
    flash.ACR |= kFlashAcrIcrst | kFlashAcrDcrst;
    flash.ACR &= ~(kFlashAcrIcrst | kFlashAcrDcrst);
    flash.ACR |= on;
  }
};

// Waits for BSY to clear, then maps the error flags: WRPERR (a write-protected sector) to
// kWriteProtected, the others (PGSERR, PGPERR, PGAERR, OPERR, RDERR) to kIoError.
ota::Status WaitDone(uint32_t timeout_ms) {
  FlashIf& flash = FLASH();
  if (!WaitWhile([&] { return (flash.SR & kFlashSrBsy) != 0; }, timeout_ms)) {
    return ota::StatusCode::kIoError;
  }
  const uint32_t sr = flash.SR;
  flash.SR = sr & (kFlashSrErrors | kFlashSrEop);
  if ((sr & kFlashSrWrperr) != 0) return ota::StatusCode::kWriteProtected;
  return (sr & kFlashSrErrors) != 0 ? ota::StatusCode::kIoError : ota::StatusCode::kOk;
}

// kWriteProtected if [addr, addr + len) touches a sector the option bytes protect (nWRP, or
// PCROP), checked before anything is written: the hardware would refuse only that sector's
// part with WRPERR, after erasing or programming the ones before it.
ota::Status CheckNotProtected(const ota::FlashGeometry& geometry, uint32_t addr, size_t len) {
  const uint32_t protected_sectors =
      ota::UserOptionBytes::FromWord(FLASH().OPTCR).ProtectedSectors();
  if (protected_sectors == 0) return ota::Status::Ok();
  for (uint32_t pos = addr; pos < addr + len;) {
    OTA_TRY_ASSIGN(const ota::SectorInfo sector, geometry.SectorAt(pos));
    if (sector.index < 32 && ((protected_sectors >> sector.index) & 1u) != 0) {
      return ota::StatusCode::kWriteProtected;
    }
    pos = sector.offset + sector.size;
  }
  return ota::Status::Ok();
}

uint32_t LoadWord(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof(w));  // `data` need not be word-aligned
  return w;
}

}  // namespace

ota::Status ProgramWords(uint32_t cpu_address, ota::ConstByteSpan data) {
  // The hardware would happily AND new bits into old ones: refuse like the emulator does,
  // before anything is written.
  for (size_t i = 0; i < data.size(); i += 4) {
    const uint32_t want = LoadWord(&data[i]);
    if ((*Word(cpu_address + static_cast<uint32_t>(i)) & want) != want) {
      return ota::StatusCode::kNotErased;
    }
  }
  Unlocked unlocked;
  if (!unlocked.ok()) return ota::StatusCode::kIoError;
  FlashIf& flash = FLASH();
  flash.CR = kFlashCrPsizeX32 | kFlashCrPg;  // x32 parallelism: VDD is 3.3 V on this board
  for (size_t i = 0; i < data.size(); i += 4) {
    *Word(cpu_address + static_cast<uint32_t>(i)) = LoadWord(&data[i]);
    Dsb();
    OTA_TRY(WaitDone(kProgramTimeoutMs));
  }
  flash.CR = 0;
  return ota::Status::Ok();
}

Stm32f4Flash::Stm32f4Flash() : ota::Flash(ota::kStm32f429Fire.internal) {}

ota::Status Stm32f4Flash::DoRead(uint32_t addr, ota::ByteSpan out) {
  std::memcpy(out.data(), reinterpret_cast<const void*>(kBase + addr), out.size());
  return ota::Status::Ok();
}

ota::Status Stm32f4Flash::DoProgram(uint32_t addr, ota::ConstByteSpan data) {
  OTA_TRY(CheckNotProtected(geometry(), addr, data.size()));
  return ProgramWords(kBase + addr, data);
}

ota::Status Stm32f4Flash::DoErase(uint32_t addr, uint32_t len) {
  OTA_TRY(CheckNotProtected(geometry(), addr, len));
  Unlocked unlocked;
  if (!unlocked.ok()) return ota::StatusCode::kIoError;
  FlashIf& flash = FLASH();
  // The base class checked that both ends are sector boundaries: erase each sector once.
  for (uint32_t pos = addr; pos < addr + len;) {
    OTA_TRY_ASSIGN(const ota::SectorInfo sector, geometry().SectorAt(pos));
    flash.CR = kFlashCrPsizeX32 | kFlashCrSer | (sector.index << kFlashCrSnbShift);
    flash.CR |= kFlashCrStrt;
    OTA_TRY(WaitDone(kEraseTimeoutMs));
    pos = sector.offset + sector.size;
  }
  flash.CR = 0;
  return ota::Status::Ok();
}

}  // namespace fire
