#include "fleet_board.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string_view>
#include <thread>

#include "ota/loader.hpp"

namespace ota::fleet {

namespace {

Span<const TrustedKey> OneKey(const TrustedKey& k) {
  return Span<const TrustedKey>(&k, 1);
}

}  // namespace

FleetBoard::FleetBoard(FleetShared& shared, std::string device_id, std::string secret,
                       const std::vector<uint8_t>& image, const TrustedKey& loader_key,
                       const BoardTraits& traits, uint32_t seed)
    : shared_(shared),
      device_id_(std::move(device_id)),
      secret_(std::move(secret)),
      traits_(traits),
      key_(loader_key),
      flash_(kSimSmall),
      installer_(PackagePolicy{OneKey(key_), false}),
      mqtt_(shared.mqtt_host, shared.mqtt_port, *shared.tls, shared.counters, *this,
            MqttFaults{traits.slow ? traits.slow_ms : 0, traits.drop ? traits.drop_mean_ms : 0,
                       seed}),
      https_(shared.ca_file, shared.counters,
             HttpFaults{traits.drop ? 0.1 : 0.0, traits.power_cut_after, seed ^ 0x5a5a5a5au},
             [this] { flash_.power.CutNow(); }) {
  // As a programmer writes it: the app in the running slot, the rest of the slot erased.
  auto& in = flash_.internal.raw();
  const Partition& slot = kSimSmall.partition(PartitionId::kRunning);
  std::fill(in.begin() + slot.offset, in.begin() + slot.offset + slot.size, 0xFF);
  std::copy(image.begin(), image.begin() + std::min<size_t>(image.size(), slot.size),
            in.begin() + slot.offset);
}

FleetBoard::~FleetBoard() {
  Join();
}

bool FleetBoard::Start(size_t stack_bytes) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack_bytes);
  started_ = pthread_create(&thread_, &attr, &FleetBoard::Main, this) == 0;
  pthread_attr_destroy(&attr);
  return started_;
}

void FleetBoard::Join() {
  if (started_) {
    pthread_join(thread_, nullptr);
    started_ = false;
  }
}

void* FleetBoard::Main(void* self) {
  static_cast<FleetBoard*>(self)->Run();
  return nullptr;
}

bool FleetBoard::Sleep(int64_t ms) {
  // Thousands of boards sleep at once: each on its own condition variable (one shared mutex
  // took a core at 3,000 boards; waking every 100 ms to look at the stop flag, several).
  std::unique_lock<std::mutex> lock(sleep_mu_);
  return !sleep_cv_.wait_for(lock, std::chrono::milliseconds(ms),
                             [this] { return shared_.stop.load(); });
}

void FleetBoard::Wake() {
  std::lock_guard<std::mutex> g(sleep_mu_);
  sleep_cv_.notify_all();
}

void FleetBoard::Run() {
  if (traits_.start_delay_ms > 0 && !Sleep(traits_.start_delay_ms)) return;
  flash_.power.PowerOn();
  for (;;) {
    const Next next = PowerOn();
    // A reset: the sessions go with the supply (or the watchdog).
    agent_.reset();
    mqtt_.Disconnect();
    https_.Close();
    if (next != Next::kReboot) break;
    flash_.power.PowerOn();
  }
}

