// The app's shell commands (docs/agent.md, "Shell"), the same on the board and in ota-device:
// version, status, radio <value>, reboot; and on a board with a settings sector, provision and
// settings.
#pragma once

#include "ota/agent/device_settings.hpp"
#include "ota/agent/ota_agent.hpp"
#include "ota/shell/shell.hpp"

namespace ota::agent {

struct AppShellState {
  OtaAgent* agent = nullptr;    // null until the device is provisioned and the modem answers
  const char* fw_version = "";  // the running image's version (FOTAV1)
  const char* sw_version = "";
  bool reboot_requested = false;        // set by `reboot`; the main loop resets the board
  const FlashArea* settings = nullptr;  // the settings sector (board), or null (ota-device)
};

// The commands; their context is an AppShellState (or a struct that starts with one).
Span<const shell::Command> AppShellCommands();

}  // namespace ota::agent
