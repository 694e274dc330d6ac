// A FIRE board's flash as the factory programs it (docs/DESIGN.md "First boot"): loader.bin
// at the start of the internal flash (the loader's region), an app image in the running slot
// (0x08020000), everything else of the internal flash erased (the trust record blank: the
// loader's first boot records the app as the confirmed image), the W25Q128 erased, the OTP
// and the option bytes as they are (as shipped on a new board). Written through raw(): not
// counted, not faulted, like a programmer's.
#pragma once

#include <cstdint>
#include <vector>

#include "ota/status.hpp"
#include "sim/board_flash.hpp"

namespace ota::sim::m4 {

// kTooLarge, and nothing written, if `loader` is larger than the loader's region or `app`
// larger than the running slot (kStm32f429Fire's partitions); `flash` must have the
// stm32f429-fire geometry (kInvalidArgument otherwise).
Status FlashFactoryImages(BoardFlash& flash, const std::vector<uint8_t>& loader,
                          const std::vector<uint8_t>& app);

}  // namespace ota::sim::m4
