#include "sim/m4/exceptions.hpp"

#include <unicorn/arm.h>

#include "sim/m4/peripheral.hpp"

namespace ota::sim::m4 {
namespace {

constexpr uint32_t kControlSpsel = 1u << 1;
constexpr uint32_t kControlFpca = 1u << 2;
constexpr uint32_t kXpsrAlign = 1u << 9;
constexpr uint32_t kXpsrT = 1u << 24;
constexpr uint32_t kXpsrFlags = 0xF80F0000u;  // N Z C V Q and GE
constexpr uint32_t kBasicFrame = 0x20;
constexpr uint32_t kExtendedFrame = 0x68;
constexpr uint32_t kExcReturnNoFp = 1u << 4;
constexpr uint32_t kExcReturnThread = 1u << 3;
constexpr uint32_t kExcReturnPsp = 1u << 2;

constexpr int kStackedRegs[] = {UC_ARM_REG_R0, UC_ARM_REG_R1,  UC_ARM_REG_R2,
                                UC_ARM_REG_R3, UC_ARM_REG_R12, UC_ARM_REG_LR};

uint32_t Reg(uc_engine* uc, int id) {
  uint32_t value = 0;
  uc_reg_read(uc, id, &value);
  return value;
}

void SetReg(uc_engine* uc, int id, uint32_t value) {
  uc_reg_write(uc, id, &value);
}

bool Store(uc_engine* uc, uint32_t address, uint32_t value) {
  return uc_mem_write(uc, address, &value, 4) == UC_ERR_OK;
}

bool Load(uc_engine* uc, uint32_t address, uint32_t* value) {
  return uc_mem_read(uc, address, value, 4) == UC_ERR_OK;
}

}  // namespace

std::string EnterException(uc_engine* uc, uint32_t vector, bool nested) {
  const uint32_t control = Reg(uc, UC_ARM_REG_CONTROL);
  if ((control & kControlSpsel) != 0) {
    return "exception entry on the process stack (CONTROL.SPSEL = 1) is not modelled";
  }
  if ((vector & 1u) == 0) return "exception vector " + Hex(vector) + " is not a Thumb address";
  const bool fp = (control & kControlFpca) != 0;
  const uint32_t sp = Reg(uc, UC_ARM_REG_SP);
  const uint32_t unaligned = sp - (fp ? kExtendedFrame : kBasicFrame);
  const uint32_t frame = unaligned & ~7u;
  uint32_t xpsr = Reg(uc, UC_ARM_REG_XPSR);
  if (frame != unaligned) xpsr |= kXpsrAlign;
  const uint32_t pc = Reg(uc, UC_ARM_REG_PC);
  bool ok = true;
  for (int i = 0; i < 6; ++i)
    ok = ok && Store(uc, frame + 4 * i, Reg(uc, kStackedRegs[i]));
  ok = ok && Store(uc, frame + 0x18, pc & ~1u) && Store(uc, frame + 0x1C, xpsr);
  if (fp) {
    for (int i = 0; i < 16; ++i)
      ok = ok && Store(uc, frame + 0x20 + 4 * i, Reg(uc, UC_ARM_REG_S0 + i));
    ok = ok && Store(uc, frame + 0x60, Reg(uc, UC_ARM_REG_FPSCR));
  }
  if (!ok) return "exception entry: the stack frame at " + Hex(frame) + " is not writable";
  uint32_t exc_return = nested ? 0xFFFFFFF1u : 0xFFFFFFF9u;
  if (fp) exc_return &= ~kExcReturnNoFp;
  SetReg(uc, UC_ARM_REG_SP, frame);
  SetReg(uc, UC_ARM_REG_LR, exc_return);
  SetReg(uc, UC_ARM_REG_CONTROL, control & ~kControlFpca);
  SetReg(uc, UC_ARM_REG_XPSR, (xpsr & kXpsrFlags) | kXpsrT);
  SetReg(uc, UC_ARM_REG_PC, vector);
  return {};
}

std::string ReturnFromException(uc_engine* uc, uint32_t exc_return, bool nested) {
  if ((exc_return & kExcReturnPsp) != 0) return "EXC_RETURN to the process stack: not modelled";
  const bool to_thread = (exc_return & kExcReturnThread) != 0;
  if (to_thread == nested) {
    return "EXC_RETURN " + Hex(exc_return) + " does not match the active exceptions";
  }
  const bool fp = (exc_return & kExcReturnNoFp) == 0;
  const uint32_t frame = Reg(uc, UC_ARM_REG_SP);
  uint32_t words[8];
  bool ok = true;
  for (int i = 0; i < 8; ++i)
    ok = ok && Load(uc, frame + 4 * i, &words[i]);
  uint32_t fp_words[17] = {};
  if (fp) {
    for (int i = 0; i < 17; ++i)
      ok = ok && Load(uc, frame + 0x20 + 4 * i, &fp_words[i]);
  }
  if (!ok) return "exception return: the stack frame at " + Hex(frame) + " is not readable";
  for (int i = 0; i < 6; ++i)
    SetReg(uc, kStackedRegs[i], words[i]);
  const uint32_t xpsr = words[7];
  if ((xpsr & kXpsrT) == 0) return "exception return to a frame with xPSR.T clear";
  if (fp) {
    for (int i = 0; i < 16; ++i)
      SetReg(uc, UC_ARM_REG_S0 + i, fp_words[i]);
    SetReg(uc, UC_ARM_REG_FPSCR, fp_words[16]);
  }
  uint32_t sp = frame + (fp ? kExtendedFrame : kBasicFrame);
  if ((xpsr & kXpsrAlign) != 0) sp += 4;
  SetReg(uc, UC_ARM_REG_SP, sp);
  uint32_t control = Reg(uc, UC_ARM_REG_CONTROL);
  control = fp ? control | kControlFpca : control & ~kControlFpca;
  SetReg(uc, UC_ARM_REG_CONTROL, control);
  SetReg(uc, UC_ARM_REG_XPSR, xpsr & ~(0x1FFu | kXpsrAlign));  // IPSR stays 0 (see header)
  SetReg(uc, UC_ARM_REG_PC, words[6] | 1u);
  return {};
}

}  // namespace ota::sim::m4
