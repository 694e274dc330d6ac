// The whole board in emulation (issue 15; docs/m4-board.md, "The whole board"): the real
// loader.bin and appv1.bin of `make firmware` on the emulated FIRE board, whose USART3 is wired
// to the simulated ESP-AT modem; a real Mosquitto (auth plugin, MQTTS) and the platform
// (ota-server's Service) on free loopback ports. The app's agent logs in through AT commands,
// reports FOTAV1, gets the upgrade from the platform, downloads the package over HTTPS into
// the emulated W25Q128, resets (AIRCR) into the loader, which installs it; the app comes back
// as FOTAV2, confirms it and reports it. Once with the full package, once with the diff.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>

#include "emulated_board.hpp"
#include "ota/host/keys.hpp"
#include "ota/host/package_builder.hpp"
#include "ota/profile.hpp"
#include "ota/server/service.hpp"
#include "platform_stack.hpp"
#include "sim/m4/factory_image.hpp"

namespace ota::testing {
namespace {

using nlohmann::json;
using sim::m4::StopReason;

constexpr const char* kSecret = "m4-board-device-secret";

std::string FirmwareDir() {
  const char* env = std::getenv("OTA_FIRMWARE_DIR");
  return env != nullptr && *env != '\0' ? env : OTA_FIRMWARE_DIR_DEFAULT;
}

// The private key whose public half the loader and the apps were built with: $OTA_FIRMWARE_KEY,
// else the development key the cross build made (firmware/CMakeLists.txt) next to the images.
std::string FirmwareKeyPath() {
  const char* env = std::getenv("OTA_FIRMWARE_KEY");
  if (env != nullptr && *env != '\0') return env;
  return FirmwareDir() + "/../cortex-m4/firmware/dev-signing-key.pem";
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
}

struct Phase {
  uint64_t instructions = 0;
  uint64_t ns = 0;
};

std::string Figures(const Phase& p) {
  char text[96];
  std::snprintf(text, sizeof(text), "instructions=%llu emulated_ms=%.1f",
                static_cast<unsigned long long>(p.instructions), static_cast<double>(p.ns) / 1e6);
  return text;
}

class M4Upgrade : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    loader_ = ReadFile(FirmwareDir() + "/loader.bin");
    appv1_ = ReadFile(FirmwareDir() + "/appv1.bin");
    appv2_ = ReadFile(FirmwareDir() + "/appv2.bin");
    host::PrivateKeyResult key = host::LoadPrivateKey(FirmwareKeyPath(), "");
    key_error_ = key.error;
    key_ = std::move(key.key);
  }

  void SetUp() override {
    ASSERT_FALSE(loader_.empty()) << "cannot read " << FirmwareDir()
                                  << "/loader.bin (make firmware)";
    ASSERT_FALSE(appv1_.empty()) << "cannot read appv1.bin in " << FirmwareDir();
    ASSERT_FALSE(appv2_.empty()) << "cannot read appv2.bin in " << FirmwareDir();
    ASSERT_TRUE(key_) << FirmwareKeyPath() << ": " << key_error_
                      << " (set OTA_FIRMWARE_KEY to the key the loader trusts)";
    // The loader must trust this key: its public point is built into loader.bin.
    const host::PublicPoint point = host::PublicPointOf(key_.get());
    ASSERT_NE(std::search(loader_.begin(), loader_.end(), point.begin(), point.end()),
              loader_.end())
        << FirmwareKeyPath() << " is not the key loader.bin was built with";

    stack_.AddFireProduct(key_.get());
    stack_.registry().CreateDevice("fire", "n1", "", kSecret);
    StackOptions options;
    options.broker = StackBroker::kPlatformTls;
    ASSERT_TRUE(stack_.Start(options));
  }

  int64_t Upload(host::PackageSpec spec, const char* name) {
    const host::PackResult packed = host::BuildPackage(spec);
    EXPECT_EQ(packed.error, "");
    const host::SignResult signed_package = host::SignPackage(packed.package, key_.get());
    EXPECT_EQ(signed_package.error, "");
    return stack_.platform().packages().Upload("fire", signed_package.package, name).package_id;
  }
  int64_t CreateTask(int64_t package_id) {
    server::TaskSpec spec;
    spec.product_id = "fire";
    spec.package_id = package_id;
    spec.devices = {"fire_n1"};
    spec.retry_count = 0;
    return stack_.CreateTask(spec);
  }
  json Task(int64_t id) { return stack_.Task(id); }
  std::string DeviceState(int64_t task) { return Task(task)["devices"][0]["status"]; }

