#include "agent_powercut.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "ota/boot_state.hpp"
#include "ota/flash_area.hpp"
#include "ota/sha256.hpp"

namespace ota::testing {

namespace {

// Agent turns per app run: a download is one turn, settling takes a few.
constexpr int kMaxStepsPerRun = 64;
// The uninterrupted life cycle takes 3 power-ons (download, install and confirm, settled);
// a fault adds one or two. Beyond this the board is stuck.
constexpr int kMaxPowerOns = 12;

std::string Hex(const uint8_t* bytes, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 15];
  }
  return out;
}

// `"key":"value"` in a flat JSON text the agent wrote; "" if absent.
std::string StringField(const std::string& json, const char* key) {
  const std::string k = std::string("\"") + key + "\":\"";
  const size_t at = json.find(k);
  if (at == std::string::npos) return "";
  const size_t begin = at + k.size();
  return json.substr(begin, json.find('"', begin) - begin);
}

// `"key":123`; -1 if absent.
int IntField(const std::string& json, const char* key) {
  const std::string k = std::string("\"") + key + "\":";
  const size_t at = json.find(k);
  if (at == std::string::npos) return -1;
  return static_cast<int>(std::strtol(json.c_str() + at + k.size(), nullptr, 10));
}

// Nothing moves the board on from here unless the platform sends a command. A download left
// half done counts too: with the platform silent it stays so (the old image runs), which the
// sweep then counts as an unexpected outcome, not as a brick.
bool Final(const BootRecord& r) {
  return r.status == UpgradeStatus::kIdle || r.status == UpgradeStatus::kUpgradedFailed ||
         r.status == UpgradeStatus::kDownloading ||
         (r.status == UpgradeStatus::kUpgradedOk && r.confirmed());
}

}  // namespace

// ---- FakePlatform ----

FakePlatform::FakePlatform(const PlatformTask& task, const sim::PowerSupply& power)
    : task_(task), power_(power) {
  Sha256 sha;
  Sha256Digest sign;
  if (!sha.Update(ConstByteSpan(task.package.data(), task.package.size())).ok() ||
      !sha.Finish(sign).ok()) {
    std::abort();
  }
  std::ostringstream c;
  c << R"({"object_device_id":")" << task.device_id
    << R"(","services":[{"service_id":"$ota","event_type":"firmware_upgrade","paras":{)"
    << R"("version":")" << task.version << R"(","url":")" << task.url << R"(","file_size":)"
    << task.package.size() << R"(,"access_token":")" << task.token
    << R"(","expires":86400,"sign":")" << Hex(sign, kSha256Size) << R"("}}]})";
  command_ = c.str();
}

Status FakePlatform::Connect(const char*, const char* username, const char*) {
  if (power_.lost()) return StatusCode::kIoError;
  if (task_.device_id != username) return StatusCode::kIoError;
  up_ = true;
  ++connects_;
  if (duplicate && !succeeded_) SendCommand();
  return Status::Ok();
}

Status FakePlatform::Subscribe(const char*) {
  return up_ ? Status::Ok() : Status(StatusCode::kIoError);
}

Status FakePlatform::Publish(const char* topic, ConstByteSpan payload) {
  if (!up_) return StatusCode::kFailedPrecondition;
  if (power_.lost()) {
    ++published_without_power_;
    return StatusCode::kIoError;
  }
  const std::string t(topic);
  if (t.size() < 10 || t.compare(t.size() - 10, 10, "/events/up") != 0) return Status::Ok();
  const std::string json(reinterpret_cast<const char*>(payload.data()), payload.size());
  PlatformReport r;
  r.event = StringField(json, "event_type");
  if (r.event == "version_report") {
    r.version = StringField(json, "fw_version");
    reports_.push_back(r);
    // A device that still reports another version is sent the command (again).
    if (!succeeded_ && r.version != task_.version) SendCommand();
  } else if (r.event == "upgrade_progress_report") {
    r.version = StringField(json, "version");
    r.result_code = IntField(json, "result_code");
    r.progress = IntField(json, "progress");
    r.description = StringField(json, "description");
    reports_.push_back(r);
    if (r.result_code == 0 && r.progress == 100 && r.version == task_.version &&
        r.description == "upgraded") {
      succeeded_ = true;
    }
  }
  return Status::Ok();
}

