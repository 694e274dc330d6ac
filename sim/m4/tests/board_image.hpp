// The board images from `make firmware`, and a FIRE board's flash laid out as the factory
// programs it: loader.bin at 0x08000000, an app image in the running slot (0x08020000), the
// trust record blank (the loader's first boot records the app as the confirmed image), the
// W25Q128 erased and the option bytes as shipped (docs/DESIGN.md "First boot").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/board_flash.hpp"

namespace ota::sim::m4::testing {

// The directory of loader.bin and appv{1,2}.bin: $OTA_FIRMWARE_DIR, else the build's default.
std::string FirmwareDir();
// The whole file; empty (and a GoogleTest failure naming it) if it cannot be read.
std::vector<uint8_t> LoadImage(const std::string& name);
// sim::m4::FlashFactoryImages (the library's), failing the test if the images do not fit.
void FlashFactoryImages(BoardFlash& flash, const std::vector<uint8_t>& loader,
                        const std::vector<uint8_t>& app);
// The running slot's CPU address.
uint32_t RunningSlotAddress();
uint32_t Le32(const std::vector<uint8_t>& bytes, size_t offset);

}  // namespace ota::sim::m4::testing