  // A factory-fresh board: loader.bin and appv1.bin, the app's settings provisioned (the
  // broker on this test's port), powered on.
  void MakeBoard() {
    flash_ = std::make_unique<sim::BoardFlash>(kStm32f429Fire);
    ASSERT_TRUE(sim::m4::FlashFactoryImages(*flash_, loader_, appv1_).ok());
    agent::DeviceSettings s;
    ASSERT_TRUE(agent::SetField(s.device_id, "fire_n1"));
    ASSERT_TRUE(agent::SetField(s.secret, kSecret));
    ASSERT_TRUE(agent::SetField(s.broker_host, "localhost"));
    s.broker_port = static_cast<uint16_t>(stack_.mqtts_port());
    ASSERT_TRUE(device_sim::ProvisionSettings(*flash_, s).ok());
    board_ = std::make_unique<device_sim::EmulatedBoard>(*flash_,
                                                         stack_.platform().tls().ca_cert.string());
    board_->PowerOn();
  }

  bool ConsoleHas(const std::string& text, size_t count = 1) const {
    size_t found = 0;
    const std::string& c = board_->board().console();
    for (size_t at = c.find(text); at != std::string::npos; at = c.find(text, at + 1))
      ++found;
    return found >= count;
  }
  Phase Now() const { return {board_->board().instructions(), board_->board().now_ns()}; }
  static Phase Since(const Phase& from, const Phase& to) {
    return {to.instructions - from.instructions, to.ns - from.ns};
  }

  // Runs the board until `done`, a fault or 3 minutes of real time; fails the test with the
  // console otherwise.
  void RunUntil(const std::function<bool()>& done, const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
    sim::m4::RunLimits limits;
    limits.max_instructions = UINT64_MAX;
    limits.max_emulated_ns = 3'600'000'000'000;  // an hour of board time
    const sim::m4::RunResult r =
        board_->Run([&] { return done() || std::chrono::steady_clock::now() > deadline; }, limits);
    ASSERT_EQ(r.reason, StopReason::kCondition)
        << StopReasonName(r.reason) << ": " << r.error << "\n"
        << board_->board().console();
    ASSERT_TRUE(done()) << "no " << what << " within 3 minutes (board time "
                        << board_->board().now_ns() / 1'000'000 << " ms)\n"
                        << board_->board().console();
  }

  // One upgrade from FOTAV1 to FOTAV2 with `package`, on a factory-fresh board: returns the
  // figures of the phases through `download` and `install`, and of the whole through `whole`.
  void Upgrade(int64_t package, const char* name) {
    MakeBoard();
    RunUntil([&] { return ConsoleHas("app: version FOTAV1"); }, "FOTAV1 banner");
    const Phase start = Now();
    const int64_t task = CreateTask(package);
    // The agent logs in, reports FOTAV1, gets the command, downloads into the W25Q128, and
    // asks for the reset into the loader.
    RunUntil([&] { return board_->board().resets().size() >= 2; }, "reset into the loader");
    const sim::m4::ResetRecord& reset = board_->board().resets().back();
    EXPECT_EQ(reset.cause, sim::m4::ResetCause::kSoftware) << "AIRCR.SYSRESETREQ";
    const Phase at_reset{reset.instructions, reset.ns};
    // The loader installs FOTAV2 and starts it; the app confirms it and reports it.
    RunUntil([&] { return ConsoleHas("app: version FOTAV2"); }, "FOTAV2 banner");
    const Phase installed = Now();
    RunUntil([&] { return DeviceState(task) == "Success"; }, "task success");
    const Phase end = Now();

    EXPECT_EQ(board_->board().vtor(), kStm32f429Fire.internal_base +
                                          kStm32f429Fire.partition(PartitionId::kRunning).offset);
    EXPECT_EQ(board_->board().usart3().dropped(), 0u) << "bytes from the modem were lost";
    // Every model's rules: the flash interface, the W25Q128, SPI5, the USARTs' overruns.
    EXPECT_TRUE(board_->board().Violations().empty())
        << ::testing::PrintToString(board_->board().Violations());
    {
      std::lock_guard<std::mutex> g(stack_.platform().lock());
      EXPECT_EQ(stack_.platform().registry().GetDevice("fire_n1").fw_version, "FOTAV2");
    }
    EXPECT_EQ(Task(task)["devices"][0]["package_id"], package);
    EXPECT_GT(board_->modem().commands(), 10u) << "the traffic went through AT commands";
    // Power-on, the app's reset pulse, then after the upgrade's reset the app's pulse again.
    EXPECT_EQ(board_->modem_starts(), 3);

    const Phase whole = Since(start, end);
    std::printf(
        "m4-board: %s upgrade FOTAV1->FOTAV2 ok %s (modem boot + login + download %s; loader "
        "install %s; "
        "app to confirmed %s) modem_bytes_out=%llu in=%llu lost_while_booting=%llu "
        "network_wait_ms=%.0f mips=%.1f\n",
        name, Figures(whole).c_str(), Figures(Since(start, at_reset)).c_str(),
        Figures(Since(at_reset, installed)).c_str(), Figures(Since(installed, end)).c_str(),
        static_cast<unsigned long long>(board_->bytes_to_modem()),
        static_cast<unsigned long long>(board_->bytes_from_modem()),
        static_cast<unsigned long long>(board_->bytes_lost_to_modem()),
        board_->network_wait_seconds() * 1e3,
        static_cast<double>(board_->board().instructions()) / board_->board().host_seconds() / 1e6);
    whole_ = whole;
    std::printf("m4-board: %s upgrade flash work: %s\n", name, FlashWork().c_str());
    if (std::getenv("OTA_M4_SHOW_CONSOLE") != nullptr) {
      std::printf("%s\n", board_->board().console().c_str());
    }
  }