FleetBoard::Next FleetBoard::PowerOn() {
  ++trace_.boots;
  shared_.counters.boots.fetch_add(1, std::memory_order_relaxed);
  shared_.counters.rebooting.fetch_add(1, std::memory_order_relaxed);
  Flash* const flashes[kFlashCount] = {&flash_.internal, &flash_.external};
  Result<BootDecision> d = StatusCode::kPowerLost;
  // The loader runs until it settles (a cut during its work powers it on again).
  for (int tries = 0; tries < 5 && !d.ok(); ++tries) {
    Loader loader(kSimSmall, flash_.loader_devices(), installer_, ByteSpan(work_));
    d = loader.Boot();
    if (!d.ok()) flash_.power.PowerOn();
  }
  shared_.counters.rebooting.fetch_sub(1, std::memory_order_relaxed);
  if (!d.ok()) {
    trace_.error = std::string("loader: ") + d.status().name();
    return Next::kBricked;
  }
  if (!d->boot_app) {
    trace_.error = "loader: nothing verified to boot";
    return Next::kBricked;
  }
  trace_.running_version = d->image.header.version;
  agent::AgentConfig ac;
  ac.device_id = device_id_.c_str();
  ac.secret = secret_.c_str();
  ac.sw_version = "SOTAV1";
  ac.report_interval_ms = shared_.report_interval_ms;
  ac.keys = OneKey(key_);
  ac.gate = traits_.refuse ? this : nullptr;
  agent_ = std::make_unique<agent::OtaAgent>(ac, kSimSmall, flashes, mqtt_, https_, clock_);
  if (!agent_->Start(trace_.running_version.c_str()).ok()) {
    trace_.error = "app: cannot read the boot state";
    return Next::kBricked;
  }
  while (!shared_.stop.load(std::memory_order_relaxed)) {
    const Result<agent::AgentEvent> e = agent_->Step(shared_.step_wait_ms);
    if (https_.first_request_ms() >= 0 && trace_.download_start_ms < 0 &&
        shared_.task_ms.load() != 0) {
      trace_.download_start_ms = https_.first_request_ms();
    }
    if (https_.last_complete_ms() >= 0) trace_.download_end_ms = https_.last_complete_ms();
    if (!e.ok() && e.status().code() == StatusCode::kPowerLost) return Next::kReboot;
    if (e.ok() && e.value() == agent::AgentEvent::kReboot) return Next::kReboot;
    // Disconnected: the agent waits out its back-off; no need to ask it again at once.
    if (!agent_->connected() && !Sleep(250)) break;
  }
  return Next::kStop;
}

void FleetBoard::OnConnected(bool up) {
  trace_.connected.store(up);
  if (up && trace_.first_connect_ms.load() < 0) trace_.first_connect_ms.store(NowMs());
}

void FleetBoard::SetDone(bool done) {
  if (done == done_) return;
  done_ = done;
  shared_.counters.done.fetch_add(done ? 1 : -1, std::memory_order_relaxed);
}

void FleetBoard::OnPublished(const char*, const char* payload, size_t len) {
  const std::string_view text(payload, len);
  const bool after_task = shared_.task_ms.load(std::memory_order_relaxed) != 0;
  if (text.find("\"version_report\"") != std::string_view::npos) {
    if (after_task && trace_.version_query_ms >= 0 && trace_.version_report_ms < 0) {
      trace_.version_report_ms = NowMs();
    }
    return;
  }
  if (text.find("\"upgrade_progress_report\"") == std::string_view::npos) return;
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return;
  const nlohmann::json p = j["services"][0]["paras"];
  const int code = p.value("result_code", -1);
  const std::string version = p.value("version", "");
  trace_.last_code = code;
  trace_.last_version = version;
  if (code == 0 && version == shared_.target_version) {
    trace_.last = LastReport::kSuccess;
  } else if (code != 0) {
    trace_.last = LastReport::kFailure;
  } else {
    trace_.last = LastReport::kProgress;
    return;
  }
  const int64_t now = NowMs();
  if (trace_.first_final_ms < 0) trace_.first_final_ms = now;
  trace_.last_final_ms = now;
  // Done: upgraded, or refused for good (6 is a download the platform will retry).
  SetDone(code != agent::kResultDownloadTimeout);
}

void FleetBoard::OnReceived(const char* payload, size_t len) {
  if (shared_.task_ms.load(std::memory_order_relaxed) == 0) return;
  const std::string_view text(payload, len);
  if (trace_.version_query_ms < 0 && text.find("\"version_query\"") != std::string_view::npos) {
    trace_.version_query_ms = NowMs();
  } else if (text.find("\"firmware_upgrade\"") != std::string_view::npos) {
    trace_.last_command_ms = NowMs();
    if (trace_.command_ms < 0) trace_.command_ms = trace_.last_command_ms;
  }
}

int FleetBoard::Allow(const char*, uint32_t) {
  return agent::kResultLowBattery;
}

}  // namespace ota::fleet
