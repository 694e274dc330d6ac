// Exception entry and return on the Cortex-M4 (PM0214 2.3.7 "Exception entry and return"),
// done by the board around the CPU emulator: Unicorn 2.0.1 has no NVIC, so it never takes an
// interrupt by itself, and its exception return checks a state it does not keep. The core
// stays in Thread mode for the emulator (IPSR reads 0 inside handlers; nothing in the
// firmware reads it); the board keeps the active exceptions (Nvic) and:
// - entry: pushes the basic frame (r0-r3, r12, lr, return address, xPSR), or the extended one
//   (s0-s15, FPSCR too) when CONTROL.FPCA is set, 8-byte aligned (CCR.STKALIGN; xPSR bit 9
//   records the padding), clears FPCA and the IT bits, sets LR to EXC_RETURN and branches to
//   the vector at VTOR + 4 * number;
// - return: a branch to EXC_RETURN (0xFFFFFFxx) reaches no memory, so the board sees the
//   fetch, pops the frame the EXC_RETURN value names and resumes.
// Only the main stack is modelled (CONTROL.SPSEL = 0, as in both images).
#pragma once

#include <unicorn/unicorn.h>

#include <cstdint>
#include <string>

namespace ota::sim::m4 {

// True if `address` is an EXC_RETURN value's fetch address.
inline bool IsExcReturn(uint32_t address) {
  return address >= 0xFFFFFFE0u;
}

// Enters exception `number` with the handler at `vector` (Thumb bit set). `nested`: an
// exception is already active (EXC_RETURN goes back to Handler mode). Empty on success.
std::string EnterException(uc_engine* uc, uint32_t vector, bool nested);
// Returns from the active exception through `exc_return`; `nested` as above, for the check.
std::string ReturnFromException(uc_engine* uc, uint32_t exc_return, bool nested);

}  // namespace ota::sim::m4
