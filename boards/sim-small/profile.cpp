// Profile `sim-small`: the FIRE layout's kinds of geometry scaled down 16x (non-uniform
// internal sectors, 4 KB external sectors, unaligned regions), small enough that a power-cut
// test can cut at every single flash operation of an upgrade.
#include "ota/profile.hpp"

namespace ota {

const BoardProfile kSimSmall = {
    "sim-small",
    {"small-internal", {{4, 1024}, {1, 4 * 1024}, {7, 8 * 1024}, {0, 0}}, 4, 0, {0, 0}},
    0x08000000,
    {"small-spi-nor", {{64, 4096}, {0, 0}, {0, 0}, {0, 0}}, 1, 256, {64 * 1024, 32 * 1024}},
    {
        {PartitionId::kLoader, FlashId::kInternal, 0x0000, 2 * 1024},    // sectors 0-1
        {PartitionId::kRunning, FlashId::kInternal, 0x2000, 32 * 1024},  // sectors 5-8
        {PartitionId::kBootStateA, FlashId::kExternal, 0x00000, 4 * 1024},
        {PartitionId::kDownload, FlashId::kExternal, 0x01000, 32 * 1024},
        {PartitionId::kBackup, FlashId::kExternal, 0x09000, 32 * 1024},
        {PartitionId::kBootStateB, FlashId::kExternal, 0x11000, 4 * 1024},
        {PartitionId::kTrustA, FlashId::kInternal, 0x0800, 1024},  // sector 2
        {PartitionId::kTrustB, FlashId::kInternal, 0x0C00, 1024},  // sector 3
    },
    3,
    0,
    8,
};

}  // namespace ota
