#include "powercut_m4.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "emulated_board.hpp"
#include "ota/boot_state.hpp"
#include "ota/image.hpp"
#include "ota/profile.hpp"
#include "sim/m4/board.hpp"
#include "sim_board.hpp"

namespace ota::sim::m4::testing {
namespace {

using ota::testing::SimBoard;

const BoardProfile& kProfile = kStm32f429Fire;
// A board settles within trial_boots + a few power-ons (as tests/powercut); more means stuck.
constexpr int kExtraBoots = 6;
// One loader run (a power-on or a reset) that has not reached the app after this much board
// time is halted: an install takes a few seconds, a halt resets after about 5.5 s.
constexpr uint64_t kLoaderRunNs = 60'000'000'000ull;
constexpr const char* kBanner = "app: version ";
// The app's part of a power-on, with the modem and the broker: it reports and confirms within
// a few seconds of board time (the modem's boot is 1 s; the rest is the login); the real time
// bounds a broker that does not answer.
constexpr uint64_t kAppRunNs = 30'000'000'000ull;
constexpr auto kAppRealTime = std::chrono::seconds(60);
// An app that never confirms runs this long past its banner before the power goes.
constexpr uint64_t kAppQuietNs = 20'000'000ull;

uint32_t SlotAddress() {
  return kProfile.internal_base + kProfile.partition(PartitionId::kRunning).offset;
}

// What the uninterrupted run and every cut run go through: power-ons of the real loader until
// the upgrade has an end; the real app, on the simulated modem and a real broker, reporting
// the outcome and confirming the image it runs (its agent's boot-state save).
struct RunOutcome {
  bool power_lost = false;
  bool settled = false;
  std::string version;  // the app's banner on the last boot that reached it
  std::string error;    // a fault of the model, or why the board did not settle
  uint64_t ops = 0;
  uint64_t instructions = 0;
  double emulated_ms = 0;
  double host_seconds = 0;
};

// The upgrade has an end and the loader has seen it (tests/powercut's Final): no trial left
// in the trust record, the record confirmed, failed or idle.
bool Final(const BootRecord& r, const TrustRecord& t) {
  return !t.trial.present() &&
         ((r.status == UpgradeStatus::kUpgradedOk && r.confirmed()) ||
          r.status == UpgradeStatus::kUpgradedFailed || r.status == UpgradeStatus::kIdle);
}

// The app's agent owes the platform this record's outcome, and saves the record confirmed
// (kIdle) once the broker has acknowledged its report (ota_agent.cpp, ReportPending and
// SettleOutcome).
bool AppOwesOutcome(const BootRecord& r) {
  return (r.status == UpgradeStatus::kUpgradedOk && !r.confirmed()) ||
         r.status == UpgradeStatus::kUpgradedFailed;
}

constexpr uint32_t kOtpFirst = 0x1FFF7800u;

// One mutating flash operation of the uninterrupted run, in the order the supply counted it.
struct OpInfo {
  OpKind kind = OpKind::kInternalProgram;
  uint32_t address = 0;  // CPU address (internal, OTP) or W25Q128 address
  bool by_app = false;   // performed after the loader's jump (the app's agent)
};

class Runner {
 public:
  using Hook = std::function<void(M4Board&, BoardFlash&, bool)>;
  Runner(const M4Scenario& s, SimBoard& sim, Hook hook = nullptr, bool clean = false)
      : s_(s),
        sim_(sim),
        board_(sim.flash(), s.network.ca_file),
        m4_(board_.board()),
        hook_(std::move(hook)),
        clean_(clean) {
    m4_.flash_interface().set_fast_busy_wait(true);
    m4_.w25q128().set_fast_busy_wait(true);
  }

  M4Board& m4() { return m4_; }

  RunOutcome PowerOnUntilSettled(int max_boots) {
    RunOutcome out;
    const uint64_t start_ops = sim_.power().total_ops();
    int boots = 0;
    while (boots < max_boots && out.error.empty() && !out.power_lost && !out.settled) {
      PowerOnOnce(&out, &boots, max_boots);
    }
    if (!out.settled && !out.power_lost && out.error.empty()) {
      out.error = "did not settle in " + std::to_string(max_boots) + " loader runs";
    }
    out.ops = sim_.power().total_ops() - start_ops;
    return out;
  }

  // The operations of the power-ons so far, in order: per power-on, the flash interface's and
  // the W25Q128's operations merged by cycle (the app's after the loader's).
  std::vector<OpInfo> OpMap() const;

