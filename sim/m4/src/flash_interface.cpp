#include "sim/m4/flash_interface.hpp"

#include <cstring>

#include "ota/option_bytes.hpp"
#include "sim/flash_timing.hpp"
#include "sim/m4/memory_map.hpp"

namespace ota::sim::m4 {
namespace {

constexpr uint32_t kAcr = 0x00;
constexpr uint32_t kKeyr = 0x04;
constexpr uint32_t kOptkeyr = 0x08;
constexpr uint32_t kSr = 0x0C;
constexpr uint32_t kCr = 0x10;
constexpr uint32_t kOptcr = 0x14;
constexpr uint32_t kOptcr1 = 0x18;

constexpr uint32_t kAcrIcen = 1u << 9;
constexpr uint32_t kAcrDcen = 1u << 10;
constexpr uint32_t kAcrIcrst = 1u << 11;
constexpr uint32_t kAcrDcrst = 1u << 12;
constexpr uint32_t kAcrWritable = 0xFu | (1u << 8) | kAcrIcen | kAcrDcen | kAcrIcrst | kAcrDcrst;

constexpr uint32_t kSrClearable = FlashInterface::kSrEop | FlashInterface::kSrOperr |
                                  FlashInterface::kSrWrperr | FlashInterface::kSrPgaerr |
                                  FlashInterface::kSrPgperr | FlashInterface::kSrPgserr |
                                  FlashInterface::kSrRderr;
constexpr uint32_t kSrErrorFlags = FlashInterface::kSrOperr | FlashInterface::kSrWrperr |
                                   FlashInterface::kSrPgaerr | FlashInterface::kSrPgperr |
                                   FlashInterface::kSrPgserr | FlashInterface::kSrRderr;
// OPTCR's option bits and control bits; bits 28-29 are reserved.
constexpr uint32_t kOptcrWritable =
    UserOptionBytes::kOptionMask | FlashInterface::kOptcrLock | FlashInterface::kOptcrStrt;
constexpr uint32_t kOptcr1Reset = 0x0FFF0000u;
constexpr uint32_t kOptcr1Writable = 0x0FFF0000u;

// PSIZE: 0 x8, 1 x16, 2 x32, 3 x64 (RM0090 3.9.7).
uint32_t PsizeBytes(uint32_t cr) {
  return 1u << ((cr & FlashInterface::kCrPsizeMask) >> FlashInterface::kCrPsizeShift);
}

}  // namespace

const char* FlashIfEventName(FlashIfEvent::Kind kind) {
  switch (kind) {
    case FlashIfEvent::Kind::kUnlock:
      return "unlock";
    case FlashIfEvent::Kind::kLock:
      return "lock";
    case FlashIfEvent::Kind::kProgram:
      return "program";
    case FlashIfEvent::Kind::kErase:
      return "erase";
    case FlashIfEvent::Kind::kOptionUnlock:
      return "option-unlock";
    case FlashIfEvent::Kind::kOptionLock:
      return "option-lock";
    case FlashIfEvent::Kind::kOptionProgram:
      return "option-program";
    case FlashIfEvent::Kind::kCacheReset:
      return "cache-reset";
    case FlashIfEvent::Kind::kError:
      return "error";
    case FlashIfEvent::Kind::kViolation:
      return "violation";
  }
  return "?";
}

FlashInterface::FlashInterface(Machine& machine, BoardFlash& flash,
                               std::function<void(uint32_t, uint32_t)> on_change)
    : Peripheral(machine, "FLASH", kFlashIfBase, kPeripheralBlock),
      flash_(flash),
      on_change_(std::move(on_change)) {
  Reset();
}

void FlashInterface::Reset() {
  acr_ = 0;
  sr_ = 0;
  cr_ = kCrLock;
  // Loaded from the option bytes at reset, locked.
  optcr_ = flash_.option_bytes.value().word() | kOptcrLock;
  optcr1_ = kOptcr1Reset;
  key_ = KeyState::kNone;
  opt_key_ = KeyState::kNone;
  busy_ = false;
  busy_until_ns_ = 0;
  end_observed_ = true;
}

void FlashInterface::Record(FlashIfEvent::Kind kind, std::string note, uint32_t address,
                            uint32_t size, uint32_t value) {
  FlashIfEvent e;
  e.kind = kind;
  e.cycle = machine_.cycles();
  e.pc = machine_.pc();
  e.address = address;
  e.size = size;
  e.cr = cr_;
  e.value = value;
  e.note = std::move(note);
  events_.push_back(std::move(e));
}

std::vector<std::string> FlashInterface::Violations() const {
  std::vector<std::string> out;
  for (const FlashIfEvent& e : events_) {
    if (e.kind == FlashIfEvent::Kind::kViolation) out.push_back(e.note + " at pc " + Hex(e.pc));
  }
  return out;
}

void FlashInterface::Error(uint32_t sr_bit, const std::string& note) {
  sr_ |= sr_bit;
  Record(FlashIfEvent::Kind::kError, note);
}

bool FlashInterface::busy() {
  Update();
  return busy_;
}

void FlashInterface::Update() {
  if (busy_ && machine_.now_ns() >= busy_until_ns_) {
    busy_ = false;
    cr_ &= ~kCrStrt;
    if ((cr_ & kCrEopie) != 0) sr_ |= kSrEop;  // EOP only with EOPIE (RM0090 3.9.5)
  }
}

void FlashInterface::StallUntilIdle(const char* what) {
  Update();
  if (!busy_) return;
  Violation(std::string(what) + " while BSY: the core stalls until the operation ends");
  machine_.Stall(busy_until_ns_ - machine_.now_ns());
  Update();
}

void FlashInterface::BeginBusy(uint64_t us, uint32_t /*settle_flags*/) {
  // RM0090 3.9.5: the error flags stay set until the firmware writes 1 to them; the
  // programming and erase sequences of 3.5.3-3.5.4 do not make a set flag block the next
  // operation, so the part starts it (as here). A driver that starts one while a flag from
  // an earlier error is still set never cleared, or never checked, that error: recorded.
  if ((sr_ & kSrErrorFlags) != 0) {
    Violation("an operation started while FLASH_SR error flags " + Hex(sr_ & kSrErrorFlags) +
              " from an earlier error were still set (never cleared by writing 1)");
  }
  if (!end_observed_) {
    Violation(
        "an operation started before the firmware saw the previous one end (SR.BSY "
        "never read as 0)");
  }
  busy_ = true;
  busy_until_ns_ = machine_.now_ns() + us * 1000;
  end_observed_ = false;
}

FlashAnswer AnswerFor(StatusCode code, FlashTarget target) {
  switch (code) {
    case StatusCode::kOk:
      return FlashAnswer::kDone;
    case StatusCode::kPowerLost:
      return FlashAnswer::kPowerLost;
    case StatusCode::kWriteProtected:
      // nWRP covers main-flash sectors (and the option bytes refuse losing protection); the
      // OTP has no write protection of its own.
      return target == FlashTarget::kOtp ? FlashAnswer::kNotModelled : FlashAnswer::kWrperr;
    case StatusCode::kFailedPrecondition:
      // Only EmulatedOtp says it (a block whose lock byte is 0x00: RM0090 3.7, the block
      // "cannot be programmed"): from another device it is not the OTP's lock.
      return target == FlashTarget::kOtp ? FlashAnswer::kLockedOtpBlock : FlashAnswer::kNotModelled;
    default:
      return FlashAnswer::kNotModelled;
  }
}

bool FlashInterface::Outcome(const Status& status, const std::string& what, FlashTarget target) {
  switch (AnswerFor(status.code(), target)) {
    case FlashAnswer::kDone:
      return true;
    case FlashAnswer::kWrperr:
      Error(kSrWrperr, what + ": sector write-protected (WRPERR)");
      return false;
    case FlashAnswer::kPowerLost:
      machine_.PowerLost();
      return false;
    case FlashAnswer::kLockedOtpBlock:
      Record(FlashIfEvent::Kind::kError, what + ": locked OTP block, ignored");
      return false;
    case FlashAnswer::kNotModelled:
      break;
  }
  Fail(what + ": the flash model refused it (" + status.name() +
       "); the part's result is undefined");
  return false;
}

uint32_t FlashInterface::Read(uint32_t offset) {
  Update();
  switch (offset) {
    case kAcr:
      return acr_;
    case kKeyr:
    case kOptkeyr:
      return 0;  // write-only
    case kSr: {
      if (!busy_) end_observed_ = true;
      const uint32_t sr = sr_ | (busy_ ? kSrBsy : 0);
      if (busy_ && fast_busy_wait_) {
        waited_ns_ += busy_until_ns_ - machine_.now_ns();
        machine_.Stall(busy_until_ns_ - machine_.now_ns());
      }
      return sr;
    }
    case kCr:
      return cr_;
    case kOptcr:
      return optcr_;
    case kOptcr1:
      return optcr1_;
    default:
      return Unmodelled(offset, 4, false);
  }
}

void FlashInterface::Write(uint32_t offset, uint32_t value) {
  Update();
  switch (offset) {
    case kAcr:
      if ((value & kAcrIcrst) != 0 && (acr_ & kAcrIcen) != 0 && (value & kAcrIcen) != 0) {
        Violation("ACR.ICRST written with the instruction cache enabled (RM0090 3.5.2)");
      }
      if ((value & kAcrDcrst) != 0 && (acr_ & kAcrDcen) != 0 && (value & kAcrDcen) != 0) {
        Violation("ACR.DCRST written with the data cache enabled (RM0090 3.5.2)");
      }
      if ((value & (kAcrIcrst | kAcrDcrst)) != 0) Record(FlashIfEvent::Kind::kCacheReset);
      acr_ = value & kAcrWritable;
      return;
    case kKeyr:
      if ((cr_ & kCrLock) == 0) {
        Fail(
            "FLASH_KEYR written while FLASH_CR is unlocked: a wrong key sequence (RM0090 "
            "3.5.1) is a bus error");
      } else if (key_ == KeyState::kNone && value == kKey1) {
        key_ = KeyState::kKey1;
      } else if (key_ == KeyState::kKey1 && value == kKey2) {
        key_ = KeyState::kNone;
        cr_ &= ~kCrLock;
        Record(FlashIfEvent::Kind::kUnlock);
      } else {
        Fail("wrong FLASH_KEYR sequence (" + Hex(value) +
             "): a bus error, FLASH_CR locked until reset (RM0090 3.5.1)");
      }
      return;
    case kOptkeyr:
      if ((optcr_ & kOptcrLock) == 0) {
        Fail("FLASH_OPTKEYR written while FLASH_OPTCR is unlocked: a wrong key sequence");
      } else if (opt_key_ == KeyState::kNone && value == kOptKey1) {
        opt_key_ = KeyState::kKey1;
      } else if (opt_key_ == KeyState::kKey1 && value == kOptKey2) {
        opt_key_ = KeyState::kNone;
        optcr_ &= ~kOptcrLock;
        Record(FlashIfEvent::Kind::kOptionUnlock);
      } else {
        Fail("wrong FLASH_OPTKEYR sequence (" + Hex(value) +
             "): a bus error, FLASH_OPTCR locked until reset (RM0090 3.6.2)");
      }
      return;
    case kSr:
      sr_ &= ~(value & kSrClearable);
      return;
    case kCr:
      WriteCr(value);
      return;
    case kOptcr:
      WriteOptcr(value);
      return;
    case kOptcr1:
      if ((optcr_ & kOptcrLock) != 0) {
        Violation("FLASH_OPTCR1 written while OPTLOCK is set: ignored");
        return;
      }
      optcr1_ = value & kOptcr1Writable;
      return;
    default:
      Unmodelled(offset, 4, true, value);
  }
}

void FlashInterface::WriteCr(uint32_t value) {
  if ((cr_ & kCrLock) != 0) {
    // Writing LOCK again to a locked register changes nothing and breaks no rule.
    if ((value & ~kCrLock) != 0) {
      Violation("FLASH_CR written (" + Hex(value) + ") while locked: ignored");
    }
    return;
  }
  StallUntilIdle("FLASH_CR written");
  cr_ = (value & ~kCrStrt) | (cr_ & kCrStrt);
  if ((value & kCrLock) != 0) {
    cr_ = kCrLock | (cr_ & ~kCrStrt);
    Record(FlashIfEvent::Kind::kLock);
    return;
  }
  if ((value & (kCrMer | kCrMer1)) != 0) {
    Fail("mass erase (CR.MER/MER1) is not modelled");
    return;
  }
  if ((value & kCrStrt) != 0) StartErase();
}

void FlashInterface::StartErase() {
  if ((cr_ & kCrSer) == 0) {
    Violation("CR.STRT without SER or MER: nothing to start");
    return;
  }
  if ((cr_ & kCrPg) != 0) {
    Error(kSrPgserr, "CR.STRT with both PG and SER set (PGSERR)");
    return;
  }
  const uint32_t snb = (cr_ & kCrSnbMask) >> kCrSnbShift;
  const Result<SectorInfo> sector = flash_.internal.geometry().SectorByIndex(snb);
  if (!sector.ok()) {
    Fail("CR.SNB " + std::to_string(snb) + ": no such sector in the " +
         std::to_string(flash_.internal.size() / 1024) + " KB single-bank layout");
    return;
  }
  const uint32_t psize = PsizeBytes(cr_);
  const std::string what = "erase of sector " + std::to_string(snb);
  if (psize != 4) {
    Violation(what + " with PSIZE x" + std::to_string(psize * 8) +
              ": this 3.3 V board erases at x32 (RM0090 3.5.4, table 16)");
  }
  const Status status = flash_.internal.Erase(sector->offset, sector->size);
  on_change_(sector->offset, sector->size);  // a torn erase changed cells too
  if (!Outcome(status, what, FlashTarget::kMainFlash)) return;
  FlashIfEvent e;
  e.kind = FlashIfEvent::Kind::kErase;
  e.cycle = machine_.cycles();
  e.pc = machine_.pc();
  e.address = kFlashBase + sector->offset;
  e.size = sector->size;
  e.sector = snb;
  e.cr = cr_;
  events_.push_back(std::move(e));
  cr_ |= kCrStrt;
  BeginBusy(EraseUs(kStm32f4InternalTiming, sector->size, timing_), 0);
}

void FlashInterface::MemoryWrite(uint32_t address, unsigned size, uint32_t value) {
  const bool otp = address >= kOtpBase && address < kOtpBase + kOtpPage;
  const std::string what = std::to_string(size * 8) + "-bit store of " + Hex(value) + " to " +
                           (otp ? "OTP " : "flash ") + Hex(address);
  if ((cr_ & kCrLock) != 0 || (cr_ & kCrPg) == 0 || (cr_ & kCrSer) != 0) {
    Error(kSrPgserr, what + " without CR.PG (or locked, or with SER): PGSERR");
    return;
  }
  StallUntilIdle("flash store");
  const uint32_t psize = PsizeBytes(cr_);
  if (size != psize) {
    Error(kSrPgperr, what + " with PSIZE x" + std::to_string(psize * 8) + ": PGPERR");
    return;
  }
  if (address % size != 0) {
    Error(kSrPgaerr, what + ": misaligned, PGAERR");
    return;
  }
  if (psize != 4) {
    Fail(what + ": programming at x" + std::to_string(psize * 8) +
         " is not modelled (the emulated flash programs 32-bit words)");
    return;
  }
  // RM0090 3.5.3 (note to "Standard programming"): successive programs may change bits from
  // 1 to 0 without an erase; writing a 1 needs an erase. The F42x sets no error flag for it
  // (its SR has no PGERR/"not erased" bit, 3.9.5): the cell keeps its 0 and the word reads
  // back different from what was stored. A driver that relies on it is wrong: recorded.
  const uint8_t* old = otp ? &flash_.otp.cells().raw()[address - kOtpBase]
                           : &flash_.internal.raw()[address - kFlashBase];
  uint32_t old_word;
  std::memcpy(&old_word, old, sizeof(old_word));
  if ((old_word & value) != value) {
    Violation(what + " over " + Hex(old_word) +
              ": a 1 programmed over a 0 stays 0 (RM0090 3.5.3: only an erase sets bits; no "
              "error flag)");
  }
  // The cells get the AND (the emulated flash itself, stricter for the host ports, refuses
  // a 1 over a 0 instead: hand it what the part leaves).
  const uint32_t cells = old_word & value;
  uint8_t bytes[4];
  std::memcpy(bytes, &cells, sizeof(bytes));  // little-endian host, as the M4
  Status status;
  if (otp) {
    status = flash_.otp.Program(address - kOtpBase, ConstByteSpan(bytes, 4));
  } else {
    status = flash_.internal.Program(address - kFlashBase, ConstByteSpan(bytes, 4));
  }
  if (!otp) on_change_(address - kFlashBase, 4);  // a torn program changed cells too
  if (!Outcome(status, what, otp ? FlashTarget::kOtp : FlashTarget::kMainFlash)) return;
  Record(FlashIfEvent::Kind::kProgram, {}, address, size, value);
  BeginBusy(ProgramUs(kStm32f4InternalTiming, timing_), 0);
}

void FlashInterface::WriteOptcr(uint32_t value) {
  if ((optcr_ & kOptcrLock) != 0) {
    if ((value & ~kOptcrLock) != (optcr_ & ~kOptcrLock & kOptcrWritable)) {
      Violation("FLASH_OPTCR written (" + Hex(value) + ") while OPTLOCK is set: ignored");
    }
    return;
  }
  StallUntilIdle("FLASH_OPTCR written");
  optcr_ = value & kOptcrWritable & ~kOptcrStrt;
  if ((value & kOptcrLock) != 0) {
    Record(FlashIfEvent::Kind::kOptionLock);
    return;
  }
  if ((value & kOptcrStrt) == 0) return;
  const UserOptionBytes wanted = UserOptionBytes::FromWord(value);
  const Status status = flash_.option_bytes.Program(wanted);
  if (!Outcome(status, "option-byte program of " + Hex(wanted.word()), FlashTarget::kOptionBytes)) {
    return;
  }
  Record(FlashIfEvent::Kind::kOptionProgram, {}, 0, 0, wanted.word());
  BeginBusy(EraseUs(kStm32f4InternalTiming, 16 * 1024, timing_), 0);
}

}  // namespace ota::sim::m4
