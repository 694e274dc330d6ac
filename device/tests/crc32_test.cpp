#include "ota/crc32.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <vector>

namespace ota {
namespace {

TEST(Crc32, CheckValue_MatchesStandard) {
  const uint8_t text[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  EXPECT_EQ(Crc32(0, ConstByteSpan(text)), 0xCBF43926u);
}

TEST(Crc32, RandomData_MatchesZlibInAnySplit) {
  std::mt19937 rng(7);
  std::vector<uint8_t> data(3001);
  for (uint8_t& b : data)
    b = static_cast<uint8_t>(rng());
  const uint32_t expected =
      static_cast<uint32_t>(crc32(0, data.data(), static_cast<uInt>(data.size())));
  EXPECT_EQ(Crc32(0, ConstByteSpan(data.data(), data.size())), expected);
  const uint32_t part = Crc32(0, ConstByteSpan(data.data(), 1000));
  EXPECT_EQ(Crc32(part, ConstByteSpan(data.data() + 1000, 2001)), expected);
}

}  // namespace
}  // namespace ota
