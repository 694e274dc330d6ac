#include "board_image.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "ota/profile.hpp"
#include "sim/m4/factory_image.hpp"

namespace ota::sim::m4::testing {

std::string FirmwareDir() {
  const char* env = std::getenv("OTA_FIRMWARE_DIR");
  return env != nullptr && *env != '\0' ? env : OTA_FIRMWARE_DIR_DEFAULT;
}

std::vector<uint8_t> LoadImage(const std::string& name) {
  const std::string path = FirmwareDir() + "/" + name;
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  EXPECT_FALSE(bytes.empty()) << "cannot read " << path << " (run `make firmware`)";
  return bytes;
}

uint32_t RunningSlotAddress() {
  return kStm32f429Fire.internal_base + kStm32f429Fire.partition(PartitionId::kRunning).offset;
}

void FlashFactoryImages(BoardFlash& flash, const std::vector<uint8_t>& loader,
                        const std::vector<uint8_t>& app) {
  const Status status = m4::FlashFactoryImages(flash, loader, app);
  EXPECT_TRUE(status.ok()) << "factory images: " << status.name();
}

uint32_t Le32(const std::vector<uint8_t>& bytes, size_t offset) {
  return bytes[offset] | bytes[offset + 1] << 8 | bytes[offset + 2] << 16 |
         static_cast<uint32_t>(bytes[offset + 3]) << 24;
}

}  // namespace ota::sim::m4::testing
