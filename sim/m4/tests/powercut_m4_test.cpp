// The power-cut sweep on the real loader.bin and apps (issue 15): the scenarios of
// tests/powercut on the emulated FIRE board, with packages signed by the key the firmware
// build made the loader trust, and one Mosquitto (TLS, loopback) for the apps' agents. `make
// test` (m4-board-check) runs a stratified seeded sample of each scenario; `make
// powercut-m4-full` runs every operation of every scenario (OTA_POWERCUT_M4_FULL=1). The
// DoubleCut_* tests cut the recovery a second time (M4SweepOptions::second_cut): `make test`
// a seeded sample of OTA_POWERCUT_M4_DOUBLE_SAMPLES first cuts (default 2: one operation
// outside image data, one of image data), each cut and torn; the full target one of each kind
// first.
//
// Environment: OTA_POWERCUT_M4_SEED (the sample's seed; printed), OTA_POWERCUT_M4_SAMPLES
// (operations per scenario beyond the stratified sample's, each cut and torn),
// OTA_POWERCUT_M4_DOUBLE_SAMPLES (the double cut's first cuts per scenario),
// OTA_POWERCUT_M4_FULL=1 (all of them), OTA_POWERCUT_M4_JOBS (boards run in parallel),
// OTA_LOADER_SIGNING_KEY (the private key loader.bin trusts; default: the development key
// next to the cross build's loader).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include "board_image.hpp"
#include "mosquitto_process.hpp"
#include "ota/host/keys.hpp"
#include "ota/host/package_builder.hpp"
#include "ota/image.hpp"
#include "ota/package.hpp"
#include "ota/profile.hpp"
#include "ota/server/tls_files.hpp"
#include "powercut_m4.hpp"
#include "sim/board_flash.hpp"
#include "sim/m4/board.hpp"
#include "test_packages.hpp"

