#include <cstring>

#include "ota/profile.hpp"

namespace ota {

const FlashGeometry kStm32f4OtpGeometry = {
    "stm32f4-otp", {{1, kOtpSize}, {0, 0}, {0, 0}, {0, 0}}, 4, 0, {0, 0}};

const BoardProfile* FindProfile(const char* name) {
  const BoardProfile* const all[] = {&kStm32f429Fire, &kSimSmall};
  for (const BoardProfile* p : all) {
    if (std::strcmp(p->name, name) == 0) return p;
  }
  return nullptr;
}

}  // namespace ota
