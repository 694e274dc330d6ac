#include "ota/image.hpp"

#include <gtest/gtest.h>

#include <cstring>

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

TEST(StampImage, BadInputs_ClearErrors) {
  EXPECT_NE(host::StampImage(std::vector<uint8_t>(100), "V1", kLoad).error.find("too small"),
            std::string::npos);
  EXPECT_NE(host::StampImage(std::vector<uint8_t>(1024), "has space", kLoad).error, "");
  EXPECT_NE(host::StampImage(std::vector<uint8_t>(1024), std::string(40, 'V'), kLoad).error, "");
  std::vector<uint8_t> used(1024, 0);
  used[0x210] = 7;
  EXPECT_NE(host::StampImage(used, "V1", kLoad).error.find("not reserved"), std::string::npos);
  EXPECT_EQ(host::StampImage(std::vector<uint8_t>(1024, 0xFF), "V1", kLoad).error, "");
}

}  // namespace
}  // namespace ota
