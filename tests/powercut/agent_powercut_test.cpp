// The power-cut suite with the app's real code: the OTA agent's download, verification and
// staging and its outcome report and confirm, cut and torn at every flash operation of the
// whole life cycle on sim-small, the real loader booting the board between app runs.
#include <gtest/gtest.h>

#include <cstdio>

#include "agent_powercut.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::testing {
namespace {

class AgentPowerCut : public ::testing::Test {
 protected:
  // FOTAV1 of 9000 bytes in the slot, a signed full package of FOTAV2 (11000 bytes): the
  // images span several 8 KB internal sectors, the package three 4 KB download blocks.
  AgentScenario Make(const std::string& name, uint32_t new_size = 11000) {
    const BoardProfile& profile = kSimSmall;
    const uint32_t load = profile.internal_base + profile.partition(PartitionId::kRunning).offset;
    AgentScenario s;
    s.name = name;
    s.profile = &profile;
    s.old_image = MakeTestImage("FOTAV1", 9000, load, 11);
    s.new_image = MakeTestImage("FOTAV2", new_size, load, 22);
    host::PackageSpec spec;
    spec.kind = PackageKind::kFull;
    spec.version = "FOTAV2";
    spec.image = s.new_image;
    spec.security_counter = 1;
    spec.profile = &profile;
    s.task.package = MakePackage(spec, &key_);
    s.keys = {key_.trusted()};
    return s;
  }

  AgentSweepResult Sweep(const AgentScenario& s, const AgentSweepOptions& options) {
    const AgentSweepResult r = RunAgentSweep(s, options);
    std::printf("%s\n", SummaryLine(s.name, r.sweep).c_str());
    std::printf(
        "powercut-detail: %s ops=%llu unexpected=%llu download_stage=%llu install=%llu "
        "confirm=%llu power_ons=%llu http_bytes=%llu max_power_ons=%llu max_commands=%llu "
        "max_http_bytes=%llu\n",
        s.name.c_str(), static_cast<unsigned long long>(r.sweep.total_ops),
        static_cast<unsigned long long>(r.sweep.unexpected),
        static_cast<unsigned long long>(r.phases.download_stage),
        static_cast<unsigned long long>(r.phases.install),
        static_cast<unsigned long long>(r.phases.confirm),
        static_cast<unsigned long long>(r.power_ons), static_cast<unsigned long long>(r.http_bytes),
        static_cast<unsigned long long>(r.max_power_ons),
        static_cast<unsigned long long>(r.max_commands),
        static_cast<unsigned long long>(r.max_http_bytes));
    for (const std::string& f : r.sweep.failures)
      std::printf("  replay: %s\n", f.c_str());
    EXPECT_GT(r.sweep.total_ops, 0u);
    EXPECT_EQ(r.sweep.bricked, 0u);
    EXPECT_EQ(r.sweep.unexpected, 0u) << "a cut changed the outcome of the upgrade";
    EXPECT_EQ(r.sweep.recovered, r.sweep.cuts + r.sweep.torn);
    if (options.stride == 1 && options.install_stride == 1) {
      EXPECT_EQ(r.sweep.cuts, r.sweep.total_ops) << "not every operation was cut";
    } else if (options.stride == 1) {
      const uint64_t install_cuts =
          (r.phases.install + options.install_stride - 2) / options.install_stride + 1;
      EXPECT_EQ(r.sweep.cuts, r.phases.download_stage + install_cuts + r.phases.confirm)
          << "not every operation of the app was cut";
    }
    // Each phase has operations of its own, so each is among the cut points.
    EXPECT_GT(r.phases.download_stage, 0u);
    EXPECT_GT(r.phases.install, 0u);
    EXPECT_GT(r.phases.confirm, 0u) << "the confirm's record save must be a cut point";
    return r;
  }

