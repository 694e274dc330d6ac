// The host library's hex helper, in the server's namespace.
#pragma once

#include "ota/host/hex.hpp"

namespace ota::server {

using host::ToHex;

}  // namespace ota::server