namespace ota::sim::m4::testing {
namespace {

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

std::string SigningKeyPath() {
  const char* env = std::getenv("OTA_LOADER_SIGNING_KEY");
  if (env != nullptr && *env != '\0') return env;
  return FirmwareDir() + "/../cortex-m4/firmware/dev-signing-key.pem";
}

class PowerCutM4 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const bool full = EnvNumber("OTA_POWERCUT_M4_FULL", 0) != 0;
    options_.exhaustive = full;
    options_.samples = EnvNumber("OTA_POWERCUT_M4_SAMPLES", 0);
    options_.seed = EnvNumber(
        "OTA_POWERCUT_M4_SEED",
        static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) %
            1000000);
    options_.jobs = static_cast<int>(EnvNumber("OTA_POWERCUT_M4_JOBS", 1));
    options_.bulk_stride = EnvNumber("OTA_POWERCUT_M4_STRIDE", 1);
    options_.progress = full || EnvNumber("OTA_POWERCUT_M4_PROGRESS", 0) != 0;
    // The double cut: a seeded sample of first cuts (one of each kind in the full target).
    double_options_ = options_;
    double_options_.second_cut = true;
    double_options_.exhaustive = false;
    double_options_.every_kind = full;
    double_options_.samples = EnvNumber("OTA_POWERCUT_M4_DOUBLE_SAMPLES", 2);
    std::printf("powercut-m4: %s, seed=%llu (OTA_POWERCUT_M4_SEED replays it), jobs=%d\n",
                full ? "every operation" : "seeded sample",
                static_cast<unsigned long long>(options_.seed), options_.jobs);
    std::printf(
        "powercut-m4: the double cut: per scenario %llu first cuts%s "
        "(OTA_POWERCUT_M4_DOUBLE_SAMPLES), each cut and torn, then a seeded second cut\n",
        static_cast<unsigned long long>(double_options_.samples),
        full ? " beyond one of each kind" : "");
    StartBroker();
    if (full) {
      std::printf("powercut-m4: image-data operations every %llu (OTA_POWERCUT_M4_STRIDE)\n",
                  static_cast<unsigned long long>(options_.bulk_stride));
    } else {
      std::printf(
          "powercut-m4: per scenario one operation of each kind it performs outside image "
          "data, one of each kind of image data (slot, backup) and %llu more "
          "(OTA_POWERCUT_M4_SAMPLES), each cut and torn\n",
          static_cast<unsigned long long>(options_.samples));
    }
  }

  static void TearDownTestSuite() {
    broker_.reset();
    if (!broker_dir_.empty()) std::filesystem::remove_all(broker_dir_);
  }

  // One broker for the whole binary: a plain Mosquitto (no auth plugin; any login is let in,
  // no ACL) with a TLS listener on a free loopback port and a CA of its own. That is all the
  // app's agent needs to report the outcome and confirm the image: the CONNACK of its login,
  // the SUBACK of its command topic and the PUBACK of its report (ota_agent.cpp, Step,
  // ReportPending, SettleOutcome); nothing answers its reports.
  static void StartBroker() {
    char dir[] = "/tmp/ota-powercut-m4-XXXXXX";
    if (::mkdtemp(dir) == nullptr) return;
    broker_dir_ = dir;
    const server::TlsFiles tls = server::EnsureTlsFiles(broker_dir_ / "tls");
    const int port = ota::testing::FreeLoopbackPort();
    broker_ = std::make_unique<ota::testing::MosquittoProcess>(
        broker_dir_, std::vector<std::string>{
                         "allow_anonymous true",
                         "listener " + std::to_string(port) + " 127.0.0.1",
                         "certfile " + tls.server_cert.string(),
                         "keyfile " + tls.server_key.string(),
                         "cafile " + tls.ca_cert.string(),
                         "tls_version tlsv1.2",
                     });
    if (broker_->running() && ota::testing::WaitForPort(port, 5000)) {
      network_.ca_file = tls.ca_cert.string();
      network_.port = port;
    }
    std::printf("powercut-m4: the app's broker: Mosquitto with TLS on 127.0.0.1:%d\n", port);
  }

  void SetUp() override {
    ASSERT_GT(network_.port, 0) << "the broker for the app did not start (/usr/sbin/mosquitto)"
                                << (broker_ ? "\n" + broker_->Log() : std::string());
    loader_ = LoadImage("loader.bin");
    old_ = LoadImage("appv1.bin");
    new_ = LoadImage("appv2.bin");
    ASSERT_FALSE(loader_.empty());
    ASSERT_FALSE(old_.empty());
    ASSERT_FALSE(new_.empty());
    host::PrivateKeyResult key = host::LoadPrivateKey(SigningKeyPath(), "");
    ASSERT_TRUE(key.error.empty())
        << SigningKeyPath() << ": " << key.error
        << " (the private key loader.bin trusts: set OTA_LOADER_SIGNING_KEY)";
    key_ = std::move(key.key);
  }

  // A package of appv2.bin signed with the loader's key (a diff against appv1.bin, or full).
  std::vector<uint8_t> Package(PackageKind kind, CodecId codec = CodecId::kDelta) {
    host::PackageSpec spec;
    spec.kind = kind;
    spec.version = "FOTAV2";
    spec.image = new_;
    spec.codec = codec;
    if (kind == PackageKind::kDiff) {
      spec.from_version = "FOTAV1";
      spec.source = old_;
    }
    // Past the first OTP word (32 bits), as tests/powercut: burning it takes several programs.
    spec.security_counter = 70;
    host::PackResult packed = host::BuildPackage(spec);
    EXPECT_TRUE(packed.error.empty()) << packed.error;
    host::SignResult signed_package = host::SignPackage(packed.package, key_.get());
    EXPECT_TRUE(signed_package.error.empty()) << signed_package.error;
    return signed_package.package;
  }

  M4Scenario Make(const std::string& name, std::vector<uint8_t> package) {
    M4Scenario s;
    s.name = name;
    s.loader = loader_;
    s.old_image = old_;
    s.new_image = new_;
    s.package = std::move(package);
    s.new_security_counter = 70;
    s.network = network_;
    return s;
  }

  // The refused package: the cheapest scenario (one loader boot checks the signature and
  // refuses it), for the tests that show a check fails.
  M4Scenario Refused() {
    std::vector<uint8_t> package = Package(PackageKind::kFull);
    package[4000 % package.size()] ^= 0x01;
    M4Scenario s = Make("refused-package", package);
    s.expect_new = false;
    return s;
  }

  M4SweepResult Sweep(const M4Scenario& s) { return Sweep(s, options_, true); }
  // The double cut (M4SweepOptions::second_cut) of a scenario.
  M4SweepResult DoubleSweep(const M4Scenario& s) {
    const M4SweepResult r = Sweep(s, double_options_, true);
    std::string points;
    for (const std::string& p : r.second_points)
      points += (points.empty() ? " " : "; ") + p;
    std::printf("powercut-m4-double-points: %s%s\n", s.name.c_str(), points.c_str());
    EXPECT_GT(r.second_cuts, 0u) << "no recovery was cut a second time";
    return r;
  }
  M4SweepResult Sweep(const M4Scenario& s, const M4SweepOptions& options, bool expect_pass) {
    const auto started = std::chrono::steady_clock::now();
    const M4SweepResult r = RunM4Sweep(s, options);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    // The checks' own sweeps (expected to fail) are not summary lines of the sweep.
    std::printf("%s%s\n", expect_pass ? "" : "check: ",
                (options.second_cut ? M4DoubleSummaryLine : M4SummaryLine)(s.name, r).c_str());
    std::printf(
        "powercut-m4-detail: %s ops=%llu (loader %llu) unexpected=%llu; uninterrupted "
        "instructions=%llu emulated_ms=%.1f; all runs instructions=%llu emulated_ms=%.0f "
        "mips=%.1f wall_s=%.1f\n",
        s.name.c_str(), static_cast<unsigned long long>(r.total_ops),
        static_cast<unsigned long long>(r.loader_ops),
        static_cast<unsigned long long>(r.unexpected),
        static_cast<unsigned long long>(r.clean_instructions), r.clean_emulated_ms,
        static_cast<unsigned long long>(r.instructions), r.emulated_ms,
        r.host_seconds > 0 ? static_cast<double>(r.instructions) / r.host_seconds / 1e6 : 0.0,
        wall);
    std::printf("powercut-m4-ops: %s %s; bulk (image data) %llu\n", s.name.c_str(),
                r.clean_ops_detail.c_str(), static_cast<unsigned long long>(r.bulk_ops));
    std::string strata;
    for (const std::string& k : r.strata)
      strata += (strata.empty() ? "" : "; ") + k;
    std::printf("powercut-m4-kinds: %s %s\n", s.name.c_str(), strata.c_str());
    std::string points;
    for (size_t i = 0; i < r.points.size() && i < 40; ++i)
      points += " " + std::to_string(r.points[i]) + " (" + r.point_strata[i] + ")";
    if (r.points.size() > 40) points += " ...";
    std::printf("powercut-m4-points: %s%s\n", s.name.c_str(), points.c_str());
    for (const std::string& f : r.failures)
      std::printf("  replay: %s\n", f.c_str());
    if (!expect_pass) return r;
    EXPECT_FALSE(r.sweep_failed) << "the uninterrupted run or the op map failed: see replay";
    EXPECT_GT(r.total_ops, 0u);
    EXPECT_EQ(r.bricked, 0u);
    EXPECT_EQ(r.failed, 0u) << "a run broke a model's rule, or its fault never fired";
    EXPECT_EQ(r.unexpected, 0u) << "a cut changed the outcome of the upgrade";
    EXPECT_EQ(r.recovered, r.cuts + r.torn);
    if (options.points.empty() && (options.every_kind || options.exhaustive)) {
      // Every kind of operation the run performs was cut and torn at least once.
      std::set<std::string> kinds, cut;
      for (const std::string& k : r.strata)
        kinds.insert(k.substr(0, k.rfind(" x")));
      cut.insert(r.point_strata.begin(), r.point_strata.end());
      EXPECT_EQ(cut, kinds);
      EXPECT_TRUE(options.tear);
    }
    if (options.exhaustive && options.bulk_stride == 1) {
      EXPECT_EQ(r.cuts, r.total_ops) << "not every operation was cut";
    }
    return r;
  }

  static bool AnyFailureHas(const M4SweepResult& r, const std::string& text) {
    return std::any_of(r.failures.begin(), r.failures.end(),
                       [&](const std::string& f) { return f.find(text) != std::string::npos; });
  }

  // The stored payload of a full package is appv2.bin itself: one byte of it changed, signed
  // again. The signature holds; the image the loader writes does not hash to the target.
  M4Scenario TargetMismatch() {
    std::vector<uint8_t> package = Package(PackageKind::kFull, CodecId::kStored);
    const auto at = std::search(package.begin(), package.end(), new_.begin(), new_.begin() + 64);
    EXPECT_NE(at, package.end());
    if (at != package.end()) at[1024 + 17] ^= 0x01;
    M4Scenario s = Make("target-mismatch-recover", ota::testing::Resign(package, key_.get()));
    s.expect_new = false;
    return s;
  }

  static M4SweepOptions options_;
  static M4SweepOptions double_options_;
  static std::unique_ptr<ota::testing::MosquittoProcess> broker_;
  static std::filesystem::path broker_dir_;
  static M4Network network_;
  std::vector<uint8_t> loader_, old_, new_;
  host::Pkey key_;
};

