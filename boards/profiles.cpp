#include <cstring>

#include "ota/profile.hpp"

namespace ota {

const BoardProfile* FindProfile(const char* name) {
  const BoardProfile* const all[] = {&kStm32f429Fire, &kSimSmall};
  for (const BoardProfile* p : all) {
    if (std::strcmp(p->name, name) == 0) return p;
  }
  return nullptr;
}

}  // namespace ota
