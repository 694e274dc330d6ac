// One simulated STM32F429 FIRE board: its two flash devices (in memory or in files), the
// loader that runs at every power-on, and the app with its OTA agent on host transports.
// `ota-device` drives one from the command line; integration tests drive it directly.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "esp_at_modem_sim.hpp"
#include "host_transport.hpp"
#include "ota/agent/ota_agent.hpp"
#include "ota/loader.hpp"
#include "ota/package_installer.hpp"
#include "ota/port/esp_at_modem.hpp"
#include "sim/board_flash.hpp"

namespace ota::device_sim {

struct DeviceConfig {
  std::string device_id, secret;
  std::string mqtt_host = "localhost";
  int mqtt_port = 8883;
  std::string ca_file;                  // the platform's CA (MQTTS and HTTPS)
  std::vector<TrustedKey> loader_keys;  // the keys built into the loader
  std::string sw_version = "SOTAV1";
  uint32_t report_interval_ms = 5000;
  // "host": the agent uses the host transports directly; "esp-at": the board's network port
  // (port::EspAtModem) talks AT commands to a simulated ESP-AT modem, as on the board.
  std::string transport = "host";
};

// Reads the JSON config (docs/agent.md, "ota-device"); throws std::runtime_error.
DeviceConfig LoadDeviceConfig(const std::filesystem::path& path);

class BoardRunner {
 public:
  // `dir` empty: flash in memory; else DIR/internal.flash and DIR/external.flash.
  BoardRunner(const BoardProfile& profile, const std::filesystem::path& dir, DeviceConfig config);
  ~BoardRunner();

  // Writes images at their addresses as a programmer would (J-Flash): the loader at the start
  // of internal flash (optional), the app in the running slot; the rest of the slot erased.
  void Program(const std::vector<uint8_t>& loader, const std::vector<uint8_t>& app);

  // One power-on: the loader's whole run. kPowerLost if a planned cut struck.
  Result<BootDecision> Boot();
  // Starts the app from the image the loader verified.
  Status StartApp(const BootDecision& decision);
  agent::OtaAgent& agent() { return *agent_; }
  const std::string& running_version() const { return running_version_; }
  const std::string& sw_version() const { return config_.sw_version; }

  sim::BoardFlash& flash() { return *flash_; }
  // The HTTPS client that fetches packages (the modem's, with the esp-at transport).
  HttplibHttps& https() { return *https_; }
  // The simulated modem (esp-at transport only, else null).
  EspAtModemSim* modem_sim() { return modem_sim_.get(); }
  const BoardProfile& profile() const { return profile_; }

 private:
  const BoardProfile& profile_;
  DeviceConfig config_;
  std::unique_ptr<sim::BoardFlash> flash_;
  std::unique_ptr<MosquittoMqtt> mqtt_;
  std::unique_ptr<HttplibHttps> https_;
  SystemClock clock_;
  std::unique_ptr<EspAtModemSim> modem_sim_;
  std::unique_ptr<port::EspAtModem> modem_;
  std::unique_ptr<PackageInstaller> installer_;
  std::unique_ptr<agent::OtaAgent> agent_;
  std::string running_version_;
  uint8_t work_[1024] = {};
};

}  // namespace ota::device_sim