M4SweepOptions PowerCutM4::options_;
M4SweepOptions PowerCutM4::double_options_;
std::unique_ptr<ota::testing::MosquittoProcess> PowerCutM4::broker_;
std::filesystem::path PowerCutM4::broker_dir_;
M4Network PowerCutM4::network_;

TEST_F(PowerCutM4, FullInstall_NeverBricks) {
  Sweep(Make("full-install", Package(PackageKind::kFull)));
}

TEST_F(PowerCutM4, DiffInstall_NeverBricks) {
  Sweep(Make("diff-install", Package(PackageKind::kDiff)));
}

// A package the signature vouches for whose payload does not give the target it names: the
// loader writes it, its verify step finds the mismatch, and it restores appv1 from the backup.
TEST_F(PowerCutM4, TargetMismatchRecover_NeverBricks) {
  Sweep(TargetMismatch());
}

// The app never confirms appv2: after its trial boots the loader goes back to appv1.
TEST_F(PowerCutM4, TrialRevert_NeverBricks) {
  M4Scenario s = Make("trial-revert", Package(PackageKind::kFull));
  s.app_confirms = false;
  s.expect_new = false;
  Sweep(s);
}

// A byte of the package changed after signing: the signature check refuses it.
TEST_F(PowerCutM4, RefusedPackage_NeverBricks) {
  std::vector<uint8_t> package = Package(PackageKind::kFull);
  package[4000 % package.size()] ^= 0x01;
  M4Scenario s = Make("refused-package", package);
  s.expect_new = false;
  Sweep(s);
}

