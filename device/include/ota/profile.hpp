// A board profile: the flash devices and where each partition lives, in one table.
// Another layout is another profile, not a code change.
#pragma once

#include <cstdint>

#include "ota/flash.hpp"

namespace ota {

enum class FlashId : uint8_t { kInternal = 0, kExternal = 1 };
inline constexpr int kFlashCount = 2;

enum class PartitionId : uint8_t {
  kLoader = 0,  // internal: the loader itself
  kRunning,     // internal: the slot the app runs from (execute in place)
  kBootStateA,  // external: boot state copy A (the seed's "flag")
  kDownload,    // external: where the app stages a package
  kBackup,      // external: the loader's copy of the running image during an upgrade
  kBootStateB,  // external: boot state copy B (the seed's "flag backup")
};
inline constexpr int kPartitionCount = 6;

struct Partition {
  PartitionId id;
  FlashId flash;
  uint32_t offset;  // from the start of the flash device
  uint32_t size;
};

struct BoardProfile {
  const char* name;
  FlashGeometry internal;
  uint32_t internal_base;  // CPU address of internal offset 0 (0x08000000 on STM32)
  FlashGeometry external;
  Partition partitions[kPartitionCount];  // indexed by PartitionId
  uint32_t trial_boots;  // boots a new image gets to be confirmed before the loader reverts

  const Partition& partition(PartitionId id) const { return partitions[static_cast<int>(id)]; }
  const FlashGeometry& geometry(FlashId id) const {
    return id == FlashId::kInternal ? internal : external;
  }
};

// The seed's board: STM32F429IG + W25Q128 (see docs/DESIGN.md, "Layout").
extern const BoardProfile kStm32f429Fire;
// The same kinds of geometry scaled down 16x, for exhaustive power-cut tests.
extern const BoardProfile kSimSmall;

// nullptr if no profile has that name.
const BoardProfile* FindProfile(const char* name);

}  // namespace ota
