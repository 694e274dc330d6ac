// The demo app for the stm32f429-fire board, built twice (FOTA_VERSION: appv1 = FOTAV1,
// appv2 = FOTAV2): the OTA agent of the device library over the ESP-AT modem on USART3
// (port::EspAtModem), and the shell on the USART1 console (docs/firmware.md, "The app").
// Everything is static: no heap (no_heap.cpp refuses any that a library might want).
#include <mbedtls/memory_buffer_alloc.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "clock.hpp"
#include "console.hpp"
#include "loader_keys.hpp"
#include "modem_power.hpp"
#include "ota/agent/app_shell.hpp"
#include "ota/agent/device_settings.hpp"
#include "ota/agent/ota_agent.hpp"
#include "ota/image.hpp"
#include "ota/port/esp_at_modem.hpp"
#include "ota/profile.hpp"
#include "ota/shell/shell.hpp"
#include "stm32f4_flash.hpp"
#include "stm32f4_regs.hpp"
#include "uart.hpp"
#include "w25q128.hpp"
#include "watchdog.hpp"

#ifndef FOTA_VERSION
#error "FOTA_VERSION must be defined (e.g. -DFOTA_VERSION=\"FOTAV1\")"
#endif

namespace {

// The settings sector: the first free 4 KB of the W25Q128 after the boot state's second copy
// (docs/DESIGN.md, layout).
constexpr uint32_t kSettingsOffset = 0x102000;
constexpr uint32_t kSettingsSize = 4096;
constexpr uint32_t kModemRetryMs = 10000;  // a modem that did not answer is asked again
constexpr uint32_t kStepWaitMs = 20;       // the agent's wait per turn: the shell stays live
constexpr uint32_t kResetDelayMs = 200;    // the last console line leaves before the reset

uint8_t g_console_rx[fire::kConsoleRxBytes];
uint8_t g_modem_rx[fire::kModemRxBytes];
fire::Uart g_console(fire::kConsoleUart, g_console_rx);
fire::Uart g_modem_uart(fire::kModemUart, g_modem_rx);
fire::Stm32f4Flash g_internal;
fire::W25q128 g_external;

// mbedTLS (HMAC-SHA-256 for the IoTDA password, ECDSA for the package check) allocates here.
constexpr uint32_t kMbedtlsArenaSize = 8 * 1024;
alignas(8) unsigned char g_mbedtls_arena[kMbedtlsArenaSize];

ota::agent::DeviceSettings g_settings;
// The modem and the agent are built once the settings are known, in this storage.
alignas(ota::port::EspAtModem) uint8_t g_modem_storage[sizeof(ota::port::EspAtModem)];
alignas(ota::agent::OtaAgent) uint8_t g_agent_storage[sizeof(ota::agent::OtaAgent)];

class ConsoleOutput final : public ota::shell::Output {
 public:
  void Write(const char* text) override { fire::ConsoleWrite(text); }
};

// SysTick's 32-bit milliseconds, widened: called at least every few seconds by the loop, far
// more often than the 49 days after which the counter wraps.
uint64_t Millis64() {
  static uint32_t last = 0;
  static uint64_t high = 0;
  const uint32_t now = fire::Millis();
  if (now < last) high += uint64_t{1} << 32;
  last = now;
  return high | now;
}

[[noreturn]] void Reset() {
  fire::DelayMs(kResetDelayMs);
  fire::ConsoleFlush();
  fire::reg::Dsb();
  fire::reg::SCB_AIRCR() = fire::reg::kAircrSysResetReq;
  fire::reg::Dsb();
  for (;;) {
  }
}

void Say(const char* a, const char* b = "", const char* c = "") {
  fire::ConsoleWrite("app: ");
  fire::ConsoleWrite(a);
  fire::ConsoleWrite(b);
  fire::ConsoleWrite(c);
  fire::ConsoleWrite("\n");
}

// The version the loader verified: the stamped header of the running image.
const char* RunningVersion(ota::ImageHeader* header) {
  const ota::Partition& slot = ota::kStm32f429Fire.partition(ota::PartitionId::kRunning);
  uint8_t raw[ota::kImageHeaderSize];
  std::memcpy(raw,
              reinterpret_cast<const uint8_t*>(ota::kStm32f429Fire.internal_base + slot.offset +
                                               ota::kImageHeaderOffset),
              sizeof(raw));
  const ota::Result<ota::ImageHeader> h = ota::DecodeImageHeader(raw);
  if (!h.ok()) return FOTA_VERSION;  // not stamped (a debugger-loaded build): its own name
  *header = h.value();
  return header->version;
}

}  // namespace

