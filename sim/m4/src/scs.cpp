#include "sim/m4/scs.hpp"

#include "sim/m4/memory_map.hpp"

namespace ota::sim::m4 {
namespace {

// Offsets from 0xE000E000.
constexpr uint32_t kActlr = 0x008;
constexpr uint32_t kStCtrl = 0x010;
constexpr uint32_t kStLoad = 0x014;
constexpr uint32_t kStVal = 0x018;
constexpr uint32_t kStCalib = 0x01C;
constexpr uint32_t kIser = 0x100;
constexpr uint32_t kIcer = 0x180;
constexpr uint32_t kIspr = 0x200;
constexpr uint32_t kIcpr = 0x280;
constexpr uint32_t kIabr = 0x300;
constexpr uint32_t kIpr = 0x400;
constexpr uint32_t kIprEnd = kIpr + Nvic::kIrqs;
constexpr uint32_t kCpuidReg = 0xD00;
constexpr uint32_t kIcsr = 0xD04;
constexpr uint32_t kVtor = 0xD08;
constexpr uint32_t kAircr = 0xD0C;
constexpr uint32_t kScr = 0xD10;
constexpr uint32_t kCcr = 0xD14;
constexpr uint32_t kShpr = 0xD18;  // SHPR1-3: priority bytes of exceptions 4-15
constexpr uint32_t kShprEnd = 0xD24;
constexpr uint32_t kShcsr = 0xD24;
constexpr uint32_t kCfsr = 0xD28;
constexpr uint32_t kHfsr = 0xD2C;
constexpr uint32_t kCpacr = 0xD88;
constexpr uint32_t kDemcr = 0xDFC;
constexpr uint32_t kFpccr = 0xF34;

constexpr uint32_t kIcsrPendStSet = 1u << 26;
constexpr uint32_t kIcsrPendStClr = 1u << 25;
constexpr uint32_t kIcsrPendSvSet = 1u << 28;
constexpr uint32_t kIcsrPendSvClr = 1u << 27;
constexpr uint32_t kAircrVectKey = 0x05FAu;
constexpr uint32_t kAircrSysResetReq = 1u << 2;
constexpr uint32_t kCcrReset = 0x00000200;    // STKALIGN
constexpr uint32_t kFpccrReset = 0xC0000000;  // ASPEN, LSPEN

}  // namespace

Scs::Scs(Machine& machine) : Peripheral(machine, "SCS", kScsBase, kScsSize), systick_(machine) {
  Reset();
}

void Scs::Reset() {
  nvic_.Reset();
  systick_.Reset();
  vtor_ = 0;
  aircr_prigroup_ = 0;
  scr_ = 0;
  ccr_ = kCcrReset;
  shcsr_ = 0;
  cpacr_ = 0;
  demcr_ = 0;
  fpccr_ = kFpccrReset;
}

uint32_t Scs::ReadByte(uint32_t offset) {
  if (offset >= kIpr && offset < kIprEnd) return nvic_.priority_byte(16 + offset - kIpr);
  if (offset >= kShpr && offset < kShprEnd) return nvic_.priority_byte(4 + offset - kShpr);
  return Unmodelled(offset, 1, false);
}

void Scs::WriteByte(uint32_t offset, uint8_t value) {
  if (offset >= kIpr && offset < kIprEnd) {
    nvic_.set_priority_byte(16 + offset - kIpr, value);
  } else if (offset >= kShpr && offset < kShprEnd) {
    nvic_.set_priority_byte(4 + offset - kShpr, value);
  } else {
    Unmodelled(offset, 1, true, value);
  }
}

uint32_t Scs::ReadNarrow(uint32_t offset, unsigned size) {
  if (size != 1) return Unmodelled(offset, size, false);
  return ReadByte(offset);
}

void Scs::WriteNarrow(uint32_t offset, unsigned size, uint32_t value) {
  if (size != 1) {
    Unmodelled(offset, size, true, value);
    return;
  }
  WriteByte(offset, static_cast<uint8_t>(value));
}

uint32_t Scs::Read(uint32_t offset) {
  if ((offset >= kIpr && offset < kIprEnd) || (offset >= kShpr && offset < kShprEnd)) {
    uint32_t value = 0;
    for (uint32_t i = 0; i < 4; ++i)
      value |= ReadByte(offset + i) << (8 * i);
    return value;
  }
  for (const uint32_t bank : {kIser, kIcer, kIspr, kIcpr, kIabr}) {
    if (offset >= bank && offset < bank + 32) {
      const uint32_t first = (offset - bank) * 8;
      uint32_t value = 0;
      for (uint32_t bit = 0; bit < 32 && first + bit < Nvic::kIrqs; ++bit) {
        const uint32_t irq = first + bit;
        const bool set = bank == kIser || bank == kIcer ? nvic_.enabled(irq)
                         : bank == kIabr                ? nvic_.active(16 + irq)
                                                        : nvic_.pending(16 + irq);
        if (set) value |= 1u << bit;
      }
      return value;
    }
  }
  switch (offset) {
    case kActlr:
      return 0;
    case kStCtrl:
      return systick_.ReadCtrl();
    case kStLoad:
      return systick_.load();
    case kStVal:
      return systick_.ReadVal();
    case kStCalib:
      return 0x40000000u | 22499u;  // SKEW; 1 ms at HCLK / 8 = 22.5 MHz (STM32F4: 0x4000_57E3)
    case kCpuidReg:
      return kCpuid;
    case kIcsr: {
      uint32_t value = nvic_.current() & 0x1FFu;
      if (nvic_.pending(Nvic::kSysTick)) value |= kIcsrPendStSet;
      if (nvic_.pending(Nvic::kPendSv)) value |= kIcsrPendSvSet;
      return value;
    }
    case kVtor:
      return vtor_;
    case kAircr:
      return (0xFA05u << 16) | (aircr_prigroup_ << 8);
    case kScr:
      return scr_;
    case kCcr:
      return ccr_;
    case kShcsr:
      return shcsr_;
    case kCfsr:
    case kHfsr:
      return 0;  // the board stops on faults instead of recording them
    case kCpacr:
      return cpacr_;
    case kDemcr:
      return demcr_;
    case kFpccr:
      return fpccr_;
    default:
      return Unmodelled(offset, 4, false);
  }
}

void Scs::Write(uint32_t offset, uint32_t value) {
  if ((offset >= kIpr && offset < kIprEnd) || (offset >= kShpr && offset < kShprEnd)) {
    for (uint32_t i = 0; i < 4; ++i)
      WriteByte(offset + i, static_cast<uint8_t>(value >> (8 * i)));
    return;
  }
  for (const uint32_t bank : {kIser, kIcer, kIspr, kIcpr}) {
    if (offset >= bank && offset < bank + 32) {
      const uint32_t first = (offset - bank) * 8;
      for (uint32_t bit = 0; bit < 32 && first + bit < Nvic::kIrqs; ++bit) {
        if ((value >> bit & 1u) == 0) continue;
        const uint32_t irq = first + bit;
        if (bank == kIser) nvic_.SetEnabled(irq, true);
        if (bank == kIcer) nvic_.SetEnabled(irq, false);
        if (bank == kIspr) nvic_.SetPending(16 + irq);
        if (bank == kIcpr) nvic_.ClearPending(16 + irq);
      }
      return;
    }
  }
  switch (offset) {
    case kActlr:
      if (value != 0) Fail("ACTLR " + Hex(value) + " is not modelled");
      return;
    case kStCtrl:
      systick_.WriteCtrl(value);
      return;
    case kStLoad:
      systick_.WriteLoad(value);
      return;
    case kStVal:
      systick_.WriteVal(value);
      return;
    case kIcsr:
      if ((value & kIcsrPendStSet) != 0) nvic_.SetPending(Nvic::kSysTick);
      if ((value & kIcsrPendStClr) != 0) nvic_.ClearPending(Nvic::kSysTick);
      if ((value & kIcsrPendSvSet) != 0) nvic_.SetPending(Nvic::kPendSv);
      if ((value & kIcsrPendSvClr) != 0) nvic_.ClearPending(Nvic::kPendSv);
      if ((value & ~(kIcsrPendStSet | kIcsrPendStClr | kIcsrPendSvSet | kIcsrPendSvClr)) != 0) {
        Fail("ICSR " + Hex(value) + ": NMIPENDSET and VECTCLRACTIVE are not modelled");
      }
      return;
    case kVtor:
      vtor_ = value & 0xFFFFFE00u;  // TBLOFF, 512-byte aligned with 91 IRQs (PM0214 4.3.4)
      if (vtor_ != value) Fail("VTOR " + Hex(value) + " is not 512-byte aligned");
      return;
    case kAircr:
      if ((value >> 16) != kAircrVectKey) {
        Fail("AIRCR written without VECTKEY 0x05FA: the write is ignored (PM0214 4.3.5)");
        return;
      }
      aircr_prigroup_ = (value >> 8) & 7u;
      // With 4 priority bits, PRIGROUP 0-3 leaves them all preempting (PM0214 4.3.5).
      if (aircr_prigroup_ > 3) Fail("AIRCR.PRIGROUP > 3 (sub-priorities) is not modelled");
      if ((value & kAircrSysResetReq) != 0) machine_.RequestReset(ResetCause::kSoftware);
      return;
    case kScr:
      scr_ = value & 0x16u;
      return;
    case kCcr:
      ccr_ = value & 0x31Bu;
      return;
    case kShcsr:
      shcsr_ = value;
      return;
    case kCfsr:
    case kHfsr:
      return;  // write 1 to clear; nothing recorded
    case kCpacr:
      cpacr_ = value & (0xFu << 20);
      return;
    case kDemcr:
      demcr_ = value;
      return;
    case kFpccr:
      fpccr_ = value;
      return;
    default:
      Unmodelled(offset, 4, true, value);
  }
}

Dwt::Dwt(Machine& machine, const Scs& scs)
    : Peripheral(machine, "DWT", kDwtBase, 0x1000), scs_(scs) {
  Reset();
}

void Dwt::Reset() {
  ctrl_ = 0x40000000u;  // NUMCOMP = 4
  base_ = 0;
  start_cycle_ = 0;
}

bool Dwt::Counting() const {
  return scs_.trace_enabled() && (ctrl_ & 1u) != 0;
}

uint32_t Dwt::Read(uint32_t offset) {
  switch (offset) {
    case 0x000:
      return ctrl_;
    case 0x004:
      return Counting() ? base_ + static_cast<uint32_t>(machine_.cycles() - start_cycle_) : base_;
    default:
      return Unmodelled(offset, 4, false);
  }
}

void Dwt::Write(uint32_t offset, uint32_t value) {
  switch (offset) {
    case 0x000: {
      const uint32_t now = Read(0x004);
      ctrl_ = (ctrl_ & 0xF0000000u) | (value & 0x0FFFFFFFu);
      if ((ctrl_ & ~1u & 0x0FFFFFFFu) != 0) Fail("DWT CTRL " + Hex(value) + ": only CYCCNTENA");
      base_ = now;
      start_cycle_ = machine_.cycles();
      return;
    }
    case 0x004:
      base_ = value;
      start_cycle_ = machine_.cycles();
      return;
    default:
      Unmodelled(offset, 4, true, value);
  }
}

}  // namespace ota::sim::m4
