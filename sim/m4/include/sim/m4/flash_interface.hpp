// The STM32F4 flash interface (RM0090 section 3, registers 3.9): FLASH_ACR, KEYR, OPTKEYR, SR,
// CR, OPTCR, OPTCR1, driving the board's emulated internal flash, OTP area and option bytes
// (sim::BoardFlash). The CPU's stores into main flash and the OTP area come here too: with
// CR.PG set they are programs, otherwise errors, as on the part.
//
// What the part does, and so the model:
// - FLASH_CR starts locked; KEY1 then KEY2 written to KEYR unlock it. Any other sequence is a
//   bus error that keeps FLASH_CR locked until reset: the run stops (the real core would take
//   a bus fault). A write to CR while it is locked changes nothing (recorded as a violation).
// - Program: CR.PG, then a store of the size PSIZE gives (x32 on this 3.3 V board). A store
//   of another size is PGPERR, a misaligned one PGAERR, a store without PG (or with SER) or
//   while locked PGSERR, into a write-protected sector WRPERR: nothing is programmed.
// - The SR error flags (PGAERR, PGPERR, PGSERR, WRPERR; OPERR and RDERR are never set: no
//   ERRIE interrupt, no PCROP read) stay set until the firmware writes 1 to them (RM0090
//   3.9.5). A new operation still starts (RM0090's sequences do not block it), but starting
//   one while a flag from an earlier error is set is recorded: the driver lost that error.
// - A store that programs a 1 over a 0 leaves the 0 (RM0090 3.5.3), no error flag: recorded.
// - Erase: CR.SER and SNB, then STRT.
// - SR.BSY stays set for the time sim::kStm32f4InternalTiming gives the operation (typical,
//   or the maximum with set_timing),
//   counted in emulated time; EOP is set at the end if CR.EOPIE is. A store or a CR write
//   while BSY is set stalls the core until the operation ends (RM0090 3.5.3).
// - OPTCR: OPTKEYR's two keys unlock it, OPTSTRT programs the option bytes (BSY for a 16 KB
//   sector erase: the part erases the user configuration sector, then programs it).
// Every operation, unlock, lock and broken rule is recorded in events() for the tests.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/board_flash.hpp"
#include "sim/m4/peripheral.hpp"

namespace ota::sim::m4 {

struct FlashIfEvent {
  enum class Kind {
    kUnlock,         // KEY1, KEY2: FLASH_CR unlocked
    kLock,           // CR.LOCK written
    kProgram,        // a store programmed `size` bytes at `address`
    kErase,          // sector `sector` erased
    kOptionUnlock,   // OPTKEY1, OPTKEY2: FLASH_OPTCR unlocked
    kOptionLock,     // OPTCR.OPTLOCK written
    kOptionProgram,  // OPTSTRT: option bytes `value` programmed
    kCacheReset,     // ACR.ICRST or DCRST written
    kError,          // an SR error flag set by a refused store or start (`note` says which)
    kViolation,      // a rule of RM0090 broken that the part tolerates (`note` says which)
  };
  Kind kind = Kind::kViolation;
  uint64_t cycle = 0;
  uint32_t pc = 0;
  uint32_t address = 0;  // program: the CPU address; erase: the sector's CPU address
  uint32_t size = 0;     // program: bytes per store; erase: sector bytes
  uint32_t sector = 0;
  uint32_t cr = 0;  // FLASH_CR when it happened
  uint32_t value = 0;
  std::string note;
};
const char* FlashIfEventName(FlashIfEvent::Kind kind);

// What the flash interface programs or erases, and how the part answers each status of the
// emulated devices there (FlashInterface::Answer): the mapping is exact per target, so a
// status of one device never passes for another's rule.
enum class FlashTarget { kMainFlash, kOtp, kOptionBytes };
enum class FlashAnswer {
  kDone,            // kOk
  kWrperr,          // kWriteProtected: WRPERR set, nothing changed (main flash, option bytes)
  kPowerLost,       // kPowerLost: the run ends
  kLockedOtpBlock,  // kFailedPrecondition from the OTP only: its lock byte is 0x00, ignored
  kNotModelled,     // anything else: the part's result is undefined, the run stops
};
FlashAnswer AnswerFor(StatusCode code, FlashTarget target);

class FlashInterface final : public Peripheral {
 public:
  // FLASH_CR bits (RM0090 3.9.7 for STM32F42xxx/43xxx).
  static constexpr uint32_t kCrPg = 1u << 0;
  static constexpr uint32_t kCrSer = 1u << 1;
  static constexpr uint32_t kCrMer = 1u << 2;
  static constexpr uint32_t kCrSnbShift = 3;
  static constexpr uint32_t kCrSnbMask = 0x1Fu << 3;
  static constexpr uint32_t kCrPsizeShift = 8;
  static constexpr uint32_t kCrPsizeMask = 3u << 8;
  static constexpr uint32_t kCrMer1 = 1u << 15;
  static constexpr uint32_t kCrStrt = 1u << 16;
  static constexpr uint32_t kCrEopie = 1u << 24;
  static constexpr uint32_t kCrErrie = 1u << 25;
  static constexpr uint32_t kCrLock = 1u << 31;
  // FLASH_SR.
  static constexpr uint32_t kSrEop = 1u << 0;
  static constexpr uint32_t kSrOperr = 1u << 1;
  static constexpr uint32_t kSrWrperr = 1u << 4;
  static constexpr uint32_t kSrPgaerr = 1u << 5;
  static constexpr uint32_t kSrPgperr = 1u << 6;
  static constexpr uint32_t kSrPgserr = 1u << 7;
  static constexpr uint32_t kSrRderr = 1u << 8;
  static constexpr uint32_t kSrBsy = 1u << 16;
  static constexpr uint32_t kKey1 = 0x45670123u;
  static constexpr uint32_t kKey2 = 0xCDEF89ABu;
  static constexpr uint32_t kOptKey1 = 0x08192A3Bu;
  static constexpr uint32_t kOptKey2 = 0x4C5D6E7Fu;
  static constexpr uint32_t kOptcrLock = 1u << 0;
  static constexpr uint32_t kOptcrStrt = 1u << 1;