Result<size_t> FakePlatform::Receive(uint32_t, Span<char> topic, ByteSpan payload) {
  if (!up_) return StatusCode::kFailedPrecondition;
  if (inbox_.empty()) return StatusCode::kNotFound;
  const std::string message = inbox_.front();
  inbox_.pop_front();
  const std::string t = "$oc/devices/" + task_.device_id + "/sys/events/down";
  if (t.size() + 1 > topic.size() || message.size() > payload.size()) return StatusCode::kTooLarge;
  std::memcpy(topic.data(), t.c_str(), t.size() + 1);
  std::memcpy(payload.data(), message.data(), message.size());
  return message.size();
}

void FakePlatform::Disconnect() {
  up_ = false;
  inbox_.clear();  // a new session does not get what was queued for the old one
}

void FakePlatform::SendCommand() {
  if (commands_sent_ >= max_commands) return;
  ++commands_sent_;
  inbox_.push_back(command_);
  if (duplicate) inbox_.push_back(command_);
}

// ---- FakeHttps, FakeClock ----

Result<size_t> FakeHttps::GetRange(const char* url, const char* token, uint32_t offset,
                                   ByteSpan out, uint32_t* total_size) {
  ++requests_;
  if (task_.url != url || task_.token != token) return StatusCode::kNotFound;
  const size_t size = task_.package.size();
  if (offset >= size) return StatusCode::kOutOfRange;
  const size_t n = std::min(out.size(), size - offset);
  std::memcpy(out.data(), task_.package.data() + offset, n);
  *total_size = static_cast<uint32_t>(size);
  bytes_ += n;
  return n;
}

void FakeClock::UtcHour(char (&out)[11]) {
  std::memcpy(out, "2026112910", sizeof(out));
}

// ---- AgentLifeCycle ----

AgentLifeCycle::AgentLifeCycle(const AgentScenario& scenario, SimBoard& board,
                               Installer& loader_installer)
    : scenario_(scenario),
      board_(board),
      loader_installer_(loader_installer),
      platform_(scenario.task, board.power()),
      https_(scenario.task) {
  platform_.duplicate = scenario.duplicate_commands;
}

Result<BootDecision> AgentLifeCycle::BootLoader() {
  Loader loader(board_.profile(), board_.flash().loader_devices(), loader_installer_,
                ByteSpan(loader_work_));
  return loader.Boot();
}

Result<BootRecord> AgentLifeCycle::LoadRecord() {
  Flash* const flashes[kFlashCount] = {&board_.flash().internal, &board_.flash().external};
  BootStore store(OpenPartition(board_.profile(), flashes, PartitionId::kBootStateA),
                  OpenPartition(board_.profile(), flashes, PartitionId::kBootStateB));
  return store.Load();
}

