// The STM32F429's user option bytes through FLASH_OPTCR (RM0090, "Option bytes" and
// "Programming user option bytes"): the board's ota::OptionBytes, for the loader's
// EnsureWriteProtected.
#pragma once

#include "ota/option_bytes.hpp"

namespace fire {

class Stm32f4OptionBytes final : public ota::OptionBytes {
 public:
  // FLASH_OPTCR as loaded at reset or by the last completed program.
  ota::Result<ota::UserOptionBytes> Read() override;
  // Unlocks OPTCR (OPTKEYR), waits for no flash operation, writes `value`, sets OPTSTRT and
  // waits (bounded) for the erase and program of the option bytes to end, then locks OPTCR
  // again on every path. kWriteProtected: WRPERR (level 2, or a PCROP release); kIoError:
  // still busy, the unlock failed, another error flag; kTimedOut: BSY did not clear.
  // FLASH_OPTCR1 (bank 2's nWRP) is left as it is and reprogrammed with its own value.
  ota::Status Program(const ota::UserOptionBytes& value) override;
};

}  // namespace fire
