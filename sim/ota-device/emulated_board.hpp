// The whole FIRE board in emulation (docs/m4-board.md, "The whole board"): the real loader.bin
// and app images on sim/m4's emulated STM32F429 (M4Board), its USART3 wired to the simulated
// ESP-AT modem (esp_at_modem_sim.hpp, inline), which does MQTT over TLS and HTTPS for real.
//
// Bytes both ways: what the firmware writes to USART3's DR is handed to the modem at the next
// stop of the board (at most 1 ms of board time later: SysTick stops it every millisecond);
// the modem answers at once (its network work is done in host time, with the board's clock
// stopped) and its answer reaches the firmware one byte per frame time at the baud rate the
// firmware set, through RXNE and the USART3 interrupt, as on the board.
//
// The module's pins: it runs while CH_PD (PC8) and RST (PC9) are high (pulled up when the
// firmware does not drive them); when it starts again (power-on, the app's ModemPowerOn pulse
// on RST) it has lost all state and says `ready` after kModemBootNs, ignoring the UART until
// then, as the ESP module does.
//
// Time: the board's clock runs as fast as the host can emulate it, except while the board
// waits for the network (nothing on the UART either way, the modem up): then it is held to
// real time, so
// the platform's and the broker's real latencies (a command the server sends a second later,
// MQTT keep-alive) are seen by the firmware as they would be on the board, not compressed.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "esp_at_modem_sim.hpp"
#include "host_transport.hpp"
#include "ota/agent/device_settings.hpp"
#include "sim/board_flash.hpp"
#include "sim/m4/board.hpp"

namespace ota::device_sim {

// Where the app keeps its settings record in the W25Q128 (firmware/app_main.cpp,
// docs/spec/device-settings.md).
inline constexpr uint32_t kAppSettingsOffset = 0x102000;
inline constexpr uint32_t kAppSettingsSize = 4096;
// The ESP module's boot, from reset to `ready` (boards/stm32f429-fire/modem_power.hpp: about
// 1 s).
inline constexpr uint64_t kModemBootNs = 1'000'000'000;

// Factory provisioning: the app's settings record, as the shell's `provision` writes it, put
// into the W25Q128 directly (not counted: the flash counters are reset afterwards).
Status ProvisionSettings(sim::BoardFlash& flash, const agent::DeviceSettings& settings);

// The factory layout the board images expect: sim::m4::FlashFactoryImages
// (sim/m4/factory_image.hpp).

class EmulatedBoard {
 public:
  // `flash` (the stm32f429-fire geometry) must outlive the board; `ca_file` is the platform's
  // CA, which the modem checks the broker's and the download server's certificates against.
  EmulatedBoard(sim::BoardFlash& flash, std::string ca_file);

  // Power to the board and its modem: M4Board::PowerOn, and the modem boots (use this, not
  // board().PowerOn(), which leaves the modem as it was).
  void PowerOn();

  // Runs the board with its modem until `until` is true (checked whenever the board stops: at
  // least every millisecond of board time, and after every console byte), a fault, a power
  // loss or a limit of `limits` (absolute: instructions and board time since power-on).
  sim::m4::RunResult Run(const std::function<bool()>& until, const sim::m4::RunLimits& limits = {});

  sim::m4::M4Board& board() { return board_; }
  EspAtModemSim& modem() { return modem_; }
  HttplibHttps& https() { return https_; }
  // Bytes the firmware sent to the modem and the modem to the firmware.
  uint64_t bytes_to_modem() const { return to_modem_; }
  uint64_t bytes_from_modem() const { return from_modem_; }
  // Bytes the firmware sent while the modem was off or booting (lost, as on the board).
  uint64_t bytes_lost_to_modem() const { return lost_to_modem_; }
  // Times the modem started (power-on included).
  int modem_starts() const { return modem_starts_; }
  // Board time held to real time while the board waited for the network.
  double network_wait_seconds() const { return static_cast<double>(held_ns_) / 1e9; }

 private:
  void Pace();
  bool ModemPinsHigh();
  // Follows CH_PD and RST: restarts the modem, and says `ready` when it has booted.
  void UpdateModem();

  HttplibHttps https_;
  sim::m4::M4Board board_;
  EspAtModemSim modem_;
  std::string tx_;  // transmitted by the firmware, not yet handed to the modem
  uint64_t to_modem_ = 0;
  uint64_t from_modem_ = 0;
  uint64_t lost_to_modem_ = 0;
  bool modem_on_ = false;
  uint64_t modem_ready_ns_ = 0;  // while booting: when it says `ready`
  bool modem_booting_ = false;
  int modem_starts_ = 0;
  uint64_t held_ns_ = 0;
  uint64_t anchor_board_ns_ = 0;
  std::chrono::steady_clock::time_point anchor_real_;
  std::chrono::steady_clock::time_point last_poll_;
};

}  // namespace ota::device_sim