AgentLifeCycle::Outcome AgentLifeCycle::Run(int max_power_ons, AgentPhases* phase_ops) {
  Outcome out;
  sim::PowerSupply& power = board_.power();
  const uint64_t start_ops = power.total_ops();
  uint64_t staged_at = 0;     // ops when the first app run asked for the reboot
  uint64_t installed_at = 0;  // ops after the loader's power-on that followed
  Flash* const flashes[kFlashCount] = {&board_.flash().internal, &board_.flash().external};
  agent::AgentConfig config;
  config.device_id = scenario_.task.device_id.c_str();
  config.secret = "secret";
  config.keys = Span<const TrustedKey>(scenario_.keys.data(), scenario_.keys.size());

  int settled_times = 0;  // power-ons that ended settled, in a row
  std::string settled_version;
  for (int boot = 0; boot < max_power_ons; ++boot) {
    platform_.Disconnect();  // the reset ended the session
    const uint64_t ops_before_boot = power.total_ops();
    const Result<BootDecision> d = BootLoader();
    ++out.power_ons;
    if (power.lost()) {
      out.power_lost = true;
      return out;
    }
    if (!d.ok()) {
      out.error = std::string("loader error ") + d.status().name();
      return out;
    }
    const uint64_t loader_ops = power.total_ops() - ops_before_boot;
    if (staged_at != 0 && installed_at == 0) installed_at = power.total_ops();
    out.decision = d.value();
    if (!d->boot_app) {
      out.error = "no bootable image: the board stays in the loader";
      return out;
    }

    // The app: RAM is new, so is the agent; it starts from what the flash holds.
    const auto agent = std::make_unique<agent::OtaAgent>(config, board_.profile(), flashes,
                                                         platform_, https_, clock_);
    const Status started = agent->Start(d->image.header.version);
    if (power.lost()) {
      out.power_lost = true;
      return out;
    }
    if (!started.ok()) {
      out.error = std::string("agent Start ") + started.name();
      return out;
    }
    bool reboot = false;
    for (int step = 0; step < kMaxStepsPerRun && !reboot; ++step) {
      const Result<agent::AgentEvent> e = agent->Step(0);
      if (power.lost()) {
        out.power_lost = true;
        return out;
      }
      if (!e.ok()) {
        out.error = std::string("agent Step ") + e.status().name();
        return out;
      }
      if (e.value() == agent::AgentEvent::kReboot) {
        reboot = true;
        if (staged_at == 0) staged_at = power.total_ops();
        continue;
      }
      // Settled: the upgrade has an end, and the platform has nothing more to send.
      if (platform_.connected() && platform_.idle()) {
        const Result<BootRecord> r = LoadRecord();
        if (!r.ok()) {
          out.error = std::string("boot state unreadable ") + r.status().name();
          return out;
        }
        if (Final(r.value())) {
          out.settled = true;
          out.record = r.value();
          break;
        }
      }
    }
    if (out.settled) {
      // Settled once is not enough: the next power-on is the loader's first sight of the
      // confirm (it records the image as confirmed in its trust record and burns the counter
      // into OTP); the one after must boot the same image with nothing left to do and the app
      // settle at once.
      if (settled_times > 0 && settled_version != d->image.header.version) {
        out.error = "the next power-on booted another image";
        return out;
      }
      if (settled_times == 2) {
        if (loader_ops != 0) {
          out.error = "the loader wrote to the flash at the power-on after the board settled";
          return out;
        }
        break;
      }
      ++settled_times;
      settled_version = d->image.header.version;
      out.settled = false;
      continue;
    }
    if (settled_times > 0) {
      out.error = "settled, but the next power-on did not";
      return out;
    }
    if (!reboot) {
      out.error = "the app neither settled nor asked for a reboot";
      return out;
    }
  }
  if (phase_ops != nullptr) {
    const uint64_t end = power.total_ops();
    if (staged_at == 0) staged_at = end;
    if (installed_at == 0) installed_at = end;
    phase_ops->download_stage = staged_at - start_ops;
    phase_ops->install = installed_at - staged_at;
    phase_ops->confirm = end - installed_at;
  }
  if (!out.settled) out.error = "did not settle";
  return out;
}

// ---- the sweep ----

namespace {

std::unique_ptr<SimBoard> Copy(const AgentScenario& s, SimBoard& prepared) {
  auto board = std::make_unique<SimBoard>(*s.profile);
  board->flash().CopyCellsFrom(prepared.flash());
  return board;
}

// A settled board: it boots, its slot holds exactly one of the two images, the boot state and
// the platform agree with it. Returns "" if consistent.
std::string CheckConsistent(const AgentScenario& s, SimBoard& board, AgentLifeCycle& life,
                            const AgentLifeCycle::Outcome& run, bool* holds_new) {
  if (!run.error.empty()) return run.error;
  if (!run.settled) return "did not settle";
  if (!run.decision.boot_app) return "no bootable image";
  if (life.platform().published_without_power() != 0) return "published without power";
  const bool is_new = board.RunningHolds(s.new_image);
  const bool is_old = board.RunningHolds(s.old_image);
  if (!is_new && !is_old) return "running slot holds neither image";
  const BootRecord& r = run.record;
  const char* version = run.decision.image.header.version;
  if (is_new) {
    if (std::strcmp(version, s.task.version.c_str()) != 0)
      return "booted version is not the new one";
    // The agent reports the outcome, then saves the record confirmed and idle in one go.
    if (!r.confirmed()) return "new image not confirmed";
    if (r.status != UpgradeStatus::kIdle && r.status != UpgradeStatus::kUpgradedOk) {
      return std::string("new image but state ") + UpgradeStatusName(r.status);
    }
    if (r.reason != FailReason::kNone) return "new image but a failure reason recorded";
    if (!life.platform().succeeded()) return "new image but no success report reached the platform";
  } else {
    if (r.status == UpgradeStatus::kUpgradedOk) return "old image but state upgraded-ok";
    if (std::strcmp(version, "FOTAV1") != 0) return "booted version is not the old one";
    if (life.platform().succeeded()) return "the platform was told upgraded, the old image runs";
  }
  *holds_new = is_new;
  return "";
}

}  // namespace

