#include "powercut.hpp"

#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <sstream>

namespace ota::testing {

namespace {

// A board settles within trial_boots + a few power-ons; more means the loader is stuck.
constexpr int kExtraBoots = 6;

struct RunOutcome {
  bool power_lost = false;  // the armed fault fired
  uint64_t ops = 0;         // mutating ops this run performed until it settled or died
  bool settled = false;
  BootDecision decision;
  std::string error;
};

std::unique_ptr<SimBoard> FreshBoard(const Scenario& s, SimBoard& prepared) {
  auto board = std::make_unique<SimBoard>(*s.profile);
  board->flash().CopyCellsFrom(prepared.flash());
  return board;
}

// The upgrade has an end, and the loader has seen it: a confirmed image is the trust record's
// confirmed one (its counter burnt into OTP), a failed one left no trial behind.
bool Final(const BootDecision& d) {
  const BootRecord& r = d.record;
  return !d.trust.trial.present() &&
         ((r.status == UpgradeStatus::kUpgradedOk && r.confirmed()) ||
          r.status == UpgradeStatus::kUpgradedFailed || r.status == UpgradeStatus::kIdle);
}

// Power-ons until the upgrade has an end (installed and confirmed, or failed and rolled back),
// stopping early if the armed fault fires.
RunOutcome PowerOnUntilSettled(const Scenario& s, SimBoard& board, int max_boots) {
  RunOutcome out;
  const uint64_t start_ops = board.power().total_ops();
  for (int boot = 0; boot < max_boots; ++boot) {
    const Result<BootDecision> d = board.Boot(*s.installer);
    if (board.power().lost()) {
      out.power_lost = true;
      break;
    }
    if (!d.ok()) {
      out.error = std::string("loader error ") + d.status().name();
      break;
    }
    out.decision = d.value();
    BootRecord r = d->record;
    // The app: runs if the loader booted it; confirms a new image it is running on trial.
    if (d->boot_app && s.app_confirms && r.status == UpgradeStatus::kUpgradedOk && !r.confirmed()) {
      const Status c = board.Confirm();
      if (board.power().lost()) {
        out.power_lost = true;
        break;
      }
      if (!c.ok()) {
        out.error = std::string("confirm failed ") + c.name();
        break;
      }
      const Result<BootRecord> after = board.Record();
      if (!after.ok()) {
        out.error = "record unreadable after confirm";
        break;
      }
      r = after.value();
      out.decision.record = r;
    }
    if (Final(out.decision)) {
      out.settled = true;
      break;
    }
  }
  out.ops = board.power().total_ops() - start_ops;
  return out;
}

// Checks a settled board: it boots, the slot holds exactly one of the two images, and the
// boot state names the one it holds. Returns "" if consistent.
std::string CheckConsistent(const Scenario& s, SimBoard& board, const RunOutcome& run,
                            bool* holds_new) {
  if (!run.error.empty()) return run.error;
  if (!run.settled) return "did not settle";
  if (!run.decision.boot_app) return "no bootable image";
  const bool is_new = board.RunningHolds(s.new_image);
  const bool is_old = board.RunningHolds(s.old_image);
  if (!is_new && !is_old) return "running slot holds neither image";
  const BootRecord& r = run.decision.record;
  const char* version = run.decision.image.header.version;
  // The loader's own view: the image it vouches for is the one in the slot, and OTP holds
  // the new image's counter exactly when the new image was confirmed.
  const TrustedImage& confirmed = run.decision.trust.confirmed;
  if (!confirmed.Matches(run.decision.image.total_size, run.decision.image.sha256)) {
    return "the trust record's confirmed image is not the one in the slot";
  }
  const uint32_t want_counter = is_new ? s.new_security_counter : 0;
  if (run.decision.security_counter != want_counter) return "OTP counter is not the expected one";
  if (is_new) {
    if (r.status != UpgradeStatus::kUpgradedOk) return "new image but state not upgraded-ok";
    if (std::strcmp(version, "FOTAV2") != 0) return "booted version is not the new one";
  } else {
    if (r.status == UpgradeStatus::kUpgradedOk) return "old image but state upgraded-ok";
    if (std::strcmp(version, "FOTAV1") != 0) return "booted version is not the old one";
  }
  *holds_new = is_new;
  return "";
}

}  // namespace

SweepResult RunSweep(const Scenario& s, const SweepOptions& options) {
  SweepResult result;
  const int max_boots = static_cast<int>(s.profile->trial_boots) + kExtraBoots;

  SimBoard prepared(*s.profile);
  prepared.FlashRunning(s.old_image);
  // The factory's first power-on (write protection, trust record), before any fault: the
  // sweep is about upgrades in the field. The first boot has a sweep of its own.
  if (!prepared.Boot().ok()) {
    result.failures.push_back("the factory's first boot failed");
    ++result.bricked;
    return result;
  }
  const int history = s.history_records >= 0
                          ? s.history_records
                          : static_cast<int>(s.profile->partition(PartitionId::kBootStateA).size /
                                             kBootRecordSize) -
                                3;
  for (int i = 0; i < history; ++i) {
    if (!prepared.Confirm().ok()) {
      result.failures.push_back("could not write the boot-state history");
      ++result.bricked;
      return result;
    }
  }
  if (!prepared.Stage(s.package, "FOTAV2").ok()) {
    result.failures.push_back("could not stage the package");
    ++result.bricked;
    return result;
  }

  // The uninterrupted run: its op count bounds the sweep; its outcome is the expected one.
  {
    auto board = FreshBoard(s, prepared);
    board->power().Arm({});
    const RunOutcome clean = PowerOnUntilSettled(s, *board, max_boots);
    bool holds_new = false;
    const std::string why = CheckConsistent(s, *board, clean, &holds_new);
    if (!why.empty() || holds_new != (s.expect == Expect::kNewImage)) {
      result.failures.push_back("uninterrupted run: " + (why.empty() ? "wrong outcome" : why));
      ++result.bricked;
      return result;
    }
    result.total_ops = clean.ops;
  }

  std::set<uint64_t> points;
  for (uint64_t n = 1; n <= result.total_ops; n += options.stride)
    points.insert(n);
  std::mt19937_64 rng(options.seed);
  for (uint64_t i = 0; i < options.random_samples; ++i) {
    points.insert(1 + rng() % result.total_ops);
  }

  for (const uint64_t n : points) {
    for (int torn = 0; torn <= (options.tear ? 1 : 0); ++torn) {
      auto board = FreshBoard(s, prepared);
      sim::FaultPlan plan;
      (torn ? plan.tear : plan.cut_before) = n;
      plan.seed = options.seed * 1000003u + n;
      board->power().Arm(plan);
      RunOutcome run = PowerOnUntilSettled(s, *board, max_boots);
      std::ostringstream replay;
      replay << s.name << (torn ? " tear=" : " cut_before=") << n << " seed=" << plan.seed;
      if (run.power_lost) {
        board->power().PowerOn();
        if (options.double_cut) {
          // Count the recovery's operations, then cut it again at a random one of them.
          auto probe = FreshBoard(s, prepared);
          probe->power().Arm(plan);
          (void)PowerOnUntilSettled(s, *probe, max_boots);
          probe->power().PowerOn();
          probe->power().Arm({});
          const RunOutcome recovery = PowerOnUntilSettled(s, *probe, max_boots);
          if (recovery.ops > 0) {
            sim::FaultPlan second;
            second.cut_before = 1 + rng() % recovery.ops;
            second.seed = plan.seed + 1;
            board->power().Arm(second);
            replay << " then cut_before=" << second.cut_before;
            const RunOutcome cut_again = PowerOnUntilSettled(s, *board, max_boots);
            if (cut_again.power_lost) board->power().PowerOn();
          }
        }
        board->power().Arm({});
        run = PowerOnUntilSettled(s, *board, max_boots);
      }
      torn ? ++result.torn : ++result.cuts;
      bool holds_new = false;
      const std::string why = CheckConsistent(s, *board, run, &holds_new);
      if (why.empty()) {
        ++result.recovered;
        if (holds_new != (s.expect == Expect::kNewImage)) ++result.unexpected;
      } else {
        ++result.bricked;
        if (result.failures.size() < 5) {
          const BootRecord& r = run.decision.record;
          replay << ": " << why << " (status " << UpgradeStatusName(r.status) << ", step "
                 << UpgradeStepName(r.step) << ", reason " << FailReasonName(r.reason)
                 << ", trust: confirmed " << run.decision.trust.confirmed.size << " trial "
                 << run.decision.trust.trial.size << ")";
          result.failures.push_back(replay.str());
        }
      }
    }
  }
  return result;
}

std::string SummaryLine(const std::string& scenario, const SweepResult& r) {
  std::ostringstream line;
  line << "powercut: " << scenario << " cuts=" << r.cuts << " torn=" << r.torn
       << " recovered=" << r.recovered << " bricked=" << r.bricked;
  return line.str();
}

}  // namespace ota::testing