 private:
  // One power-on (the board and its modem): loader runs (resets included) until the app is
  // entered, then the app's part. Counts each loader run as a boot.
  void PowerOnOnce(RunOutcome* out, int* boots, int max_boots) {
    marks_.push_back(
        {m4_.flash_interface().events().size(), m4_.w25q128().commands().size(), UINT64_MAX});
    board_.PowerOn();
    if (hook_) hook_(m4_, sim_.flash(), clean_);
    PowerOnBody(out, boots, max_boots);
    out->instructions += m4_.instructions();
    out->emulated_ms += static_cast<double>(m4_.now_ns()) / 1e6;
    out->host_seconds += m4_.host_seconds();
  }

  std::string ConsoleTail(size_t from) const {
    const std::string& c = m4_.console();
    return c.substr(std::max(from, c.size() > 400 ? c.size() - 400 : 0));
  }

  void PowerOnBody(RunOutcome* out, int* boots, int max_boots) {
    // The loader's part runs on the bare board: nothing of it waits for the network.
    for (;;) {
      ++*boots;
      const size_t from = m4_.console().size();
      RunLimits limits;
      limits.stop_on_reset = true;
      limits.max_emulated_ns = m4_.now_ns() + kLoaderRunNs;
      const RunResult r = m4_.Run(
          [&] {
            const size_t at = m4_.console().find(kBanner, from);
            return at != std::string::npos && m4_.console().find('\n', at) != std::string::npos;
          },
          limits);
      if (r.reason == StopReason::kPowerLost) {
        out->power_lost = true;
        return;
      }
      if (r.reason == StopReason::kReset) {
        if (*boots >= max_boots) return;
        continue;  // the loader reset itself (a halt): it runs again
      }
      if (r.reason != StopReason::kCondition) {
        out->error = "loader run " + std::to_string(*boots) + ": " + StopReasonName(r.reason) +
                     " " + r.error + "; console: " + ConsoleTail(from);
        return;
      }
      break;
    }
    // The app runs: the loader jumped to the slot's vector table.
    marks_.back().app_cycle = m4_.cycles();
    const size_t at = m4_.console().rfind(kBanner);
    const size_t end =
        m4_.console().find_first_of(" \n", at + std::char_traits<char>::length(kBanner));
    out->version = m4_.console().substr(at + std::char_traits<char>::length(kBanner),
                                        end - at - std::char_traits<char>::length(kBanner));
    if (m4_.vtor() != SlotAddress()) {
      out->error = "the app runs but VTOR is not the running slot";
      return;
    }
    Result<BootRecord> record = sim_.Record();
    if (!record.ok()) {
      out->error = "boot record unreadable";
      return;
    }
    if (s_.app_confirms && AppOwesOutcome(record.value())) {
      RunAppUntilSettled(out);
      if (out->power_lost || !out->error.empty()) return;
    } else if (!s_.app_confirms) {
      RunAppWithoutNetwork(out);
      if (out->power_lost || !out->error.empty()) return;
    }
    record = sim_.Record();
    const Result<TrustRecord> trust = sim_.Trust();
    if (!record.ok() || !trust.ok()) {
      out->error = "boot record or trust record unreadable after the app";
      return;
    }
    out->settled = Final(record.value(), trust.value());
  }

  // The app with its modem and the broker: until its agent has saved the record confirmed.
  void RunAppUntilSettled(RunOutcome* out) {
    const size_t from = m4_.console().size();
    const uint64_t start_ns = m4_.now_ns();
    const auto deadline = std::chrono::steady_clock::now() + kAppRealTime;
    size_t seen = m4_.w25q128().commands().size();
    bool confirmed = false;
    bool late = false;
    RunLimits limits;
    limits.max_instructions = UINT64_MAX;
    limits.max_emulated_ns = start_ns + kAppRunNs;
    limits.stop_on_reset = true;
    const RunResult r = board_.Run(
        [&] {
          if (m4_.w25q128().commands().size() != seen) {
            // A command went to the W25Q128: perhaps the agent's save.
            seen = m4_.w25q128().commands().size();
            const Result<BootRecord> now = sim_.Record();
            confirmed = now.ok() && now->status == UpgradeStatus::kIdle && now->confirmed();
          }
          late = std::chrono::steady_clock::now() > deadline;
          // The save complete, not only visible: the power does not go during its program.
          return (confirmed && (m4_.w25q128().status1() & W25q128Chip::kStatusBusy) == 0) || late;
        },
        limits);
    if (r.reason == StopReason::kPowerLost) {
      out->power_lost = true;
      return;
    }
    if (r.reason != StopReason::kCondition || !confirmed) {
      out->error = std::string("the app did not confirm (") +
                   (r.reason != StopReason::kCondition ? StopReasonName(r.reason)
                    : late                             ? "60 s of real time"
                                                       : "?") +
                   " " + r.error + ", after " +
                   std::to_string((m4_.now_ns() - start_ns) / 1'000'000) +
                   " ms of board time in the app); console: " + ConsoleTail(from);
    }
  }

