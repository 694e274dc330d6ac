// The power-cut sweep on the real binary: the scenarios of tests/powercut run by the real
// loader.bin and app images on the emulated FIRE board (sim/m4, with the simulated ESP-AT
// modem of sim/ota-device). The board's flash is set up as the host suite sets up the FIRE
// profile's (the factory image, the boot-state history, a package in the download region and
// a record saying "downloaded"); an uninterrupted run counts the mutating flash operations
// (programs and erases of both flashes, OTP, option bytes; the loader's and the app's, whose
// agent reports the outcome to a broker and confirms the image) until the upgrade has an end;
// then, for each chosen operation, one run cuts the power before it and one tears it, and the
// board is powered on again until it settles. Every run must end with the loader jumping into
// exactly the old or the new image (its banner on USART1, the slot holding it byte for byte,
// the trust record, OTP counter and boot state naming it) without breaking a model's rule: a
// loader that halts or resets forever is a bricked board. docs/m4-board.md, "Power-cut sweep".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/board_flash.hpp"
#include "sim/m4/board.hpp"

namespace ota::sim::m4::testing {

// Where the app's agent finds its broker: a Mosquitto on loopback with a TLS listener (the
// simulated modem checks its certificate against `ca_file`). The agent needs only the
// broker's CONNACK, SUBACK and PUBACKs to report the outcome and confirm the image.
struct M4Network {
  std::string ca_file;
  int port = 0;
};

struct M4Scenario {
  std::string name;
  std::vector<uint8_t> loader;     // loader.bin
  std::vector<uint8_t> old_image;  // the stamped app in the running slot (FOTAV1)
  std::vector<uint8_t> new_image;  // the package's target (FOTAV2)
  std::vector<uint8_t> package;    // what is staged in the download region
  // The app runs with the simulated modem on `network` and its agent reports the outcome and
  // confirms the image it runs (ota_agent.cpp); false: no modem answers it, it never does.
  bool app_confirms = true;
  M4Network network;
  bool expect_new = true;  // the outcome of an uninterrupted run
  uint32_t new_security_counter = 0;
};

// What a mutating flash operation is. The bulk of them are the word programs of an image into
// the running slot and the page programs of the backup copy; the rest (erases, the boot-state
// and trust records, the OTP counter, the app's confirmation: its agent's boot-state save,
// W25Q128 operations like the loader's) are few.
enum class OpKind {
  kInternalProgram,  // one 32-bit word (FLASH_CR.PG)
  kInternalErase,    // one sector (FLASH_CR.SER)
  kOtpProgram,
  kOptionBytes,
  kExternalProgram,  // one W25Q128 page program
  kExternalErase,    // one W25Q128 sector or block erase
};

struct M4SweepOptions {
  // Every operation but the bulk ones, and of those the first and last of each run and every
  // bulk_stride-th (1: every operation of the run). Otherwise a stratified sample, seeded: one
  // operation of each kind the run performs outside image data (internal sector erase, trust
  // record word program, OTP program, option bytes, W25Q128 erase, boot-state page program;
  // the loader's and the app's apart) and one of image data, then `samples` more, alternately
  // among the few and the image data.
  bool exhaustive = false;
  uint64_t bulk_stride = 1;
  uint64_t samples = 0;
  uint64_t seed = 1;
  // false: no operation of each kind first; only the `samples` (the double cut's sample).
  bool every_kind = true;
  bool tear = true;  // also tear each chosen operation
  // The double cut (tests/powercut's DoubleCut_*): after the cut (or tear), the recovery is
  // itself cut once, cleanly, before an operation drawn from the recovery's own operations:
  // a copy of the board as the first cut left it recovers uninterrupted and counts them (R),
  // and the run's recovery is cut before operation 1 + rng() % R, rng seeded with the first
  // plan's seed and whether it tore (so the sweep's seed replays both cuts). Then the board is
  // powered on again until it settles, and checked as a single cut run is. The recovery without the
  // second cut is checked too (it is the single cut's run).
  bool second_cut = false;
  int jobs = 1;           // runs in parallel (one emulated board each)
  bool progress = false;  // a line on stderr per run as it ends
  // These operations exactly (1-based, each cut and, with `tear`, torn), instead of the
  // sample or the exhaustive choice; a number past the last operation is cut all the same (a
  // plan that never fires: the sweep must report it).
  std::vector<uint64_t> points;
  // For the tests that show a check can fail: called after every power-on of the board, in
  // the uninterrupted run (`clean` true) and in every cut run (its recovery included).
  std::function<void(M4Board& board, BoardFlash& flash, bool clean)> after_power_on;
};

struct M4SweepResult {
  uint64_t total_ops = 0;        // mutating flash operations of the uninterrupted run
  uint64_t loader_ops = 0;       // of which the loader's (the rest: the app's, its confirmation)
  uint64_t bulk_ops = 0;         // of which image data: slot word programs, backup page programs
  std::vector<uint64_t> points;  // the operations cut (and torn)
  std::vector<std::string> point_strata;  // each one's kind (see M4SweepOptions)
  std::vector<std::string> strata;        // the kinds of the uninterrupted run, "name xN"
  uint64_t cuts = 0;
  uint64_t torn = 0;
  uint64_t recovered = 0;
  uint64_t bricked = 0;  // runs that did not come up on exactly one of the images
  // Runs that came up on an image but failed a check all the same: the planned fault never
  // fired, a model's rule was broken or a flash operation refused (before the cut or in the
  // recovery), the run stopped for a reason it should not.
  uint64_t failed = 0;
  // The sweep itself failed (the uninterrupted run, the op map): no run was made.
  bool sweep_failed = false;
  uint64_t unexpected = 0;  // recovered, but not to the outcome of the uninterrupted run
  // The uninterrupted run: emulated instructions and board time over all its boots.
  uint64_t clean_instructions = 0;
  double clean_emulated_ms = 0;
  std::string clean_ops_detail;  // per device and kind
  // All runs: instructions emulated, board time, host time in the emulator.
  uint64_t instructions = 0;
  double emulated_ms = 0;
  double host_seconds = 0;
  std::vector<std::string> failures;  // replayable descriptions of the first few
  // With `second_cut`: the runs whose recovery was cut a second time (a recovery with no
  // operation is not), and per run "cut_before=N -> cut_before=K of R" (tear=N for a tear).
  uint64_t second_cuts = 0;
  std::vector<std::string> second_points;
};

M4SweepResult RunM4Sweep(const M4Scenario& scenario, const M4SweepOptions& options);

// `powercut-m4: <scenario> cuts=N torn=N recovered=N bricked=N`
std::string M4SummaryLine(const std::string& scenario, const M4SweepResult& result);
// `powercut-m4-double: <scenario> runs=N recovered=N bricked=N` (runs: cut and torn).
std::string M4DoubleSummaryLine(const std::string& scenario, const M4SweepResult& result);

}  // namespace ota::sim::m4::testing
