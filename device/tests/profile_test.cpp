#include "ota/profile.hpp"

#include <gtest/gtest.h>

namespace ota {
namespace {

void ExpectSane(const BoardProfile& p) {
  for (int i = 0; i < kPartitionCount; ++i) {
    const Partition& part = p.partitions[i];
    EXPECT_EQ(static_cast<int>(part.id), i) << p.name << ": table out of order";
    const FlashGeometry& g = p.geometry(part.flash);
    EXPECT_TRUE(g.IsSectorBoundary(part.offset)) << p.name << " partition " << i;
    EXPECT_TRUE(g.IsSectorBoundary(part.offset + part.size)) << p.name << " partition " << i;
    EXPECT_LE(part.offset + part.size, g.total_size()) << p.name << " partition " << i;
    for (int j = 0; j < i; ++j) {
      const Partition& other = p.partitions[j];
      if (other.flash != part.flash) continue;
      const bool disjoint =
          part.offset >= other.offset + other.size || other.offset >= part.offset + part.size;
      EXPECT_TRUE(disjoint) << p.name << ": partitions " << i << " and " << j << " overlap";
    }
  }
  // Each boot-state copy is exactly one erase sector, so it can be erased on its own.
  for (PartitionId id : {PartitionId::kBootStateA, PartitionId::kBootStateB}) {
    const Partition& part = p.partition(id);
    const Result<SectorInfo> s = p.external.SectorAt(part.offset);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->size, part.size) << p.name;
  }
}

TEST(Profile, AllProfiles_PartitionsAlignedAndDisjoint) {
  ExpectSane(kStm32f429Fire);
  ExpectSane(kSimSmall);
}

TEST(Profile, Stm32f429Fire_MatchesTheSeedLayout) {
  const BoardProfile& p = kStm32f429Fire;
  EXPECT_EQ(p.internal.total_size(), 1024u * 1024u);
  EXPECT_EQ(p.internal.sector_count(), 12u);
  EXPECT_EQ(p.external.total_size(), 16u * 1024u * 1024u);
  EXPECT_EQ(p.internal_base + p.partition(PartitionId::kRunning).offset, 0x08020000u);
  EXPECT_EQ(p.partition(PartitionId::kRunning).size, 512u * 1024u);
  EXPECT_EQ(p.partition(PartitionId::kDownload).offset, 0x001000u);
  EXPECT_EQ(p.partition(PartitionId::kBackup).offset, 0x081000u);
  EXPECT_EQ(p.partition(PartitionId::kBootStateB).offset, 0x101000u);
  // The running slot is sectors 5-8, nothing more.
  EXPECT_EQ(p.internal.SectorAt(0x20000)->index, 5u);
  EXPECT_EQ(p.internal.SectorAt(0x20000 + 512 * 1024 - 1)->index, 8u);
}

TEST(Profile, FindProfile_ByName) {
  EXPECT_EQ(FindProfile("stm32f429-fire"), &kStm32f429Fire);
  EXPECT_EQ(FindProfile("sim-small"), &kSimSmall);
  EXPECT_EQ(FindProfile("nope"), nullptr);
}

}  // namespace
}  // namespace ota