  // `on_change(offset, len)`: the internal flash's cells changed there (the board copies
  // them into the CPU's view).
  FlashInterface(Machine& machine, BoardFlash& flash,
                 std::function<void(uint32_t, uint32_t)> on_change);

  void Reset() override;
  uint32_t Read(uint32_t offset) override;
  void Write(uint32_t offset, uint32_t value) override;

  // A CPU store of `size` bytes at `address`, in main flash or the OTP area.
  void MemoryWrite(uint32_t address, unsigned size, uint32_t value);
  // ACR.LATENCY: the wait states the firmware configured.
  uint32_t latency() const { return acr_ & 0xFu; }
  bool busy();

  // Fast waiting (off by default): a read of SR that finds BSY set stalls the core until the
  // operation ends, as a core fetching its polling loop from the bank being written does on
  // the part (RM0090 3.5.3), so the firmware sees BSY set once, then clear, and the emulated
  // time is the same. The power-cut sweep uses it to skip the millions of polls of an erase.
  void set_fast_busy_wait(bool on) { fast_busy_wait_ = on; }
  // Emulated time skipped that way.
  uint64_t waited_ns() const { return waited_ns_; }
  // BSY for the typical time (default) or the maximum of each operation (DS9405's flash
  // table: word program 100 us, 16/64/128 KB sector 0.5/1.1/2 s at x32): the drivers'
  // timeouts must cover the maximum.
  void set_timing(FlashTimingCase timing) { timing_ = timing; }

  const std::vector<FlashIfEvent>& events() const { return events_; }
  void ClearEvents() { events_.clear(); }
  // The violations among events(), as text.
  std::vector<std::string> Violations() const;

 private:
  enum class KeyState { kNone, kKey1 };

  void Record(FlashIfEvent::Kind kind, std::string note = {}, uint32_t address = 0,
              uint32_t size = 0, uint32_t value = 0);
  void Violation(const std::string& note) { Record(FlashIfEvent::Kind::kViolation, note); }
  void Error(uint32_t sr_bit, const std::string& note);
  // Ends the operation under way if its time is up.
  void Update();
  // A store or CR write while BSY: the core waits for the end of the operation.
  void StallUntilIdle(const char* what);
  void BeginBusy(uint64_t us, uint32_t settle_flags);
  void WriteCr(uint32_t value);
  void StartErase();
  void WriteOptcr(uint32_t value);
  // The model's answer to an operation: true if it was carried out.
  bool Outcome(const Status& status, const std::string& what, FlashTarget target);

  BoardFlash& flash_;
  std::function<void(uint32_t, uint32_t)> on_change_;
  uint32_t acr_ = 0;
  uint32_t sr_ = 0;
  uint32_t cr_ = kCrLock;
  uint32_t optcr_ = 0;
  uint32_t optcr1_ = 0;
  KeyState key_ = KeyState::kNone;
  KeyState opt_key_ = KeyState::kNone;
  bool busy_ = false;
  uint64_t busy_until_ns_ = 0;
  // The last operation's end was seen by the firmware (SR read with BSY clear).
  bool end_observed_ = true;
  bool fast_busy_wait_ = false;
  uint64_t waited_ns_ = 0;
  FlashTimingCase timing_ = FlashTimingCase::kTypical;
  std::vector<FlashIfEvent> events_;
};

}  // namespace ota::sim::m4
