#include "sim/m4/factory_image.hpp"

#include <algorithm>

#include "ota/profile.hpp"

namespace ota::sim::m4 {

Status FlashFactoryImages(BoardFlash& flash, const std::vector<uint8_t>& loader,
                          const std::vector<uint8_t>& app) {
  const Partition& region = kStm32f429Fire.partition(PartitionId::kLoader);
  const Partition& slot = kStm32f429Fire.partition(PartitionId::kRunning);
  auto& internal = flash.internal.raw();
  if (internal.size() < slot.offset + slot.size || internal.size() < region.offset + region.size) {
    return StatusCode::kInvalidArgument;
  }
  if (loader.size() > region.size || app.size() > slot.size) return StatusCode::kTooLarge;
  std::fill(internal.begin(), internal.end(), 0xFF);
  std::copy(loader.begin(), loader.end(), internal.begin() + region.offset);
  std::copy(app.begin(), app.end(), internal.begin() + slot.offset);
  std::fill(flash.external.raw().begin(), flash.external.raw().end(), 0xFF);
  return Status::Ok();
}

}  // namespace ota::sim::m4
