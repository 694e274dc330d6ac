// sim::m4::FlashFactoryImages: the one factory layout the board tests, the power-cut sweep and
// ota-device's emulated board use; images that do not fit their region are refused whole.
#include "sim/m4/factory_image.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "ota/profile.hpp"

namespace ota::sim::m4 {
namespace {

const Partition& LoaderRegion() {
  return kStm32f429Fire.partition(PartitionId::kLoader);
}
const Partition& RunningSlot() {
  return kStm32f429Fire.partition(PartitionId::kRunning);
}

TEST(FactoryImage, ImagesThatFitExactly_WrittenRestErased) {
  BoardFlash flash(kStm32f429Fire);
  flash.internal.raw()[0x8000] = 0x00;  // a stale trust record byte
  flash.external.raw()[0x1000] = 0x00;
  const std::vector<uint8_t> loader(LoaderRegion().size, 0x11);
  const std::vector<uint8_t> app(RunningSlot().size, 0x22);
  ASSERT_TRUE(FlashFactoryImages(flash, loader, app).ok());
  EXPECT_EQ(flash.internal.raw()[LoaderRegion().size - 1], 0x11);
  EXPECT_EQ(flash.internal.raw()[LoaderRegion().size], 0xFF);  // the trust record: blank
  EXPECT_EQ(flash.internal.raw()[0x8000], 0xFF);
  EXPECT_EQ(flash.internal.raw()[RunningSlot().offset], 0x22);
  EXPECT_EQ(flash.internal.raw()[RunningSlot().offset + RunningSlot().size - 1], 0x22);
  EXPECT_EQ(flash.internal.raw()[RunningSlot().offset + RunningSlot().size], 0xFF);
  EXPECT_EQ(flash.external.raw()[0x1000], 0xFF);
  EXPECT_EQ(flash.internal.counters().program_ops, 0u) << "a programmer's writes: not counted";
}

TEST(FactoryImage, LoaderLargerThanItsRegion_TooLargeNothingWritten) {
  BoardFlash flash(kStm32f429Fire);
  flash.internal.raw()[0x8000] = 0x5A;
  const std::vector<uint8_t> loader(LoaderRegion().size + 1, 0x11);  // into the trust record
  EXPECT_EQ(FlashFactoryImages(flash, loader, {0x22}).code(), StatusCode::kTooLarge);
  EXPECT_EQ(flash.internal.raw()[0], 0xFF);
  EXPECT_EQ(flash.internal.raw()[0x8000], 0x5A) << "untouched";
}

TEST(FactoryImage, AppLargerThanTheRunningSlot_TooLargeNothingWritten) {
  BoardFlash flash(kStm32f429Fire);
  const std::vector<uint8_t> app(RunningSlot().size + 4, 0x22);  // past the slot's end
  EXPECT_EQ(FlashFactoryImages(flash, {0x11}, app).code(), StatusCode::kTooLarge);
  EXPECT_EQ(flash.internal.raw()[0], 0xFF);
  EXPECT_EQ(flash.internal.raw()[RunningSlot().offset], 0xFF);
}

}  // namespace
}  // namespace ota::sim::m4