// The double cut (tests/powercut's DoubleCut_*): each cut or tear, then the recovery cut again
// before a seeded one of its own operations, then powered on until the board settles.
TEST_F(PowerCutM4, DoubleCut_FullInstall_NeverBricks) {
  DoubleSweep(Make("full-install", Package(PackageKind::kFull)));
}

TEST_F(PowerCutM4, DoubleCut_TargetMismatchRecover_NeverBricks) {
  DoubleSweep(TargetMismatch());
}

// The sweep's own checks fail a sweep (each test makes one of them fail on purpose).

// A plan past the last operation: the board goes through the upgrade untouched, and that is a
// failure (nothing was cut), not a recovery.
TEST_F(PowerCutM4, Check_PlanPastTheLastOperation_IsReportedAsNeverFired) {
  M4SweepOptions o = options_;
  o.points = {1'000'000};
  o.tear = false;
  const M4SweepResult r = Sweep(Refused(), o, false);
  EXPECT_FALSE(r.sweep_failed);
  EXPECT_LT(r.total_ops, 1'000'000u);
  EXPECT_EQ(r.cuts, 1u);
  EXPECT_EQ(r.recovered, 0u);
  EXPECT_EQ(r.failed, 1u);
  EXPECT_TRUE(AnyFailureHas(r, "cut_before=1000000")) << "replayable";
  EXPECT_TRUE(AnyFailureHas(r, "the planned fault never fired"));
}

