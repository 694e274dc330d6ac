#include "ota/agent/app_shell.hpp"

#include <cstdlib>

namespace ota::agent {

namespace {

AppShellState& State(void* context) {
  return *static_cast<AppShellState*>(context);
}

Status Version(void* context, Span<char* const>, shell::Output& out) {
  const AppShellState& s = State(context);
  out.Printf("firmware %s\nsoftware %s\n", s.fw_version, s.sw_version);
  return Status::Ok();
}

Status ShowStatus(void* context, Span<char* const>, shell::Output& out) {
  const OtaAgent& agent = *State(context).agent;
  const BootRecord& r = agent.record();
  out.Printf("status %s step %s reason %s download %lu/%lu package %s mqtt %s\n",
             UpgradeStatusName(r.status), UpgradeStepName(r.step), FailReasonName(r.reason),
             static_cast<unsigned long>(r.download_offset),
             static_cast<unsigned long>(r.package_size),
             r.package_version[0] != '\0' ? r.package_version : "-",
             agent.connected() ? "connected" : "disconnected");
  return Status::Ok();
}

Status Radio(void* context, Span<char* const> argv, shell::Output& out) {
  char* end = nullptr;
  const long v = argv.size() == 2 ? std::strtol(argv[1], &end, 10) : 0;
  if (argv.size() != 2 || end == argv[1] || *end != '\0' || v < -1000000 || v > 1000000) {
    out.Write("usage: radio <value>  (an integer, reported as DeviceStatus.radioValue)\n");
    return StatusCode::kInvalidArgument;
  }
  State(context).agent->set_radio(static_cast<int>(v));
  out.Printf("radioValue %ld\n", v);
  return Status::Ok();
}

Status Reboot(void* context, Span<char* const>, shell::Output& out) {
  out.Write("rebooting\n");
  State(context).reboot_requested = true;
  return Status::Ok();
}

constexpr shell::Command kCommands[] = {
    {"version", "version          firmware and software versions", Version},
    {"status", "status           upgrade state, download progress, connection", ShowStatus},
    {"radio", "radio <value>    set DeviceStatus.radioValue (reported to the platform)", Radio},
    {"reboot", "reboot           reset the board (the loader runs first)", Reboot},
};

}  // namespace

Span<const shell::Command> AppShellCommands() {
  return Span<const shell::Command>(kCommands, sizeof(kCommands) / sizeof(kCommands[0]));
}

}  // namespace ota::agent
