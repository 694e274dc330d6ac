#include "ota/option_bytes.hpp"

namespace ota {

const char* WriteProtectResultName(WriteProtectResult result) {
  switch (result) {
    case WriteProtectResult::kAlreadyProtected:
      return "already-protected";
    case WriteProtectResult::kProtected:
      return "protected";
    case WriteProtectResult::kFrozen:
      return "frozen-rdp-level-2";
    case WriteProtectResult::kPcropMode:
      return "pcrop-mode";
    case WriteProtectResult::kUnsafeRdp:
      return "unsafe-rdp";
  }
  return "unknown";
}

Result<WriteProtectResult> EnsureWriteProtected(OptionBytes& option_bytes, uint32_t sector_mask) {
  if (sector_mask == 0 || (sector_mask & ~kWrpSectorsAll) != 0) {
    return StatusCode::kInvalidArgument;
  }
  OTA_TRY_ASSIGN(const UserOptionBytes current, option_bytes.Read());
  if (current.WriteProtected(sector_mask)) return WriteProtectResult::kAlreadyProtected;
  // Level 2 freezes the option bytes for good; in PCROP mode clearing nWRP bits would mean
  // removing PCROP sectors, which the interface refuses short of a mass erase; and an RDP
  // byte a tear could turn into another level is not worth the risk. Write nothing.
  if (current.rdp_level() == RdpLevel::kLevel2) return WriteProtectResult::kFrozen;
  if (current.pcrop_mode()) return WriteProtectResult::kPcropMode;
  if (!RdpSurvivesTear(current.rdp())) return WriteProtectResult::kUnsafeRdp;

  // Everything as read, RDP included (0xAA written at level 1 would mass-erase the flash),
  // except the nWRP bits of the sectors to protect.
  const UserOptionBytes wanted = current.WithWriteProtected(sector_mask);
  OTA_TRY(option_bytes.Program(wanted));
  OTA_TRY_ASSIGN(const UserOptionBytes after, option_bytes.Read());
  if (after != wanted) return StatusCode::kVerifyFailed;
  return WriteProtectResult::kProtected;
}

Result<uint32_t> SectorMask(const FlashGeometry& geometry, const Partition& partition) {
  if (partition.size == 0) return StatusCode::kInvalidArgument;
  const uint32_t end = partition.offset + partition.size;
  if (end < partition.offset || end > geometry.total_size()) return StatusCode::kOutOfRange;
  if (!geometry.IsSectorBoundary(partition.offset) || !geometry.IsSectorBoundary(end)) {
    return StatusCode::kMisaligned;
  }
  uint32_t mask = 0;
  for (uint32_t pos = partition.offset; pos < end;) {
    OTA_TRY_ASSIGN(const SectorInfo sector, geometry.SectorAt(pos));
    if (sector.index >= 32) return StatusCode::kOutOfRange;
    mask |= 1u << sector.index;
    pos = sector.offset + sector.size;
  }
  return mask;
}

Result<uint32_t> LoaderSectorMask(const BoardProfile& profile) {
  const Partition& loader = profile.partition(PartitionId::kLoader);
  if (loader.flash != FlashId::kInternal) return StatusCode::kInvalidArgument;
  return SectorMask(profile.internal, loader);
}

}  // namespace ota
