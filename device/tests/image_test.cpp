#include "ota/image.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "ota/bytes.hpp"
#include "ota/host/image_builder.hpp"
#include "sim/board_flash.hpp"
#include "test_images.hpp"

namespace ota {
namespace {

constexpr uint32_t kLoad = 0x08002000;  // sim-small running slot

class ImageTest : public ::testing::Test {
 protected:
  void Write(const std::vector<uint8_t>& image) {
    std::copy(image.begin(), image.end(), board_.internal.raw().begin() + slot_.offset());
  }
  sim::BoardFlash board_{kSimSmall};
  FlashArea slot_{board_.internal, 0x2000, 32 * 1024};
  uint8_t work_[256];
};

TEST(ImageHeader, Encode_PinsEveryField) {
  ImageHeader h;
  h.image_size = 0x01020304;
  h.load_address = 0x08020000;
  std::strcpy(h.version, "FOTAV2");
  uint8_t raw[kImageHeaderSize];
  EncodeImageHeader(h, raw);
  const uint8_t expected_start[] = {'O',  'T',  'A',  'I',  1,    0,    64,   0,   0x04,
                                    0x03, 0x02, 0x01, 0x00, 0x00, 0x02, 0x08, 0,   0,
                                    0,    0,    'F',  'O',  'T',  'A',  'V',  '2', 0};
  EXPECT_EQ(std::memcmp(raw, expected_start, sizeof(expected_start)), 0);
  const Result<ImageHeader> back = DecodeImageHeader(raw);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->image_size, h.image_size);
  EXPECT_STREQ(back->version, "FOTAV2");
}

TEST(ImageHeader, Decode_RejectsBadFields) {
  ImageHeader h;
  h.image_size = 4096;
  std::strcpy(h.version, "V1");
  uint8_t good[kImageHeaderSize];
  EncodeImageHeader(h, good);
  struct Case {
    int offset;
    uint8_t value;
    StatusCode code;
  } cases[] = {{0, 'X', StatusCode::kNotFound}, {4, 2, StatusCode::kUnsupported},
               {6, 32, StatusCode::kCorrupt},   {16, 1, StatusCode::kUnsupported},
               {25, 'x', StatusCode::kCorrupt}, {60, 1, StatusCode::kCorrupt},
               {20, ' ', StatusCode::kCorrupt}, {9, 0, StatusCode::kCorrupt}};
  for (const Case& c : cases) {
    uint8_t raw[kImageHeaderSize];
    std::memcpy(raw, good, sizeof(raw));
    raw[c.offset] = c.value;
    EXPECT_EQ(DecodeImageHeader(raw).status().code(), c.code) << "offset " << c.offset;
  }
}

TEST_F(ImageTest, ValidateImage_GoodImage_Ok) {
  const auto image = testing::MakeTestImage("FOTAV1", 9000, kLoad, 1);
  Write(image);
  const Result<ImageInfo> info = ValidateImage(slot_, kLoad, ByteSpan(work_));
  ASSERT_TRUE(info.ok()) << info.status().name();
  EXPECT_EQ(info->total_size, 9000u);
  EXPECT_STREQ(info->header.version, "FOTAV1");
}

TEST_F(ImageTest, ValidateImage_OneFlippedBit_VerifyFailed) {
  auto image = testing::MakeTestImage("FOTAV1", 9000, kLoad, 1);
  image[5000] ^= 0x10;
  Write(image);
  EXPECT_EQ(ValidateImage(slot_, kLoad, ByteSpan(work_)).status().code(),
            StatusCode::kVerifyFailed);
}

TEST_F(ImageTest, ValidateImage_WrongLoadAddress_Refused) {
  Write(testing::MakeTestImage("FOTAV1", 9000, 0x08020000, 1));
  EXPECT_EQ(ValidateImage(slot_, kLoad, ByteSpan(work_)).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(ImageTest, ValidateImage_ErasedSlot_NotFound) {
  EXPECT_EQ(ValidateImage(slot_, kLoad, ByteSpan(work_)).status().code(), StatusCode::kNotFound);
}

TEST_F(ImageTest, ValidateImage_LargerThanSlot_TooLarge) {
  // A header that claims more than the slot holds is refused before anything is hashed.
  const FlashArea small(board_.internal, 0x2000, 8 * 1024);
  Write(testing::MakeTestImage("FOTAV1", 9000, kLoad, 1));
  EXPECT_EQ(ValidateImage(small, kLoad, ByteSpan(work_)).status().code(), StatusCode::kTooLarge);
}

// ---- Vector table (docs/spec/image.md, "Vector table") ----

constexpr uint32_t kSize = 9000 - kImageTrailerSize;  // image_size of the 9000-byte test image
constexpr uint32_t kSp = 0x20030000;                  // top of SRAM1-3
constexpr uint32_t kReset = kLoad + 0x401;

VectorTableFault Fault(uint32_t sp, uint32_t reset, uint32_t size = kSize) {
  return FindVectorTableFault(sp, reset, kLoad, size);
}

TEST(VectorTable, Plausible_Accepted) {
  EXPECT_EQ(Fault(kSp, kReset), VectorTableFault::kNone);
  EXPECT_EQ(CheckVectorTable(kSp, kReset, kLoad, kSize), Status::Ok());
  EXPECT_EQ(Fault(0x20008000, kReset), VectorTableFault::kNone);  // inside SRAM
  EXPECT_EQ(Fault(0x10008000, kReset), VectorTableFault::kNone);  // inside CCM
}

TEST(VectorTable, InitialSpZero_NotInRam) {
  EXPECT_EQ(Fault(0, kReset), VectorTableFault::kStackNotInRam);
  EXPECT_EQ(CheckVectorTable(0, kReset, kLoad, kSize).code(), StatusCode::kBadVectorTable);
}

TEST(VectorTable, InitialSpNot8ByteAligned_Misaligned) {
  EXPECT_EQ(Fault(0x2002FFFC, kReset), VectorTableFault::kStackMisaligned);
  EXPECT_EQ(Fault(0x20020004, kReset), VectorTableFault::kStackMisaligned);
  EXPECT_EQ(Fault(0x1000FFFF, kReset), VectorTableFault::kStackMisaligned);
  EXPECT_EQ(CheckVectorTable(0x2002FFFC, kReset, kLoad, kSize).code(), StatusCode::kBadVectorTable);
}

TEST(VectorTable, InitialSpOutsideRam_NotInRam) {
  for (const uint32_t sp : {
           0x20030008u,  // past the end of SRAM3 (the F429's SRAM ends at 0x2002FFFF)
           0x20040000u,  // 256 KB parts: not this MCU
           0x20000000u,  // the start of SRAM: a descending stack would push below it
           0x10010008u,  // past the end of CCM
           0x10000000u,  // the start of CCM
           0x08020000u,  // flash
           0x0FFFFFF8u,  // just below CCM
           0x1FFFFFF8u,  // just below SRAM
           0x40000000u,  // peripherals
           0xFFFFFFF8u,  // an erased word, aligned
           0xFFFFFFFFu,  // an erased word
       }) {
    EXPECT_EQ(Fault(sp, kReset), VectorTableFault::kStackNotInRam) << std::hex << sp;
  }
}

TEST(VectorTable, InitialSpExactlyAtRegionEnd_Accepted) {
  EXPECT_EQ(Fault(0x20030000, kReset), VectorTableFault::kNone);  // SRAM1-3 end
  EXPECT_EQ(Fault(0x10010000, kReset), VectorTableFault::kNone);  // CCM end
  EXPECT_EQ(Fault(0x20000008, kReset), VectorTableFault::kNone);  // one aligned step above start
  EXPECT_EQ(Fault(0x10000008, kReset), VectorTableFault::kNone);
}

TEST(VectorTable, EvenResetVector_NotThumb) {
  EXPECT_EQ(Fault(kSp, kLoad + 0x400), VectorTableFault::kResetNotThumb);
  EXPECT_EQ(Fault(kSp, 0), VectorTableFault::kResetNotThumb);
  EXPECT_EQ(CheckVectorTable(kSp, kLoad + 0x400, kLoad, kSize).code(), StatusCode::kBadVectorTable);
}

TEST(VectorTable, ResetVectorBeforeTheImage_OutsideImage) {
  EXPECT_EQ(Fault(kSp, 0x08000401), VectorTableFault::kResetOutsideImage);  // the loader
  EXPECT_EQ(Fault(kSp, kLoad - 1), VectorTableFault::kResetOutsideImage);   // just below (odd)
  EXPECT_EQ(Fault(kSp, 0x00000001), VectorTableFault::kResetOutsideImage);
  EXPECT_EQ(CheckVectorTable(kSp, 0x08000401, kLoad, kSize).code(), StatusCode::kBadVectorTable);
}

TEST(VectorTable, ResetVectorIntoTableOrHeader_OutsideImage) {
  EXPECT_EQ(Fault(kSp, kLoad | 1), VectorTableFault::kResetOutsideImage);        // word 0
  EXPECT_EQ(Fault(kSp, kLoad + 0x1A9), VectorTableFault::kResetOutsideImage);    // table
  EXPECT_EQ(Fault(kSp, kLoad + 0x201), VectorTableFault::kResetOutsideImage);    // header
  EXPECT_EQ(Fault(kSp, kLoad + 0x23F), VectorTableFault::kResetOutsideImage);    // 0x23E
  EXPECT_EQ(Fault(kSp, kLoad + kImageCodeOffset + 1), VectorTableFault::kNone);  // first code
}

TEST(VectorTable, ResetVectorBeyondImageSize_OutsideImage) {
  EXPECT_EQ(Fault(kSp, kLoad + kSize - 2 + 1), VectorTableFault::kNone);  // last halfword
  EXPECT_EQ(Fault(kSp, kLoad + kSize + 1), VectorTableFault::kResetOutsideImage);
  EXPECT_EQ(Fault(kSp, kLoad + 0x80000 + 1), VectorTableFault::kResetOutsideImage);
  EXPECT_EQ(Fault(kSp, 0xFFFFFFFF), VectorTableFault::kResetOutsideImage);
}

TEST(VectorTable, ResetVectorInTheTrailer_OutsideImage) {
  // The trailer [image_size, image_size + 32) is the hash, not code.
  for (uint32_t at = kSize; at < kSize + kImageTrailerSize; at += 2) {
    EXPECT_EQ(Fault(kSp, kLoad + at + 1), VectorTableFault::kResetOutsideImage) << at;
  }
}

TEST(VectorTable, ImageAtTheTopOfTheAddressSpace_NoWrap) {
  // load + image_size would wrap past 0xFFFFFFFF; the check works in offsets.
  const uint32_t load = 0xFFFFF000;
  EXPECT_EQ(FindVectorTableFault(kSp, 0x00000401, load, 0x2000),
            VectorTableFault::kResetOutsideImage);
  EXPECT_EQ(FindVectorTableFault(kSp, load + 0x401, load, 0x2000), VectorTableFault::kNone);
}

TEST(VectorTable, FaultNames) {
  EXPECT_STREQ(VectorTableFaultName(VectorTableFault::kStackNotInRam), "stack-not-in-ram");
  EXPECT_STREQ(VectorTableFaultName(VectorTableFault::kResetOutsideImage), "reset-outside-image");
  EXPECT_STREQ(StatusCodeName(StatusCode::kBadVectorTable), "bad-vector-table");
}

// A test image with other vector words and a trailer that matches again: intact, as stamped
// by a tool that did not check.
std::vector<uint8_t> WithVectors(uint32_t sp, uint32_t reset) {
  return testing::WithVectors(testing::MakeTestImage("FOTAV1", 9000, kLoad, 1), sp, reset);
}

TEST_F(ImageTest, ValidateImage_BadVectorTables_Refused) {
  struct Case {
    const char* what;
    uint32_t sp, reset;
  } cases[] = {
      {"SP 0", 0, kReset},
      {"SP not 8-aligned", 0x2002FFFC, kReset},
      {"SP outside RAM", 0x20040000, kReset},
      {"SP at the start of SRAM", 0x20000000, kReset},
      {"erased vector table", 0xFFFFFFFF, 0xFFFFFFFF},
      {"even reset vector", kSp, kLoad + 0x400},
      {"reset vector before the image", kSp, 0x08000401},
      {"reset vector into the header", kSp, kLoad + 0x211},
      {"reset vector beyond image_size", kSp, kLoad + kSize + 0x101},
      {"reset vector in the trailer", kSp, kLoad + kSize + 1},
  };
  for (const Case& c : cases) {
    Write(WithVectors(c.sp, c.reset));
    EXPECT_EQ(ValidateImage(slot_, kLoad, ByteSpan(work_)).status().code(),
              StatusCode::kBadVectorTable)
        << c.what;
  }
}

TEST_F(ImageTest, ValidateImage_PlausibleVectorTables_Ok) {
  for (const uint32_t sp : {0x20030000u, 0x10010000u, 0x20000008u}) {
    Write(WithVectors(sp, kLoad + kImageCodeOffset + 1));
    EXPECT_TRUE(ValidateImage(slot_, kLoad, ByteSpan(work_)).ok()) << std::hex << sp;
    Write(WithVectors(sp, kLoad + kSize - 1));
    EXPECT_TRUE(ValidateImage(slot_, kLoad, ByteSpan(work_)).ok()) << std::hex << sp;
  }
}

TEST_F(ImageTest, ValidateImage_DamagedVectorWord_VerifyFailedFirst) {
  // A flipped bit in word 0 is damage, reported as such: the hash is checked before the table.
  auto image = testing::MakeTestImage("FOTAV1", 9000, kLoad, 1);
  image[3] ^= 0x80;
  Write(image);
  EXPECT_EQ(ValidateImage(slot_, kLoad, ByteSpan(work_)).status().code(),
            StatusCode::kVerifyFailed);
}

TEST(StampImage, BadVectorTable_RefusedWithTheWordNamed) {
  std::vector<uint8_t> binary(4096, 0);
  StoreLe32(binary.data(), 0);
  StoreLe32(binary.data() + 4, kLoad + 0x401);
  host::StampResult r = host::StampImage(binary, "V1", kLoad);
  EXPECT_TRUE(r.image.empty());
  EXPECT_NE(r.error.find("initial SP 0x00000000"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("SRAM"), std::string::npos) << r.error;

  StoreLe32(binary.data(), 0x2002FFFC);
  r = host::StampImage(binary, "V1", kLoad);
  EXPECT_NE(r.error.find("initial SP 0x2002FFFC"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("8-byte aligned"), std::string::npos) << r.error;

  StoreLe32(binary.data(), 0x20030000);
  StoreLe32(binary.data() + 4, kLoad + 0x400);
  r = host::StampImage(binary, "V1", kLoad);
  EXPECT_NE(r.error.find("reset vector 0x08002400"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("Thumb"), std::string::npos) << r.error;

  StoreLe32(binary.data() + 4, kLoad + 4096 + 1);  // image_size is the binary's 4096 bytes
  r = host::StampImage(binary, "V1", kLoad);
  EXPECT_NE(r.error.find("reset vector 0x08003001"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("0x08002240 <= (reset & ~1) < 0x08003000"), std::string::npos) << r.error;

  StoreLe32(binary.data() + 4, kLoad + 4096 - 1);
  r = host::StampImage(binary, "V1", kLoad);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.image.size(), 4096 + kImageTrailerSize);
}

TEST(StampImage, BadInputs_ClearErrors) {
  EXPECT_NE(host::StampImage(std::vector<uint8_t>(100), "V1", kLoad).error.find("too small"),
            std::string::npos);
  EXPECT_NE(host::StampImage(std::vector<uint8_t>(1024), "has space", kLoad).error, "");
  EXPECT_NE(host::StampImage(std::vector<uint8_t>(1024), std::string(40, 'V'), kLoad).error, "");
  std::vector<uint8_t> used(1024, 0);
  used[0x210] = 7;
  EXPECT_NE(host::StampImage(used, "V1", kLoad).error.find("not reserved"), std::string::npos);
  // An erased (0xFF) header area is reserved space too; the vector table is a real one.
  std::vector<uint8_t> erased(1024, 0xFF);
  StoreLe32(erased.data(), 0x20030000);
  StoreLe32(erased.data() + 4, kLoad + 0x301);
  EXPECT_EQ(host::StampImage(erased, "V1", kLoad).error, "");
  // 0xFF everywhere, the table included, is no image the loader could start.
  EXPECT_NE(host::StampImage(std::vector<uint8_t>(1024, 0xFF), "V1", kLoad).error.find("SP"),
            std::string::npos);
}

}  // namespace
}  // namespace ota
