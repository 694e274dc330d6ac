// Profile `stm32f429-fire`: the seed's layout with its defects fixed.
#include "ota/profile.hpp"

namespace ota {

const BoardProfile kStm32f429Fire = {
    "stm32f429-fire",
    // STM32F429IG internal flash (RM0090 table 6, bank 1 of the 1 MB part): 4x16K, 64K, 7x128K.
    // Programmed at x32 parallelism (VDD 2.7-3.6 V): one 32-bit word per operation.
    {"stm32f4-internal", {{4, 16 * 1024}, {1, 64 * 1024}, {7, 128 * 1024}, {0, 0}}, 4, 0, {0, 0}},
    0x08000000,
    // Winbond W25Q128JV: 16 MB, 4 KB sectors, 256-byte pages, 64 KB and 32 KB block erase.
    {"w25q128", {{4096, 4096}, {0, 0}, {0, 0}, {0, 0}}, 1, 256, {64 * 1024, 32 * 1024}},
    {
        {PartitionId::kLoader, FlashId::kInternal, 0x000000, 32 * 1024},    // sectors 0-1
        {PartitionId::kRunning, FlashId::kInternal, 0x020000, 512 * 1024},  // sectors 5-8
        {PartitionId::kBootStateA, FlashId::kExternal, 0x000000, 4 * 1024},
        {PartitionId::kDownload, FlashId::kExternal, 0x001000, 512 * 1024},
        {PartitionId::kBackup, FlashId::kExternal, 0x081000, 512 * 1024},
        {PartitionId::kBootStateB, FlashId::kExternal, 0x101000, 4 * 1024},
        {PartitionId::kTrustA, FlashId::kInternal, 0x008000, 16 * 1024},  // sector 2
        {PartitionId::kTrustB, FlashId::kInternal, 0x00C000, 16 * 1024},  // sector 3
        // Sector 4 (64 KB at 0x08010000) is left free.
    },
    3,
    // Blocks 0-7 (2048 bits) count; blocks 8-15 stay free for the product (serial, keys).
    0,
    8,
};

}  // namespace ota