// A W25Q128 page program without write enable (the chip ignores it and its model notes it),
// sent after each power-on of the uninterrupted run: the sweep fails before any cut.
TEST_F(PowerCutM4, Check_RuleBrokenInTheUninterruptedRun_FailsTheSweep) {
  M4SweepOptions o = options_;
  o.after_power_on = [](M4Board& board, BoardFlash&, bool clean) {
    if (!clean) return;
    W25q128Chip& chip = board.w25q128();
    chip.Select();
    for (const int b : {0x02, 0xFF, 0xF0, 0x00, 0x55})
      chip.Transfer(static_cast<uint8_t>(b));
    chip.Deselect();
  };
  const M4SweepResult r = Sweep(Refused(), o, false);
  EXPECT_TRUE(r.sweep_failed);
  EXPECT_EQ(r.cuts + r.torn, 0u);
  EXPECT_TRUE(AnyFailureHas(r, "uninterrupted run: a model's rule broken"));
  EXPECT_TRUE(AnyFailureHas(r, "W25Q128: "));
}

// The same in the cut runs only: each run fails, though the board comes up on appv1.
TEST_F(PowerCutM4, Check_RuleBrokenInACutRun_FailsTheRun) {
  M4SweepOptions o = options_;
  o.points = {1};
  o.after_power_on = [](M4Board& board, BoardFlash&, bool clean) {
    if (clean) return;
    W25q128Chip& chip = board.w25q128();
    chip.Select();
    for (const int b : {0x20, 0xFF, 0xF0, 0x00})
      chip.Transfer(static_cast<uint8_t>(b));  // a sector erase without write enable
    chip.Deselect();
  };
  const M4SweepResult r = Sweep(Refused(), o, false);
  EXPECT_FALSE(r.sweep_failed);
  EXPECT_EQ(r.cuts, 1u);
  EXPECT_EQ(r.torn, 1u);
  EXPECT_EQ(r.recovered, 0u);
  EXPECT_EQ(r.failed, 2u);
  EXPECT_TRUE(AnyFailureHas(r, "refused-package cut_before=1 seed="));
  EXPECT_TRUE(AnyFailureHas(r, "before the cut: a model's rule broken"));
}

// The double cut's failure text names both cuts and the seed: a rule broken on the run's board
// from its second power-on on (the recovery that is cut again, then the last one; not the
// probe's copy of the board, which recovers uninterrupted and passes), so the run fails.
TEST_F(PowerCutM4, Check_RuleBrokenAfterTheSecondCut_ReplayNamesBothCuts) {
  M4SweepOptions o = options_;
  o.second_cut = true;
  o.points = {1};
  o.tear = false;
  o.jobs = 1;
  const M4Board* run_board = nullptr;
  int power_ons = 0;
  o.after_power_on = [&](M4Board& board, BoardFlash&, bool clean) {
    if (clean) return;
    if (run_board == nullptr) run_board = &board;  // the first power-on of the cut run
    if (&board != run_board || ++power_ons < 2) return;
    W25q128Chip& chip = board.w25q128();
    chip.Select();
    for (const int b : {0x20, 0xFF, 0xF0, 0x00})
      chip.Transfer(static_cast<uint8_t>(b));  // a sector erase without write enable
    chip.Deselect();
  };
  const M4SweepResult r = Sweep(Refused(), o, false);
  EXPECT_FALSE(r.sweep_failed);
  EXPECT_EQ(r.cuts, 1u);
  EXPECT_EQ(r.second_cuts, 1u) << "the recovery was cut a second time";
  EXPECT_EQ(r.failed, 1u);
  ASSERT_EQ(r.second_points.size(), 1u);
  EXPECT_EQ(r.second_points[0].rfind("cut_before=1 -> cut_before=", 0), 0u) << r.second_points[0];
  EXPECT_TRUE(AnyFailureHas(r, "refused-package cut_before=1 seed=" +
                                   std::to_string(o.seed * 1000003u + 1) + " then cut_before="));
  EXPECT_TRUE(AnyFailureHas(r, "of the recovery's "));
  EXPECT_TRUE(AnyFailureHas(r, "recovered, but in the recovery: a model's rule broken"));
}