AgentSweepResult RunAgentSweep(const AgentScenario& s, const AgentSweepOptions& options) {
  AgentSweepResult result;
  SweepResult& sweep = result.sweep;
  // One loader installer for every power-on of the sweep, as in the loader sweeps: what it
  // keeps between boots only spares the ECDSA computation on a digest and signature it has
  // already verified; the digest is recomputed from the flash at every check.
  PackageInstaller loader_installer(
      PackagePolicy{Span<const TrustedKey>(s.keys.data(), s.keys.size()), false});

  SimBoard prepared(*s.profile);
  prepared.FlashRunning(s.old_image);
  // The factory's first power-on (write protection, trust record), before any fault.
  if (!prepared.Boot().ok()) {
    sweep.failures.push_back("the factory's first boot failed");
    ++sweep.bricked;
    return result;
  }
  {
    Flash* const flashes[kFlashCount] = {&prepared.flash().internal, &prepared.flash().external};
    BootStore store(OpenPartition(*s.profile, flashes, PartitionId::kBootStateA),
                    OpenPartition(*s.profile, flashes, PartitionId::kBootStateB));
    const int history =
        s.history_records >= 0 ? s.history_records : static_cast<int>(store.slots_per_copy()) - 3;
    for (int i = 0; i < history; ++i) {
      BootRecord idle;
      if (!store.Save(idle).ok()) {
        sweep.failures.push_back("could not write the boot-state history");
        ++sweep.bricked;
        return result;
      }
    }
  }

  // The uninterrupted run: its op count bounds the sweep; its outcome is the expected one.
  {
    auto board = Copy(s, prepared);
    AgentLifeCycle life(s, *board, loader_installer);
    board->power().Arm({});
    const AgentLifeCycle::Outcome clean = life.Run(kMaxPowerOns, &result.phases);
    bool holds_new = false;
    const std::string why = CheckConsistent(s, *board, life, clean, &holds_new);
    if (!why.empty() || !holds_new) {
      sweep.failures.push_back("uninterrupted run: " + (why.empty() ? "old image" : why));
      ++sweep.bricked;
      return result;
    }
    sweep.total_ops = board->power().total_ops();
    result.http_bytes = life.https().bytes();
    result.power_ons = clean.power_ons;
  }

  std::vector<uint64_t> points;
  const uint64_t install_first = result.phases.download_stage + 1;
  const uint64_t install_last = result.phases.download_stage + result.phases.install;
  for (uint64_t n = 1; n <= sweep.total_ops; ++n) {
    const bool in_install = n >= install_first && n <= install_last;
    if (in_install ? (n - install_first) % options.install_stride == 0 || n == install_last
                   : (n - 1) % options.stride == 0) {
      points.push_back(n);
    }
  }
  for (const uint64_t n : points) {
    for (int torn = 0; torn <= (options.tear ? 1 : 0); ++torn) {
      auto board = Copy(s, prepared);
      AgentLifeCycle life(s, *board, loader_installer);
      sim::FaultPlan plan;
      (torn ? plan.tear : plan.cut_before) = n;
      plan.seed = options.seed * 1000003u + n;
      board->power().Arm(plan);
      AgentLifeCycle::Outcome run = life.Run(kMaxPowerOns);
      uint64_t power_ons = run.power_ons;
      if (run.power_lost) {
        board->power().PowerOn();
        board->power().Arm({});
        run = life.Run(kMaxPowerOns);
        power_ons += run.power_ons;
      }
      result.max_power_ons = std::max(result.max_power_ons, power_ons);
      result.max_commands =
          std::max(result.max_commands, static_cast<uint64_t>(life.platform().commands_sent()));
      result.max_http_bytes = std::max(result.max_http_bytes, life.https().bytes());
      torn ? ++sweep.torn : ++sweep.cuts;
      bool holds_new = false;
      const std::string why = CheckConsistent(s, *board, life, run, &holds_new);
      std::ostringstream replay;
      replay << s.name << (torn ? " tear=" : " cut_before=") << n << " seed=" << plan.seed;
      if (why.empty()) {
        ++sweep.recovered;
        if (!holds_new) {
          ++sweep.unexpected;
          if (sweep.failures.size() < 5) {
            sweep.failures.push_back(replay.str() + ": settled on the old image");
          }
        }
      } else {
        ++sweep.bricked;
        if (sweep.failures.size() < 5) sweep.failures.push_back(replay.str() + ": " + why);
      }
    }
  }
  return result;
}

}  // namespace ota::testing
