// The public keys built into the loader (generated loader_keys.cpp): packages must be signed
// by one of them. Downgrade permission is never built in by default.
#pragma once

#include "ota/signature.hpp"

namespace fire {

inline constexpr int kLoaderKeyCount = 1;
extern const ota::TrustedKey kLoaderKeys[kLoaderKeyCount];

}  // namespace fire
