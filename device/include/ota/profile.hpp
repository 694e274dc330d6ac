// A board profile: the flash devices and where each partition lives, in one table.
// Another layout is another profile, not a code change.
#pragma once

#include <cstdint>

#include "ota/flash.hpp"

namespace ota {

enum class FlashId : uint8_t { kInternal = 0, kExternal = 1 };
inline constexpr int kFlashCount = 2;

enum class PartitionId : uint8_t {
  kLoader = 0,  // internal: the loader's code (write-protected by the loader, docs/DESIGN.md)
  kRunning,     // internal: the slot the app runs from (execute in place)
  kBootStateA,  // external: boot state copy A (the seed's "flag")
  kDownload,    // external: where the app stages a package
  kBackup,      // external: the loader's copy of the running image during an upgrade
  kBootStateB,  // external: boot state copy B (the seed's "flag backup")
  kTrustA,      // internal: the loader's trust record, copy A (docs/spec/trust-record.md)
  kTrustB,      // internal: the loader's trust record, copy B
};
inline constexpr int kPartitionCount = 8;

// The MCU's one-time-programmable area (RM0090 3.7): 16 blocks of 32 bytes, then one lock
// byte per block. Bits only go 1 -> 0, nothing erases them, and a block whose lock byte is
// 0x00 cannot be programmed any more.
inline constexpr uint32_t kOtpBlockSize = 32;
inline constexpr uint32_t kOtpBlocks = 16;
inline constexpr uint32_t kOtpLockOffset = kOtpBlockSize * kOtpBlocks;  // 512
inline constexpr uint32_t kOtpSize = kOtpLockOffset + kOtpBlocks;       // 528
// The geometry an OTP device presents through ota::Flash (one "sector" that never erases).
extern const FlashGeometry kStm32f4OtpGeometry;

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
  // OTP blocks [first, first + count) hold the anti-rollback counter (a unary counter).
  uint32_t otp_counter_first_block;
  uint32_t otp_counter_blocks;

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