  // An app that never confirms (no modem answers it, no broker): a little board time past
  // its banner, as the power-on of a board that is switched off again.
  void RunAppWithoutNetwork(RunOutcome* out) {
    RunLimits limits;
    limits.max_instructions = UINT64_MAX;
    limits.max_emulated_ns = m4_.now_ns() + kAppQuietNs;
    limits.stop_on_reset = true;
    const RunResult r = m4_.Run([] { return false; }, limits);
    if (r.reason == StopReason::kPowerLost) {
      out->power_lost = true;
    } else if (r.reason != StopReason::kTimeLimit) {
      out->error =
          std::string("the app without network: ") + StopReasonName(r.reason) + " " + r.error;
    }
  }

  struct Mark {
    size_t events;
    size_t commands;
    uint64_t app_cycle;  // the cycle the app's part started at (UINT64_MAX: never)
  };

  const M4Scenario& s_;
  SimBoard& sim_;
  ota::device_sim::EmulatedBoard board_;
  M4Board& m4_;
  Hook hook_;
  bool clean_;
  std::vector<Mark> marks_;
};

std::vector<OpInfo> Runner::OpMap() const {
  std::vector<OpInfo> ops;
  const auto& events = m4_.flash_interface().events();
  const auto& commands = m4_.w25q128().commands();
  for (size_t b = 0; b < marks_.size(); ++b) {
    const Mark end =
        b + 1 < marks_.size() ? marks_[b + 1] : Mark{events.size(), commands.size(), 0};
    std::vector<std::pair<uint64_t, OpInfo>> boot;
    for (size_t i = marks_[b].events; i < end.events; ++i) {
      const FlashIfEvent& e = events[i];
      OpInfo op;
      op.address = e.address;
      if (e.kind == FlashIfEvent::Kind::kProgram) {
        op.kind = e.address >= kOtpFirst ? OpKind::kOtpProgram : OpKind::kInternalProgram;
      } else if (e.kind == FlashIfEvent::Kind::kErase) {
        op.kind = OpKind::kInternalErase;
      } else if (e.kind == FlashIfEvent::Kind::kOptionProgram) {
        op.kind = OpKind::kOptionBytes;
      } else {
        continue;
      }
      op.by_app = e.cycle >= marks_[b].app_cycle;
      boot.push_back({e.cycle, op});
    }
    for (size_t i = marks_[b].commands; i < end.commands; ++i) {
      const W25qCommand& c = commands[i];
      if (!c.executed) continue;
      OpInfo op;
      op.address = c.address;
      if (c.opcode == 0x02) {
        op.kind = OpKind::kExternalProgram;
      } else if (c.opcode == 0x20 || c.opcode == 0x52 || c.opcode == 0xD8) {
        op.kind = OpKind::kExternalErase;
      } else {
        continue;
      }
      op.by_app = c.cycle >= marks_[b].app_cycle;
      boot.push_back({c.cycle, op});
    }
    std::stable_sort(boot.begin(), boot.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    for (const auto& [cycle, op] : boot)
      ops.push_back(op);
  }
  return ops;
}

// A run's own checks, whatever the board came up on: "" if it passed them.
std::string CheckRun(M4Board& m4, const RunOutcome& run) {
  if (!run.error.empty()) return run.error;
  // Every model's rules (M4Board::Violations: the flash interface's violations and refused
  // operations, the W25Q128's, SPI5's, the USARTs' lost bytes).
  const std::vector<std::string> rules = m4.Violations();
  if (rules.empty()) return "";
  std::string text =
      "a model's rule broken or an operation refused (" + std::to_string(rules.size()) + "):";
  for (size_t i = 0; i < rules.size() && i < 3; ++i)
    text += " [" + rules[i] + "]";
  return text;
}

// A settled board boots exactly one of the two images and says which everywhere: "" if so.
std::string CheckConsistent(const M4Scenario& s, SimBoard& sim, const RunOutcome& run,
                            bool* holds_new) {
  if (!run.error.empty()) return run.error;
  if (!run.settled) return "did not settle";
  const bool is_new = sim.RunningHolds(s.new_image);
  const bool is_old = sim.RunningHolds(s.old_image);
  if (!is_new && !is_old) return "running slot holds neither image";
  const std::vector<uint8_t>& image = is_new ? s.new_image : s.old_image;
  const Result<TrustRecord> trust = sim.Trust();
  if (!trust.ok()) return "trust record unreadable";
  Sha256Digest trailer;
  std::copy(image.end() - kImageTrailerSize, image.end(), trailer);
  if (!trust->confirmed.Matches(static_cast<uint32_t>(image.size()), trailer)) {
    return "the trust record's confirmed image (" + std::to_string(trust->confirmed.size) +
           " bytes, trial " + std::to_string(trust->trial.size) + ") is not the " +
           (is_new ? "new" : "old") + " one in the slot (" + std::to_string(image.size()) +
           " bytes)";
  }
  const Result<uint32_t> counter = sim.OtpCounterValue();
  if (!counter.ok() || counter.value() != (is_new ? s.new_security_counter : 0)) {
    return "OTP counter is not the expected one";
  }
  const Result<BootRecord> r = sim.Record();
  if (!r.ok()) return "boot record unreadable";
  // The boot state accepts the new image: upgraded-ok and confirmed, or, once the app's agent
  // has reported it, idle and confirmed with the trust record naming it.
  Sha256Digest new_trailer;
  std::copy(s.new_image.end() - kImageTrailerSize, s.new_image.end(), new_trailer);
  const bool trust_names_new =
      trust->confirmed.Matches(static_cast<uint32_t>(s.new_image.size()), new_trailer);
  const bool accepts_new =
      r->confirmed() && (r->status == UpgradeStatus::kUpgradedOk ||
                         (r->status == UpgradeStatus::kIdle && trust_names_new));
  if (is_new != accepts_new) {
    return std::string("slot holds the ") + (is_new ? "new" : "old") + " image but state is " +
           UpgradeStatusName(r->status) + (r->confirmed() ? " confirmed" : " unconfirmed");
  }
  if (run.version != (is_new ? "FOTAV2" : "FOTAV1")) {
    return "the app that booted says " + run.version;
  }
  *holds_new = is_new;
  return "";
}

// The app's settings (as the factory's `provision` writes them, not counted): its broker, and a
// device name of its own per run, so that boards running in parallel do not take over each
// other's session at the broker.
std::string Provision(const M4Scenario& s, SimBoard& sim) {
  if (!s.app_confirms) return "";
  static std::atomic<uint64_t> next_device{1};
  agent::DeviceSettings settings;
  const std::string id = "m4pc" + std::to_string(next_device++);
  if (!agent::SetField(settings.device_id, id.c_str()) ||
      !agent::SetField(settings.secret, "powercut-m4-secret") ||
      !agent::SetField(settings.broker_host, "localhost") || s.network.port <= 0) {
    return "no broker for the app (M4Scenario::network)";
  }
  settings.broker_port = static_cast<uint16_t>(s.network.port);
  if (!ota::device_sim::ProvisionSettings(sim.flash(), settings).ok()) {
    return "could not provision the app's settings";
  }
  return "";
}

std::string Prepare(const M4Scenario& s, SimBoard& prepared) {
  auto& raw = prepared.flash().internal.raw();
  std::fill(raw.begin(), raw.end(), 0xFF);
  std::copy(s.loader.begin(), s.loader.end(), raw.begin());
  prepared.FlashRunning(s.old_image);
  // The factory's first power-on on the real loader (write protection, trust record), before
  // any fault: the sweep is about upgrades in the field.
  {
    Runner first(s, prepared);
    const RunOutcome boot = first.PowerOnUntilSettled(1);
    if (boot.power_lost || boot.version != "FOTAV1") {
      return "the factory's first boot failed: " + boot.error + " " + boot.version;
    }
  }
  const Result<TrustRecord> trust = prepared.Trust();
  Sha256Digest trailer;
  std::copy(s.old_image.end() - kImageTrailerSize, s.old_image.end(), trailer);
  if (!trust.ok() ||
      !trust->confirmed.Matches(static_cast<uint32_t>(s.old_image.size()), trailer)) {
    return "the factory's first boot did not record appv1 in the trust record (images older "
           "than the loader's trust store? `make firmware`)";
  }
  // The history of the host suite: the copy of the boot state in use nearly full, so the
  // upgrade's own records cross to the other copy.
  const int history =
      static_cast<int>(kProfile.partition(PartitionId::kBootStateA).size / kBootRecordSize) - 3;
  for (int i = 0; i < history; ++i) {
    if (!prepared.Confirm().ok()) return "could not write the boot-state history";
  }
  if (!prepared.Stage(s.package, "FOTAV2").ok()) return "could not stage the package";
  return "";
}

std::string OpsDetail(M4Board& m4, const std::vector<OpInfo>& map) {
  const uint64_t app_ops = static_cast<uint64_t>(
      std::count_if(map.begin(), map.end(), [](const OpInfo& op) { return op.by_app; }));
  uint64_t programs = 0, otp = 0, erases = 0, options = 0;
  for (const FlashIfEvent& e : m4.flash_interface().events()) {
    if (e.kind == FlashIfEvent::Kind::kProgram) (e.address >= 0x1FFF0000u ? otp : programs)++;
    if (e.kind == FlashIfEvent::Kind::kErase) ++erases;
    if (e.kind == FlashIfEvent::Kind::kOptionProgram) ++options;
  }
  uint64_t pages = 0, sector_erases = 0, block_erases = 0;
  for (const W25qCommand& c : m4.w25q128().commands()) {
    if (!c.executed) continue;
    if (c.opcode == 0x02) ++pages;
    if (c.opcode == 0x20) ++sector_erases;
    if (c.opcode == 0x52 || c.opcode == 0xD8) ++block_erases;
  }
  std::ostringstream out;
  out << "internal word programs=" << programs << " sector erases=" << erases
      << " otp programs=" << otp << " option-byte programs=" << options
      << "; w25q128 page programs=" << pages << " 4k erases=" << sector_erases
      << " block erases=" << block_erases
      << "; of all these the app's (its boot-state saves)=" << app_ops;
  return out.str();
}

// Image data: the slot's word programs and the backup's page programs.
bool IsBulk(const OpInfo& op) {
  const Partition& slot = kProfile.partition(PartitionId::kRunning);
  const Partition& backup = kProfile.partition(PartitionId::kBackup);
  if (op.kind == OpKind::kInternalProgram) {
    return op.address >= kProfile.internal_base + slot.offset &&
           op.address < kProfile.internal_base + slot.offset + slot.size;
  }
  return op.kind == OpKind::kExternalProgram && op.address >= backup.offset &&
         op.address < backup.offset + backup.size;
}

// The scenario's name mixed into the seed: FNV-1a, the same on every toolchain (std::hash is
// not), so a printed seed replays anywhere.
uint64_t Fnv1a(const std::string& text) {
  uint64_t h = 14695981039346656037ull;
  for (const char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

bool InPartition(uint32_t address, PartitionId id) {
  const Partition& p = kProfile.partition(id);
  return address >= p.offset && address < p.offset + p.size;
}

// The kind of operation a sample must cut and tear at least once: what it does and where,
// and whether the app or the loader does it. Image data is two kinds: the slot's word
// programs and the backup's page programs (a hundred times fewer, and what a recovery reads).
std::string Stratum(const OpInfo& op) {
  if (IsBulk(op)) {
    return op.kind == OpKind::kInternalProgram ? "image data: slot word program"
                                               : "image data: backup page program";
  }
  std::string kind;
  switch (op.kind) {
    case OpKind::kInternalProgram: {
      const uint32_t offset = op.address - kProfile.internal_base;
      kind = InPartition(offset, PartitionId::kTrustA) || InPartition(offset, PartitionId::kTrustB)
                 ? "trust-record word program"
                 : "internal word program";
      break;
    }
    case OpKind::kInternalErase:
      kind = "internal sector erase";
      break;
    case OpKind::kOtpProgram:
      kind = "OTP program";
      break;
    case OpKind::kOptionBytes:
      kind = "option-byte program";
      break;
    case OpKind::kExternalProgram:
      kind = InPartition(op.address, PartitionId::kBootStateA) ||
                     InPartition(op.address, PartitionId::kBootStateB)
                 ? "W25Q128 boot-state page program"
                 : "W25Q128 page program";
      break;
    case OpKind::kExternalErase:
      kind = "W25Q128 erase";
      break;
  }
  return (op.by_app ? "app: " : "loader: ") + kind;
}

struct PointResult {
  bool done = false;
  bool recovered = false;
  bool failed = false;
  bool unexpected = false;
  std::string failure;
  uint64_t instructions = 0;
  double emulated_ms = 0;
  double host_seconds = 0;
  bool second_cut = false;  // the recovery was cut a second time
  std::string second_point;

  void Add(const RunOutcome& run) {
    instructions += run.instructions;
    emulated_ms += run.emulated_ms;
    host_seconds += run.host_seconds;
  }
};

// The end of a run: the board settled (or not) after its last power-on, checked; `rules` is
// what the models recorded over the whole run, `before` up to the first power loss.
void Judge(const M4Scenario& s, SimBoard& sim, const RunOutcome& run, const std::string& before,
           const std::string& rules, std::ostringstream& replay, PointResult* pr) {
  bool holds_new = false;
  const std::string why =
      run.power_lost ? "power lost again" : CheckConsistent(s, sim, run, &holds_new);
  if (why.empty() && rules.empty()) {
    pr->recovered = true;
    pr->unexpected = holds_new != s.expect_new;
  } else if (why.empty()) {
    pr->failed = true;
    replay << ": recovered, but " << (before.empty() ? "in the recovery: " : "before the cut: ")
           << rules;
    pr->failure = replay.str();
  } else {
    const Result<BootRecord> r = sim.Record();
    replay << ": " << why;
    if (!rules.empty()) replay << "; " << rules;
    if (r.ok()) {
      replay << " (status " << UpgradeStatusName(r->status) << ", step " << UpgradeStepName(r->step)
             << ", reason " << FailReasonName(r->reason) << ")";
    }
    pr->failure = replay.str();
  }
}

// The double cut's probe: a copy of the board as the first cut left it recovers with no fault
// planned; its operations bound the second cut. The copy's recovery is the single cut's run and
// is checked as one ("" if it passed; else why, and *bricked if it did not come up).
std::string ProbeRecovery(const M4Scenario& s, SimBoard& sim, int max_boots,
                          const Runner::Hook& hook, PointResult* pr, uint64_t* ops, bool* bricked) {
  SimBoard copy(kProfile);
  copy.flash().CopyCellsFrom(sim.flash());
  copy.power().Arm({});
  Runner probe(s, copy, hook, false);
  const RunOutcome run = probe.PowerOnUntilSettled(max_boots);
  pr->Add(run);
  *ops = run.ops;
  bool holds_new = false;
  const std::string why = run.power_lost ? "power lost with no fault planned"
                                         : CheckConsistent(s, copy, run, &holds_new);
  *bricked = !why.empty();
  if (!why.empty()) return why;
  if (holds_new != s.expect_new) return "not the uninterrupted run's outcome";
  return CheckRun(probe.m4(), RunOutcome{});
}

PointResult RunPoint(const M4Scenario& s, SimBoard& prepared, uint64_t n, bool torn,
                     const M4SweepOptions& options, int max_boots) {
  const Runner::Hook& hook = options.after_power_on;
  PointResult pr;
  SimBoard sim(kProfile);
  sim.flash().CopyCellsFrom(prepared.flash());
  if (const std::string p = Provision(s, sim); !p.empty()) {
    pr.failed = true;
    pr.failure = s.name + ": " + p;
    return pr;
  }
  FaultPlan plan;
  (torn ? plan.tear : plan.cut_before) = n;
  plan.seed = options.seed * 1000003u + n;
  sim.power().Arm(plan);
  Runner runner(s, sim, hook, false);
  RunOutcome run = runner.PowerOnUntilSettled(max_boots);
  pr.Add(run);
  std::ostringstream replay;
  replay << s.name << (torn ? " tear=" : " cut_before=") << n << " seed=" << plan.seed;
  pr.done = true;
  if (!run.power_lost) {
    // The board went through the upgrade without the fault: nothing was cut, nothing shown.
    replay << ": the planned fault never fired (" << sim.power().ops_since_arm()
           << " operations after arming)";
    if (!run.error.empty()) replay << "; " << run.error;
    pr.failed = true;
    pr.failure = replay.str();
    return pr;
  }
  // Before the cut: the run up to the power loss broke no rule and stopped for no other reason.
  const std::string before = CheckRun(runner.m4(), RunOutcome{});
  sim.power().PowerOn();
  if (options.second_cut) {
    uint64_t recovery_ops = 0;
    bool bricked = false;
    const std::string probe = ProbeRecovery(s, sim, max_boots, hook, &pr, &recovery_ops, &bricked);
    if (!probe.empty()) {
      replay << ": the recovery without a second cut: " << probe;
      pr.failed = !bricked;
      pr.failure = replay.str();
      return pr;
    }
    std::ostringstream point;
    point << (torn ? "tear=" : "cut_before=") << n << " -> ";
    if (recovery_ops == 0) {
      // Nothing in the recovery to cut (tests/powercut skips it too): a single cut run.
      replay << " (the recovery performs no operation: no second cut)";
      point << "none";
    } else {
      // The cut and the tear of an operation draw different second cuts.
      std::mt19937_64 rng(plan.seed * 2 + (torn ? 1 : 0));
      FaultPlan second;
      second.cut_before = 1 + rng() % recovery_ops;
      second.seed = plan.seed + 1;
      replay << " then cut_before=" << second.cut_before << " of the recovery's " << recovery_ops
             << " operations";
      point << "cut_before=" << second.cut_before << " of " << recovery_ops;
      sim.power().Arm(second);
      run = runner.PowerOnUntilSettled(max_boots);
      pr.Add(run);
      if (!run.power_lost) {
        replay << ": the second planned fault never fired (" << sim.power().ops_since_arm()
               << " operations after arming)";
        if (!run.error.empty()) replay << "; " << run.error;
        pr.failed = true;
        pr.failure = replay.str();
        return pr;
      }
      pr.second_cut = true;
      sim.power().PowerOn();
    }
    pr.second_point = point.str();
  }
  sim.power().Arm({});
  run = runner.PowerOnUntilSettled(max_boots);
  pr.Add(run);
  Judge(s, sim, run, before, CheckRun(runner.m4(), RunOutcome{}), replay, &pr);
  return pr;
}

}  // namespace

M4SweepResult RunM4Sweep(const M4Scenario& s, const M4SweepOptions& options) {
  M4SweepResult result;
  const int max_boots = static_cast<int>(kProfile.trial_boots) + kExtraBoots;
  SimBoard prepared(kProfile);
  const std::string prep = Prepare(s, prepared);
  if (!prep.empty()) {
    result.failures.push_back(s.name + " set-up: " + prep);
    result.sweep_failed = true;
    return result;
  }

  // The uninterrupted run: its op count bounds the sweep; its outcome is the expected one.
  std::vector<OpInfo> op_map;
  {
    SimBoard sim(kProfile);
    sim.flash().CopyCellsFrom(prepared.flash());
    if (const std::string p = Provision(s, sim); !p.empty()) {
      result.failures.push_back(s.name + ": " + p);
      result.sweep_failed = true;
      return result;
    }
    sim.power().Arm({});
    Runner runner(s, sim, options.after_power_on, true);
    const RunOutcome clean = runner.PowerOnUntilSettled(max_boots);
    bool holds_new = false;
    std::string why = clean.power_lost ? "power lost with no fault planned"
                                       : CheckConsistent(s, sim, clean, &holds_new);
    if (why.empty()) why = CheckRun(runner.m4(), clean);
    result.clean_instructions = clean.instructions;
    result.clean_emulated_ms = clean.emulated_ms;
    result.instructions += clean.instructions;
    result.emulated_ms += clean.emulated_ms;
    result.host_seconds += clean.host_seconds;
    if (!why.empty() || holds_new != s.expect_new) {
      result.failures.push_back(s.name +
                                " uninterrupted run: " + (why.empty() ? "wrong outcome" : why));
      result.sweep_failed = true;
      return result;
    }
    result.total_ops = clean.ops;
    op_map = runner.OpMap();
    result.loader_ops = static_cast<uint64_t>(
        std::count_if(op_map.begin(), op_map.end(), [](const OpInfo& op) { return !op.by_app; }));
    result.clean_ops_detail = OpsDetail(runner.m4(), op_map);
    if (op_map.size() != result.total_ops) {
      // Which operation a number cuts would be a guess: no run is made on a wrong map.
      result.failures.push_back(
          s.name + " uninterrupted run: the models recorded " + std::to_string(op_map.size()) +
          " mutating flash operations, the supply counted " + std::to_string(result.total_ops));
      result.sweep_failed = true;
      return result;
    }
  }

  std::set<uint64_t> chosen;
  std::vector<uint64_t> few, bulk;
  std::map<std::string, std::vector<uint64_t>> strata;
  for (uint64_t n = 1; n <= result.total_ops; ++n) {
    (IsBulk(op_map[n - 1]) ? bulk : few).push_back(n);
    strata[Stratum(op_map[n - 1])].push_back(n);
  }
  for (const auto& [name, ops] : strata)
    result.strata.push_back(name + " x" + std::to_string(ops.size()));
  result.bulk_ops = bulk.size();
  if (!options.points.empty()) {
    chosen.insert(options.points.begin(), options.points.end());
  } else if (options.exhaustive) {
    chosen.insert(few.begin(), few.end());
    for (size_t i = 0; i < bulk.size(); ++i) {
      const bool run_edge = i == 0 || i + 1 == bulk.size() || bulk[i - 1] + 1 != bulk[i] ||
                            bulk[i + 1] != bulk[i] + 1;
      if (run_edge || i % std::max<uint64_t>(1, options.bulk_stride) == 0) chosen.insert(bulk[i]);
    }
  } else {
    // Stratified: one operation of each kind the run performs (image data is two: the slot's
    // and the backup's; not with every_kind false), then `samples` more, alternately among the
    // few and the image data.
    // The scenario's name in the seed: scenarios with the same operations sample different ones.
    std::mt19937_64 rng(options.seed ^ Fnv1a(s.name));
    if (options.every_kind) {
      for (const auto& [name, ops] : strata)
        chosen.insert(ops[rng() % ops.size()]);
    }
    for (uint64_t i = 0; i < options.samples; ++i) {
      const std::vector<uint64_t>& from = (i % 2 == 0 && !few.empty()) || bulk.empty() ? few : bulk;
      if (!from.empty()) chosen.insert(from[rng() % from.size()]);
    }
  }
  const std::vector<uint64_t> points(chosen.begin(), chosen.end());
  result.points = points;
  for (const uint64_t n : points)
    result.point_strata.push_back(n <= op_map.size() ? Stratum(op_map[n - 1]) : "past the end");
  struct Job {
    uint64_t n;
    bool torn;
  };
  std::vector<Job> jobs;
  for (const uint64_t n : points) {
    jobs.push_back({n, false});
    if (options.tear) jobs.push_back({n, true});
  }
  std::vector<PointResult> results(jobs.size());
  std::atomic<size_t> next{0};
  std::mutex progress_mutex;
  size_t finished = 0;
  const auto worker = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      results[i] = RunPoint(s, prepared, jobs[i].n, jobs[i].torn, options, max_boots);
      if (options.progress) {
        const std::lock_guard<std::mutex> lock(progress_mutex);
        ++finished;
        const std::string& second = results[i].second_point;
        const std::string then =
            second.empty() ? "" : " then " + second.substr(second.find("-> ") + 3);
        std::fprintf(stderr, "powercut-m4-run: %s %s=%llu%s %s (%zu/%zu)%s%s\n", s.name.c_str(),
                     jobs[i].torn ? "tear" : "cut_before",
                     static_cast<unsigned long long>(jobs[i].n), then.c_str(),
                     results[i].recovered ? "recovered"
                     : results[i].failed  ? "FAILED"
                                          : "BRICKED",
                     finished, jobs.size(), results[i].recovered ? "" : ": ",
                     results[i].failure.c_str());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int j = 1; j < std::max(1, options.jobs); ++j)
    threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads)
    t.join();

  for (size_t i = 0; i < jobs.size(); ++i) {
    const PointResult& pr = results[i];
    jobs[i].torn ? ++result.torn : ++result.cuts;
    result.instructions += pr.instructions;
    result.emulated_ms += pr.emulated_ms;
    result.host_seconds += pr.host_seconds;
    if (pr.second_cut) ++result.second_cuts;
    if (!pr.second_point.empty()) result.second_points.push_back(pr.second_point);
    if (pr.recovered) {
      ++result.recovered;
      if (pr.unexpected) ++result.unexpected;
    } else {
      ++(pr.failed ? result.failed : result.bricked);
      if (result.failures.size() < 5) result.failures.push_back(pr.failure);
    }
  }
  return result;
}

std::string M4SummaryLine(const std::string& scenario, const M4SweepResult& r) {
  std::ostringstream line;
  line << "powercut-m4: " << scenario << " cuts=" << r.cuts << " torn=" << r.torn
       << " recovered=" << r.recovered << " bricked=" << r.bricked;
  return line.str();
}

std::string M4DoubleSummaryLine(const std::string& scenario, const M4SweepResult& r) {
  std::ostringstream line;
  line << "powercut-m4-double: " << scenario << " runs=" << r.cuts + r.torn
       << " recovered=" << r.recovered << " bricked=" << r.bricked;
  return line.str();
}

}  // namespace ota::sim::m4::testing
