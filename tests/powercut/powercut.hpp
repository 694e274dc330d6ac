// Power-cut sweeps: run an upgrade, cut power before (or tear) flash operation N, power on
// again until the board settles, and check that it boots exactly the old or the new image and
// that the boot state says which. Every N, or a seeded sample of them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ota/installer.hpp"
#include "ota/profile.hpp"
#include "sim_board.hpp"

namespace ota::testing {

enum class Expect { kNewImage, kOldImage };

struct Scenario {
  std::string name;
  const BoardProfile* profile = nullptr;
  std::vector<uint8_t> old_image;
  std::vector<uint8_t> new_image;
  std::vector<uint8_t> package;       // what is staged (the new image, or a bad one)
  Installer* installer = nullptr;     // the loader's installer for this scenario
  bool app_confirms = true;           // the app confirms the new image once it runs
  Expect expect = Expect::kNewImage;  // outcome of an uninterrupted run
  // Boot-state records written before the upgrade: by default the copy in use is nearly
  // full, so the upgrade's own records cross the switch from one copy to the other.
  int history_records = -1;
  // The package's anti-rollback counter: OTP holds it once the new image is confirmed.
  uint32_t new_security_counter = 0;
};

struct SweepOptions {
  uint64_t stride = 1;          // cut at every stride-th operation (1 = every one)
  uint64_t random_samples = 0;  // plus this many seeded random cut points
  bool tear = true;             // also tear each chosen operation
  bool double_cut = false;      // cut a second time, at a random point of the recovery
  uint64_t seed = 1;
};

struct SweepResult {
  uint64_t total_ops = 0;             // mutating flash operations of an uninterrupted run
  uint64_t cuts = 0;                  // runs with a clean cut
  uint64_t torn = 0;                  // runs with a torn operation
  uint64_t recovered = 0;             // runs that settled on a bootable, consistent state
  uint64_t bricked = 0;               // runs that did not
  uint64_t unexpected = 0;            // consistent, but not the outcome an uninterrupted run gives
  std::vector<std::string> failures;  // replayable descriptions of the first few failures
};

SweepResult RunSweep(const Scenario& scenario, const SweepOptions& options);

// The summary line: `powercut: <scenario> cuts=<N> torn=<T> recovered=<R> bricked=<B>`.
std::string SummaryLine(const std::string& scenario, const SweepResult& result);

}  // namespace ota::testing