// An operation the supply counts that no model recorded (the host erases a W25Q128 sector
// behind the board's back): the op map cannot say what a number cuts, so the sweep fails.
TEST_F(PowerCutM4, Check_OpMapDiffersFromTheSupplysCount_FailsTheSweep) {
  M4SweepOptions o = options_;
  o.after_power_on = [](M4Board&, BoardFlash& flash, bool clean) {
    if (clean) {
      ASSERT_TRUE(flash.external.Erase(flash.external.size() - 4096, 4096).ok());
    }
  };
  const M4SweepResult r = Sweep(Refused(), o, false);
  EXPECT_TRUE(r.sweep_failed);
  EXPECT_EQ(r.cuts + r.torn, 0u);
  EXPECT_TRUE(AnyFailureHas(r, "operations, the supply counted"));
}

// What the sweep's fast waiting changes: a cold boot (an option-byte program, a 16 KB erase, 32
// word programs, W25Q128 status polls) with and without it performs the same flash operations
// and W25Q128 commands in the same order, prints the same console and takes the same board
// time within a poll's length; only the polls the firmware executes go.
TEST(PowerCutM4FastWait, ColdBoot_SameOperationsAndTime_FewerInstructions) {
  const std::vector<uint8_t> loader = LoadImage("loader.bin");
  const std::vector<uint8_t> app = LoadImage("appv1.bin");
  ASSERT_FALSE(loader.empty());
  ASSERT_FALSE(app.empty());
  struct Boot {
    std::vector<std::string> operations;
    std::string console;
    uint64_t instructions = 0;
    uint64_t ns = 0;
    uint64_t waited_ns = 0;
  };
  const auto boot = [&](bool fast) {
    BoardFlash flash(kStm32f429Fire);
    FlashFactoryImages(flash, loader, app);
    M4Board board(flash);
    board.flash_interface().set_fast_busy_wait(fast);
    board.w25q128().set_fast_busy_wait(fast);
    board.PowerOn();
    const RunResult r =
        board.Run([&] { return board.console().find("app: version FOTAV1") != std::string::npos; });
    EXPECT_EQ(r.reason, StopReason::kCondition) << r.error;
    Boot b;
    for (const FlashIfEvent& e : board.flash_interface().events()) {
      b.operations.push_back(std::string(FlashIfEventName(e.kind)) + " " +
                             std::to_string(e.address) + " " + std::to_string(e.value));
    }
    for (const W25qCommand& c : board.w25q128().commands()) {
      if (c.opcode == 0x05) continue;  // the polls: fewer with fast waiting
      b.operations.push_back("w25q " + std::to_string(c.opcode) + " " + std::to_string(c.address) +
                             " " + std::to_string(c.executed));
    }
    b.console = board.console();
    b.instructions = board.instructions();
    b.ns = board.now_ns();
    b.waited_ns = board.flash_interface().waited_ns() + board.w25q128().waited_ns();
    EXPECT_TRUE(board.flash_interface().Violations().empty());
    EXPECT_TRUE(board.w25q128().Violations().empty());
    return b;
  };
  const Boot polled = boot(false);
  const Boot fast = boot(true);
  EXPECT_EQ(fast.operations, polled.operations);
  EXPECT_EQ(fast.console, polled.console);
  EXPECT_NEAR(static_cast<double>(fast.ns), static_cast<double>(polled.ns),
              static_cast<double>(polled.ns) * 0.01);
  EXPECT_GT(fast.waited_ns, 400'000'000u) << "the option-byte program and the trust sector erase";
  EXPECT_LT(fast.instructions * 4, polled.instructions);
  std::printf(
      "powercut-m4: fast waiting: cold boot instructions %llu -> %llu, emulated_ms %.1f -> "
      "%.1f (%.1f ms waited without polling)\n",
      static_cast<unsigned long long>(polled.instructions),
      static_cast<unsigned long long>(fast.instructions), static_cast<double>(polled.ns) / 1e6,
      static_cast<double>(fast.ns) / 1e6, static_cast<double>(fast.waited_ns) / 1e6);
}

}  // namespace
}  // namespace ota::sim::m4::testing