// mbedTLS found its arena corrupted: nothing in RAM can be trusted.
extern "C" void ota_mbedtls_fatal(int /*status*/) {
  fire::ConsoleWrite("app: mbedTLS arena corrupted, resetting\n");
  Reset();
}

int main() {
  fire::ClockInit();  // the loader already runs the PLL: this restarts SysTick
  fire::ConsoleInit();
  mbedtls_memory_buffer_alloc_init(g_mbedtls_arena, sizeof(g_mbedtls_arena));
  static ota::ImageHeader header;
  const char* version = RunningVersion(&header);
  Say("version ", version, " (software " OTA_APP_SW_VERSION ")");

  ConsoleOutput out;
  ota::agent::AppShellState state;
  state.fw_version = version;
  state.sw_version = OTA_APP_SW_VERSION;
  const ota::FlashArea settings_area(g_external, kSettingsOffset, kSettingsSize);
  state.settings = &settings_area;
  ota::shell::Shell shell(ota::agent::AppShellCommands(), &state, out, true);

  // The loader started the watchdog: every wait and every turn of the loop kicks it.
  fire::WatchdogKick();
  g_console.set_wait_hook(fire::WatchdogKick);
  g_modem_uart.set_wait_hook(fire::WatchdogKick);
  if (const ota::Status s = g_console.Init(); !s.ok()) Say("console input: ", s.name());
  const ota::Status flash = g_external.Init();
  if (!flash.ok()) Say("w25q128: ", flash.name(), ": no upgrades, no settings");
  const ota::Result<ota::agent::DeviceSettings> loaded =
      flash.ok() ? ota::agent::LoadSettings(settings_area)
                 : ota::Result<ota::agent::DeviceSettings>(flash);
  if (loaded.ok()) {
    g_settings = loaded.value();
  } else {
    Say("not provisioned (", loaded.status().name(), "): use `provision`, then `reboot`");
  }

  ota::port::EspAtModem* modem = nullptr;
  if (loaded.ok()) {
    if (const ota::Status s = g_modem_uart.Init(); !s.ok()) {
      Say("modem uart: ", s.name());
    } else {
      fire::ModemPowerOn();
      ota::port::EspAtConfig mc;
      mc.broker_host = g_settings.broker_host;
      mc.broker_port = g_settings.broker_port;
      mc.wifi_ssid = g_settings.wifi_ssid;
      mc.wifi_password = g_settings.wifi_password;
      modem = new (g_modem_storage) ota::port::EspAtModem(g_modem_uart, mc, Millis64);
    }
  }

  ota::agent::OtaAgent* agent = nullptr;
  bool agent_started = false;
  uint64_t next_modem_try = 0;
  shell.Prompt();
  for (;;) {
    if (modem != nullptr && agent == nullptr && Millis64() >= next_modem_try) {
      const ota::Status s = modem->Begin();
      if (s.ok()) {
        ota::agent::AgentConfig ac;
        ac.device_id = g_settings.device_id;
        ac.secret = g_settings.secret;
        ac.sw_version = OTA_APP_SW_VERSION;
        ac.keys = ota::Span<const ota::TrustedKey>(fire::kLoaderKeys);
        ota::Flash* const flashes[ota::kFlashCount] = {&g_internal, &g_external};
        agent = new (g_agent_storage)
            ota::agent::OtaAgent(ac, ota::kStm32f429Fire, flashes, *modem, *modem, *modem);
      } else {
        Say("modem: ", s.name(), "; trying again in 10 s");
        next_modem_try = Millis64() + kModemRetryMs;
      }
    }
    fire::WatchdogKick();
    if (agent != nullptr && !agent_started && Millis64() >= next_modem_try) {
      // Without the boot state the agent could neither confirm this image nor resume a
      // download: it does not run until it has read it.
      const ota::Status started = agent->Start(version);
      if (started.ok()) {
        agent_started = true;
        state.agent = agent;
      } else {
        Say("agent: boot state: ", started.name(), "; trying again in 10 s");
        next_modem_try = Millis64() + kModemRetryMs;
      }
    }
    if (agent_started) {
      const ota::Result<ota::agent::AgentEvent> e = agent->Step(kStepWaitMs);
      if (!e.ok()) Say("agent: ", e.status().name());
      if (e.ok() && e.value() == ota::agent::AgentEvent::kReboot) {
        Say("package downloaded and verified: rebooting into the loader");
        Reset();
      }
    }
    uint8_t typed[32];
    const ota::Result<size_t> n = g_console.Read(typed, agent_started ? 0 : kStepWaitMs);
    for (size_t i = 0; n.ok() && i < n.value(); ++i)
      shell.Feed(static_cast<char>(typed[i]));
    if (state.reboot_requested) Reset();
    (void)Millis64();  // keeps the widening current while nothing else asks the time
  }
}
