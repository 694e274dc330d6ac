// The platform's database schema, as numbered migrations (docs/server.md, "Storage").
#pragma once

#include <string>
#include <vector>

namespace ota::server {

const std::vector<std::string>& Migrations();

}  // namespace ota::server