  // What the firmware asked of both flashes since power-on (every operation went through the
  // peripheral models; none was refused or broke a rule: asserted in Upgrade).
  std::string FlashWork() {
    using Kind = sim::m4::FlashIfEvent::Kind;
    int programs = 0;
    int unlocks = 0;
    int option_programs = 0;
    std::map<uint32_t, int> erases;  // by sector size
    for (const sim::m4::FlashIfEvent& e : board_->board().flash_interface().events()) {
      EXPECT_NE(e.kind, Kind::kError) << e.note;
      if (e.kind == Kind::kProgram) ++programs;
      if (e.kind == Kind::kUnlock) ++unlocks;
      if (e.kind == Kind::kOptionProgram) ++option_programs;
      if (e.kind == Kind::kErase) ++erases[e.size];
    }
    std::string text = "internal unlocks=" + std::to_string(unlocks) +
                       " option_programs=" + std::to_string(option_programs) +
                       " word_programs=" + std::to_string(programs) + " erases";
    for (const auto& [size, n] : erases)
      text += " " + std::to_string(size / 1024) + "K=" + std::to_string(n);
    std::map<int, int> opcodes;
    for (const sim::m4::W25qCommand& c : board_->board().w25q128().commands())
      ++opcodes[c.opcode];
    text += "; w25q128 commands";
    for (const auto& [opcode, n] : opcodes) {
      char part[24];
      std::snprintf(part, sizeof(part), " %02X=%d", opcode, n);
      text += part;
    }
    return text;
  }

  static std::vector<uint8_t> loader_, appv1_, appv2_;
  static host::Pkey key_;
  static std::string key_error_;
  PlatformStack stack_{"ota-m4-upgrade"};
  std::unique_ptr<sim::BoardFlash> flash_;
  std::unique_ptr<device_sim::EmulatedBoard> board_;
  Phase whole_;
};

std::vector<uint8_t> M4Upgrade::loader_;
std::vector<uint8_t> M4Upgrade::appv1_;
std::vector<uint8_t> M4Upgrade::appv2_;
host::Pkey M4Upgrade::key_;
std::string M4Upgrade::key_error_;

TEST_F(M4Upgrade, FullPackage_FOTAV1ToFOTAV2) {
  host::PackageSpec spec;
  spec.version = "FOTAV2";
  spec.image = appv2_;
  const int64_t package = Upload(spec, "appv2c.bin");
  Upgrade(package, "full");
  if (HasFailure()) return;
  std::printf("m4-board: upgrade FOTAV1->FOTAV2 ok %s\n", Figures(whole_).c_str());
}

TEST_F(M4Upgrade, DiffPackage_FOTAV1ToFOTAV2) {
  host::PackageSpec spec;
  spec.kind = PackageKind::kDiff;
  spec.version = "FOTAV2";
  spec.image = appv2_;
  spec.from_version = "FOTAV1";
  spec.source = appv1_;
  const int64_t package = Upload(spec, "appv1v2.bin");
  Upgrade(package, "diff");
}

}  // namespace
}  // namespace ota::testing
