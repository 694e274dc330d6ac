#include "ota/agent/app_shell.hpp"

#include <cstdlib>
#include <cstring>

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
  if (State(context).agent == nullptr) {
    out.Write("agent not running (see `settings`)\n");
    return Status::Ok();
  }
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
  if (State(context).agent == nullptr) return StatusCode::kFailedPrecondition;
  State(context).agent->set_radio(static_cast<int>(v));
  out.Printf("radioValue %ld\n", v);
  return Status::Ok();
}

Status Reboot(void* context, Span<char* const>, shell::Output& out) {
  out.Write("rebooting\n");
  State(context).reboot_requested = true;
  return Status::Ok();
}

Status Provision(void* context, Span<char* const> argv, shell::Output& out) {
  const FlashArea* area = State(context).settings;
  if (area == nullptr) return StatusCode::kUnsupported;
  DeviceSettings s;
  char* end = nullptr;
  const unsigned long port = argv.size() >= 5 ? std::strtoul(argv[4], &end, 10) : 0;
  if (argv.size() < 5 || argv.size() > 7 || !SetField(s.device_id, argv[1]) ||
      !SetField(s.secret, argv[2]) || !SetField(s.broker_host, argv[3]) || end == argv[4] ||
      *end != '\0' || port == 0 || port > 65535 ||
      !SetField(s.wifi_ssid, argv.size() > 5 ? argv[5] : "", true) ||
      !SetField(s.wifi_password, argv.size() > 6 ? argv[6] : "", true)) {
    out.Write(
        "usage: provision <device_id> <secret> <broker_host> <broker_port> [<wifi_ssid> "
        "[<wifi_password>]]\n  (ids, secret, host, password: 1-64 characters; ssid: 1-32)\n");
    return StatusCode::kInvalidArgument;
  }
  s.broker_port = static_cast<uint16_t>(port);
  OTA_TRY(SaveSettings(*area, s));
  out.Write("saved; reboot to use them\n");
  return Status::Ok();
}

Status Settings(void* context, Span<char* const>, shell::Output& out) {
  const FlashArea* area = State(context).settings;
  if (area == nullptr) return StatusCode::kUnsupported;
  const Result<DeviceSettings> s = LoadSettings(*area);
  if (s.status().code() == StatusCode::kNotFound) {
    out.Write("not provisioned: provision <device_id> <secret> <broker_host> <broker_port> ...\n");
    return Status::Ok();
  }
  OTA_TRY(s.status());
  // The secrets are never printed back, only whether they are set.
  out.Printf("device_id %s\nsecret set (%u characters)\nbroker %s:%u\nwifi %s%s\n", s->device_id,
             static_cast<unsigned>(std::strlen(s->secret)), s->broker_host,
             static_cast<unsigned>(s->broker_port),
             s->wifi_ssid[0] != '\0' ? s->wifi_ssid : "(the modem's saved network)",
             s->wifi_password[0] != '\0' ? ", password set" : "");
  return Status::Ok();
}

constexpr shell::Command kCommands[] = {
    {"version", "version          firmware and software versions", Version},
    {"status", "status           upgrade state, download progress, connection", ShowStatus},
    {"radio", "radio <value>    set DeviceStatus.radioValue (reported to the platform)", Radio},
    {"reboot", "reboot           reset the board (the loader runs first)", Reboot},
    {"provision",
     "provision <device_id> <secret> <broker_host> <broker_port> [<wifi_ssid> [<wifi_password>]]"
     "\n                   store this board's identity (settings sector; board only)",
     Provision},
    {"settings", "settings         show the stored identity (secrets hidden)", Settings},
};

}  // namespace

Span<const shell::Command> AppShellCommands() {
  return Span<const shell::Command>(kCommands, sizeof(kCommands) / sizeof(kCommands[0]));
}

}  // namespace ota::agent
