#include "board_runner.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "ota/host/keys.hpp"

namespace ota::device_sim {

namespace {
uint64_t MonotonicMs() {
  return SystemClock().NowMs();
}
}  // namespace

DeviceConfig LoadDeviceConfig(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot read");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(path.string() + ": not JSON: " + e.what());
  }
  DeviceConfig c;
  try {
    c.device_id = j.at("device_id");
    c.secret = j.at("secret");
    c.mqtt_host = j.value("mqtt_host", c.mqtt_host);
    c.mqtt_port = j.value("mqtt_port", c.mqtt_port);
    c.ca_file = j.at("ca");
    c.sw_version = j.value("sw_version", c.sw_version);
    c.report_interval_ms = j.value("report_interval_ms", c.report_interval_ms);
    c.transport = j.value("transport", c.transport);
    for (const auto& k : j.at("loader_keys")) {
      const host::PublicKeyResult key = host::LoadPublicKey(k.get<std::string>());
      if (!key.error.empty()) throw std::runtime_error(key.error);
      TrustedKey t{};
      std::memcpy(t.point, key.point.data(), kPublicKeySize);
      c.loader_keys.push_back(t);
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
  if (c.loader_keys.empty()) throw std::runtime_error(path.string() + ": no loader_keys");
  if (c.transport != "host" && c.transport != "esp-at") {
    throw std::runtime_error(path.string() + ": transport must be \"host\" or \"esp-at\"");
  }
  return c;
}

BoardRunner::BoardRunner(const BoardProfile& profile, const std::filesystem::path& dir,
                         DeviceConfig config)
    : profile_(profile),
      config_(std::move(config)),
      flash_(std::make_unique<sim::BoardFlash>(profile)),
      mqtt_(std::make_unique<MosquittoMqtt>(config_.mqtt_host, config_.mqtt_port, config_.ca_file)),
      https_(std::make_unique<HttplibHttps>(config_.ca_file)) {
  if (!dir.empty()) {
    std::filesystem::create_directories(dir);
    if (!flash_->internal.OpenFile((dir / "internal.flash").string()).ok() ||
        !flash_->external.OpenFile((dir / "external.flash").string()).ok() ||
        !flash_->otp.cells().OpenFile((dir / "otp.flash").string()).ok()) {
      throw std::runtime_error(dir.string() + ": cannot open the flash files");
    }
  }
  if (config_.transport == "esp-at") {
    modem_sim_ = std::make_unique<EspAtModemSim>(config_.ca_file, *https_);
    port::EspAtConfig mc;
    mc.broker_host = config_.mqtt_host.c_str();
    mc.broker_port = static_cast<uint16_t>(config_.mqtt_port);
    modem_ = std::make_unique<port::EspAtModem>(modem_sim_->board_side(), mc, MonotonicMs);
  }
  installer_ = std::make_unique<PackageInstaller>(PackagePolicy{
      Span<const TrustedKey>(config_.loader_keys.data(), config_.loader_keys.size()), false});
}

BoardRunner::~BoardRunner() = default;

void BoardRunner::Program(const std::vector<uint8_t>& loader, const std::vector<uint8_t>& app) {
  auto& in = flash_->internal.raw();
  const Partition& slot = profile_.partition(PartitionId::kRunning);
  if (app.size() > slot.size) throw std::runtime_error("the app is larger than the running slot");
  if (!loader.empty()) {
    if (loader.size() > slot.offset) throw std::runtime_error("the loader is too large");
    std::fill(in.begin(), in.begin() + slot.offset, 0xFF);
    std::copy(loader.begin(), loader.end(), in.begin());
  }
  std::fill(in.begin() + slot.offset, in.begin() + slot.offset + slot.size, 0xFF);
  std::copy(app.begin(), app.end(), in.begin() + slot.offset);
  // A programmer's image starts with a blank trust record: the next boot records the app.
  for (PartitionId id : {PartitionId::kTrustA, PartitionId::kTrustB}) {
    const Partition& t = profile_.partition(id);
    std::fill(in.begin() + t.offset, in.begin() + t.offset + t.size, 0xFF);
  }
  // raw() bypasses the write-through: persist what a programmer writes.
  if (!flash_->internal.Sync().ok()) throw std::runtime_error("cannot write the flash file");
}

Result<BootDecision> BoardRunner::Boot() {
  agent_.reset();
  mqtt_->Disconnect();
  if (modem_) modem_->Disconnect();
  Loader loader(profile_, flash_->loader_devices(), *installer_, ByteSpan(work_));
  return loader.Boot();
}

Status BoardRunner::StartApp(const BootDecision& decision) {
  if (!decision.boot_app) return StatusCode::kFailedPrecondition;
  running_version_ = decision.image.header.version;
  agent::AgentConfig ac;
  ac.device_id = config_.device_id.c_str();
  ac.secret = config_.secret.c_str();
  ac.sw_version = config_.sw_version.c_str();
  ac.report_interval_ms = config_.report_interval_ms;
  ac.keys = Span<const TrustedKey>(config_.loader_keys.data(), config_.loader_keys.size());
  Flash* const flashes[kFlashCount] = {&flash_->internal, &flash_->external};
  if (modem_) {
    // As the board's app does at start-up: the modem must answer before anything else.
    OTA_TRY(modem_->Begin());
    agent_ = std::make_unique<agent::OtaAgent>(ac, profile_, flashes, *modem_, *modem_, *modem_);
  } else {
    agent_ = std::make_unique<agent::OtaAgent>(ac, profile_, flashes, *mqtt_, *https_, clock_);
  }
  return agent_->Start(running_version_.c_str());
}

}  // namespace ota::device_sim