  TestKey key_;
};

// The harness itself, without faults: the platform sees the way there and the outcome.
TEST_F(AgentPowerCut, Uninterrupted_DownloadsStagesInstallsReportsAndConfirms) {
  const AgentScenario s = Make("uninterrupted");
  SimBoard board(*s.profile);
  board.FlashRunning(s.old_image);
  PackageInstaller loader_installer(
      PackagePolicy{Span<const TrustedKey>(s.keys.data(), s.keys.size()), false});
  AgentLifeCycle life(s, board, loader_installer);
  const AgentLifeCycle::Outcome out = life.Run(12);
  ASSERT_TRUE(out.error.empty()) << out.error;
  ASSERT_TRUE(out.settled);
  EXPECT_EQ(out.power_ons, 4u) << "loader, app downloads; loader installs, app confirms; loader "
                                  "records the confirm, app settled; loader, app settled";
  EXPECT_TRUE(board.RunningHolds(s.new_image));
  EXPECT_STREQ(out.decision.image.header.version, "FOTAV2");
  EXPECT_EQ(out.record.status, UpgradeStatus::kIdle);
  EXPECT_TRUE(out.record.confirmed());
  EXPECT_EQ(out.record.security_counter, 1u);
  EXPECT_EQ(life.https().bytes(), s.task.package.size()) << "each byte fetched once";
  EXPECT_EQ(life.platform().commands_sent(), 1);
  EXPECT_TRUE(life.platform().succeeded());

  const std::vector<PlatformReport>& reports = life.platform().reports();
  ASSERT_GE(reports.size(), 4u);
  EXPECT_EQ(reports.front().event, "version_report");
  EXPECT_EQ(reports.front().version, "FOTAV1");
  EXPECT_EQ(reports.back().event, "version_report");
  EXPECT_EQ(reports.back().version, "FOTAV2");
  // The outcome goes before the version report of the new image.
  size_t at = 0;
  while (at < reports.size() && reports[at].description != "upgraded")
    ++at;
  ASSERT_LT(at + 1, reports.size()) << "no outcome report, or nothing after it";
  EXPECT_EQ(reports[at].event, "upgrade_progress_report");
  EXPECT_EQ(reports[at].result_code, 0);
  EXPECT_EQ(reports[at].progress, 100);
  EXPECT_EQ(reports[at].version, "FOTAV2");
  EXPECT_EQ(reports[at + 1].event, "version_report");
  EXPECT_EQ(reports[at + 1].version, "FOTAV2");
  for (size_t i = 0; i < at; ++i)
    EXPECT_NE(reports[i].version, "FOTAV2") << "FOTAV2 reported before the outcome";
}

// With duplicates the command also reaches the new image: it is answered "already latest",
// after the outcome, and changes nothing.
TEST_F(AgentPowerCut, UninterruptedWithDuplicates_NewImageAnswersAlreadyLatest) {
  AgentScenario s = Make("uninterrupted-duplicates");
  s.duplicate_commands = true;
  SimBoard board(*s.profile);
  board.FlashRunning(s.old_image);
  PackageInstaller loader_installer(
      PackagePolicy{Span<const TrustedKey>(s.keys.data(), s.keys.size()), false});
  AgentLifeCycle life(s, board, loader_installer);
  const AgentLifeCycle::Outcome out = life.Run(12);
  ASSERT_TRUE(out.error.empty()) << out.error;
  EXPECT_TRUE(board.RunningHolds(s.new_image));
  EXPECT_TRUE(out.record.confirmed());
  EXPECT_TRUE(life.platform().succeeded());
  EXPECT_EQ(life.https().bytes(), s.task.package.size());
  const std::vector<PlatformReport>& reports = life.platform().reports();
  size_t upgraded = reports.size();
  size_t latest = reports.size();
  for (size_t i = 0; i < reports.size(); ++i) {
    if (reports[i].description == "upgraded" && upgraded == reports.size()) upgraded = i;
    if (reports[i].result_code == agent::kResultAlreadyLatest && latest == reports.size()) {
      latest = i;
    }
  }
  ASSERT_LT(upgraded, reports.size());
  ASSERT_LT(latest, reports.size()) << "the duplicate never reached the new image";
  EXPECT_LT(upgraded, latest);
}

// (a) Every operation from the first app run on: the download's record, erases, programs
// and offsets, the staging, the loader's install, the outcome report's confirm.
TEST_F(AgentPowerCut, DownloadStage_EveryOperation_NeverBricks) {
  Sweep(Make("agent-download-stage"), {});
}

// (b) The same life cycle with a platform that re-sends the command at every connect while
// its task is open and delivers each command twice: after the install the command arrives
// again around the outcome report and the confirm (answered "already latest"), and after a
// cut in the download the resume is started by a duplicate. Every operation of the app
// (download, staging, confirm) is cut and torn; the loader's install, which (a) sweeps
// exhaustively, at every 16th operation (the full sweep would double (a)'s ~25 s).
TEST_F(AgentPowerCut, ConfirmWithDuplicateCommands_EveryAppOperation_NeverBricks) {
  AgentScenario s = Make("agent-confirm");
  s.duplicate_commands = true;
  AgentSweepOptions options;
  options.install_stride = 16;
  const AgentSweepResult r = Sweep(s, options);
  EXPECT_GT(r.max_commands, 2u) << "the platform sent no duplicates";
}

// (c) A package larger than the 16 KB between offset saves (a 20000-byte image, six 4 KB
// blocks): a cut in the last blocks resumes the download from the saved offset, with the
// command the platform re-sends. Every operation of the app is cut and torn; the loader's
// install (swept exhaustively by (a) and the loader sweeps) at every 16th operation.
TEST_F(AgentPowerCut, ResumeFromSavedOffset_EveryAppOperation_NeverBricks) {
  const AgentScenario s = Make("agent-download-resume", 20000);
  ASSERT_GT(s.task.package.size(), 4 * agent::kDownloadBlock);
  AgentSweepOptions options;
  options.install_stride = 16;
  const AgentSweepResult r = Sweep(s, options);
  // A cut costs at most the blocks since the last offset save: only they are fetched again.
  EXPECT_LE(r.max_http_bytes, s.task.package.size() + agent::kOffsetSaveEvery);
}

}  // namespace
}  // namespace ota::testing
