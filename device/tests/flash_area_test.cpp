#include "ota/flash_area.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "sim/board_flash.hpp"

namespace ota {
namespace {

class FlashAreaTest : public ::testing::Test {
 protected:
  sim::BoardFlash board_{kStm32f429Fire};
  uint8_t work_[512];
};

TEST_F(FlashAreaTest, Access_OutsideArea_OutOfRange) {
  const FlashArea area(board_.external, 0x1000, 0x2000);
  uint8_t buf[16];
  EXPECT_EQ(area.Read(0x2000 - 8, ByteSpan(buf)).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(area.Program(0x1FF8, ConstByteSpan(buf)).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(area.Erase(0x1000, 0x2000).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(area.Read(0xFFFFFFF8u, ByteSpan(buf)).code(), StatusCode::kOutOfRange);
}

TEST_F(FlashAreaTest, Program_AcrossPages_SplitIntoPagePrograms) {
  const FlashArea area(board_.external, 0x1000, 0x2000);
  ASSERT_TRUE(area.Erase(0, 0x1000).ok());
  std::vector<uint8_t> data(600);
  std::iota(data.begin(), data.end(), 0);
  board_.ResetCounters();
  ASSERT_TRUE(area.Program(200, ConstByteSpan(data.data(), data.size())).ok());
  // 200..255, 256..511, 512..767, 768..799: four page programs.
  EXPECT_EQ(board_.external.counters().program_ops, 4u);
  std::vector<uint8_t> back(600);
  ASSERT_TRUE(area.Read(200, ByteSpan(back.data(), back.size())).ok());
  EXPECT_EQ(back, data);
}

TEST_F(FlashAreaTest, EraseCovering_ErasesExactlyTheSectorsTouched) {
  // Running slot: sectors 5-8 (128 KB each). 130 KB of image needs sectors 5 and 6 only; the
  // seed computed the last sector from addr+len and erased sector 7 too.
  const FlashArea slot(board_.internal, 0x20000, 512 * 1024);
  board_.internal.raw()[0x20000 + 2 * 128 * 1024] = 0x00;  // a byte in sector 7
  ASSERT_TRUE(slot.EraseCovering(0, 130 * 1024).ok());
  EXPECT_EQ(board_.internal.wear()[5], 1u);
  EXPECT_EQ(board_.internal.wear()[6], 1u);
  EXPECT_EQ(board_.internal.wear()[7], 0u);
  EXPECT_EQ(board_.internal.raw()[0x20000 + 2 * 128 * 1024], 0x00);
  // Exactly one sector's worth: 128 KB needs sector 5 alone.
  ASSERT_TRUE(slot.EraseCovering(0, 128 * 1024).ok());
  EXPECT_EQ(board_.internal.wear()[5], 2u);
  EXPECT_EQ(board_.internal.wear()[6], 1u);
}

TEST_F(FlashAreaTest, SlotWriter_UnalignedPieces_ImageIntactAndPadded) {
  const FlashArea slot(board_.internal, 0x20000, 512 * 1024);
  std::vector<uint8_t> image(1001);
  std::iota(image.begin(), image.end(), 1);
  SlotWriter writer(slot, static_cast<uint32_t>(image.size()));
  size_t done = 0;
  for (size_t piece : {3u, 1u, 7u, 500u, 490u}) {
    ASSERT_TRUE(writer.Write(ConstByteSpan(image.data() + done, piece)).ok());
    done += piece;
  }
  ASSERT_TRUE(writer.Finish().ok());
  EXPECT_EQ(writer.written(), 1001u);
  const auto& raw = board_.internal.raw();
  EXPECT_TRUE(std::equal(image.begin(), image.end(), raw.begin() + 0x20000));
  EXPECT_EQ(raw[0x20000 + 1001], 0xFF);                     // padding of the last word
  EXPECT_EQ(board_.internal.counters().erase_ops, 1u);      // sector 5 only
  EXPECT_EQ(board_.internal.counters().program_ops, 251u);  // 1004 bytes / 4
}

TEST_F(FlashAreaTest, SlotWriter_MoreThanAnnounced_TooLarge) {
  const FlashArea slot(board_.internal, 0x20000, 512 * 1024);
  SlotWriter writer(slot, 8);
  const uint8_t data[12] = {};
  EXPECT_EQ(writer.Write(ConstByteSpan(data)).code(), StatusCode::kTooLarge);
}

TEST_F(FlashAreaTest, SlotWriter_OnSpiNor_UsesLargestBlocksWithinTheImage) {
  // Backup region at 0x81000: 4 KB sectors up to the 64 KB boundary at 0x90000, then blocks.
  const FlashArea backup(board_.external, 0x81000, 512 * 1024);
  const uint32_t total = 200 * 1024;
  SlotWriter writer(backup, total);
  std::vector<uint8_t> data(total, 0x5A);
  ASSERT_TRUE(writer.Write(ConstByteSpan(data.data(), data.size())).ok());
  ASSERT_TRUE(writer.Finish().ok());
  const sim::FlashCounters& c = board_.external.counters();
  // 0x81000-0x88000: 7 x 4 KB; 0x88000: one 32 KB block; 0x90000-0xB0000: 2 x 64 KB;
  // 0xB0000-0xB3000: 3 x 4 KB (a larger block there would erase past the image).
  EXPECT_EQ(c.erase_ops, 13u);
  EXPECT_EQ(c.erased_bytes, 0x32000u);
  EXPECT_EQ(board_.external.raw()[0x81000 + total], 0xFF);
}

TEST_F(FlashAreaTest, IsErased_DetectsAnyProgrammedByte) {
  const FlashArea area(board_.external, 0x1000, 0x1000);
  EXPECT_TRUE(area.IsErased(0, 0x1000, ByteSpan(work_)).value());
  board_.external.raw()[0x1FFF] = 0xFE;
  EXPECT_FALSE(area.IsErased(0, 0x1000, ByteSpan(work_)).value());
}

}  // namespace
}  // namespace ota
