// `ota-device`: one simulated STM32F429 FIRE board (docs/agent.md). `flash` writes images at
// their addresses, like J-Flash; `run` powers the board on: the loader runs, then the app with
// its OTA agent, and a shell on stdin like the seed's. `run --emulate` runs the real board
// images (loader.bin and an app of `make firmware`) instruction by instruction on the emulated
// FIRE board instead, its modem UART on the simulated ESP-AT modem (docs/m4-board.md).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>

#include "board_runner.hpp"
#include "emulated_board.hpp"
#include "ota/agent/app_shell.hpp"
#include "ota/profile.hpp"
#include "ota/shell/shell.hpp"

namespace {

using ota::device_sim::BoardRunner;

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
}

void Say(const char* fmt, const std::string& a = "", const std::string& b = "") {
  std::printf("ota-device: ");
  std::printf(fmt, a.c_str(), b.c_str());
  std::printf("\n");
  std::fflush(stdout);
}

// The shell's input, read on its own thread so that `powercut` acts at once, even in the
// middle of a download or an install: the flash operation under way completes and the next one
// is cut, as when the supply goes. Other commands wait for the main loop.
class ShellInput {
 public:
  explicit ShellInput(ota::sim::PowerSupply& power) : power_(power) {
    thread_ = std::thread([this] { ReadLoop(); });
    thread_.detach();  // blocked in read(); ends with the process
  }
  std::optional<std::string> Next() {
    std::lock_guard<std::mutex> g(mu_);
    if (lines_.empty()) return std::nullopt;
    std::string line = std::move(lines_.front());
    lines_.pop_front();
    return line;
  }
  bool power_cut() const { return cut_; }
  // Whether a line waits for Next.
  bool pending() {
    std::lock_guard<std::mutex> g(mu_);
    return !lines_.empty();
  }

 private:
  void ReadLoop() {
    std::string line;
    char c;
    while (::read(STDIN_FILENO, &c, 1) == 1) {
      if (c != '\n') {
        line.push_back(c);
        continue;
      }
      std::lock_guard<std::mutex> g(mu_);
      // At once, unless earlier commands still wait: typed input keeps its order.
      if (line == "powercut" && lines_.empty()) {
        cut_ = true;
        power_.CutNow();
      }
      lines_.push_back(std::move(line));
      line.clear();
    }
  }
  ota::sim::PowerSupply& power_;
  std::thread thread_;
  std::mutex mu_;
  std::deque<std::string> lines_;
  std::atomic<bool> cut_{false};
};

enum class Next { kReboot, kQuit, kPowerCut };

// Flash work since the last call, as the real board would have spent it (timing model).
void ReportFlash(BoardRunner& board, const char* phase) {
  const ota::sim::FlashCounters c = board.flash().counters();
  std::printf("ota-device: flash %s programs=%llu erases=%llu erased_kb=%llu board_s=%.2f\n", phase,
              static_cast<unsigned long long>(c.program_ops),
              static_cast<unsigned long long>(c.erase_ops),
              static_cast<unsigned long long>(c.erased_bytes / 1024),
              static_cast<double>(c.time_typ_us) / 1e6);
  std::fflush(stdout);
  board.flash().ResetCounters();
}

// The shell's output: stdout, flushed (the demo and tests read it through a pipe).
class StdoutOutput final : public ota::shell::Output {
 public:
  void Write(const char* text) override {
    std::fputs(text, stdout);
    std::fflush(stdout);
  }
};

// The app's commands (the board's, from the device library) and the simulator's own.
struct DeviceShellState : ota::agent::AppShellState {
  BoardRunner* board = nullptr;
  bool quit = false;
  bool power_cut = false;
};

ota::Status PowerCut(void* context, ota::Span<char* const>, ota::shell::Output&) {
  auto& s = *static_cast<DeviceShellState*>(context);
  s.board->flash().power.CutNow();
  s.power_cut = true;
  return ota::Status::Ok();
}

ota::Status Quit(void* context, ota::Span<char* const>, ota::shell::Output&) {
  static_cast<DeviceShellState*>(context)->quit = true;
  return ota::Status::Ok();
}

std::vector<ota::shell::Command> DeviceCommands() {
  const ota::Span<const ota::shell::Command> app = ota::agent::AppShellCommands();
  std::vector<ota::shell::Command> all(app.begin(), app.end());
  all.push_back({"powercut", "powercut         cut the board's supply now (simulator)", PowerCut});
  all.push_back({"quit", "quit             stop the simulator", Quit});
  return all;
}

// The app's main loop: agent steps and shell commands until a reboot, a cut or quit.
Next RunApp(BoardRunner& board, ShellInput& input) {
  static const std::vector<ota::shell::Command> commands = DeviceCommands();
  StdoutOutput out;
  DeviceShellState state;
  state.agent = &board.agent();
  state.fw_version = board.running_version().c_str();
  state.sw_version = board.sw_version().c_str();
  state.board = &board;
  ota::shell::Shell shell(ota::Span<const ota::shell::Command>(commands.data(), commands.size()),
                          &state, out, false);
  bool was_connected = false;
  for (;;) {
    const ota::Result<ota::agent::AgentEvent> e = board.agent().Step(50);
    if (!e.ok() && e.status().code() == ota::StatusCode::kPowerLost) return Next::kPowerCut;
    if (!e.ok()) Say("agent: %s", e.status().name());
    if (board.agent().connected() != was_connected) {
      was_connected = board.agent().connected();
      Say(was_connected ? "connected to the platform" : "disconnected");
    }
    if (e.ok() && e.value() == ota::agent::AgentEvent::kReboot) {
      std::printf("ota-device: downloaded bytes=%llu\n",
                  static_cast<unsigned long long>(board.https().bytes_received()));
      board.https().reset_bytes();
      if (ota::device_sim::EspAtModemSim* modem = board.modem_sim()) {
        // What the download costs on the board's modem UART, the slowest link of the chain.
        std::printf("ota-device: modem uart bytes=%llu uart_s=%.2f\n",
                    static_cast<unsigned long long>(modem->uart_bytes()), modem->uart_seconds());
        modem->reset_uart_bytes();
      }
      ReportFlash(board, "download");
      Say("package staged, rebooting into the loader");
      return Next::kReboot;
    }
    while (std::optional<std::string> line = input.Next()) {
      std::vector<char> text(line->begin(), line->end());
      text.push_back('\0');
      shell.Execute(text.data());
      if (state.power_cut) return Next::kPowerCut;
      if (state.quit) return Next::kQuit;
      if (state.reboot_requested) return Next::kReboot;
    }
  }
}

// The emulated board's figures so far: instructions, board time, emulation speed.
void SayFigures(ota::device_sim::EmulatedBoard& e, const char* what) {
  ota::sim::m4::M4Board& b = e.board();
  std::printf(
      "ota-device: emulated board: %s instructions=%llu cycles=%llu emulated_ms=%.1f mips=%.1f\n",
      what, static_cast<unsigned long long>(b.instructions()),
      static_cast<unsigned long long>(b.cycles()), static_cast<double>(b.now_ns()) / 1e6,
      b.host_seconds() > 0 ? static_cast<double>(b.instructions()) / b.host_seconds() / 1e6 : 0.0);
  std::fflush(stdout);
}

// `run --emulate`: the images flashed into `board_dir` on the emulated FIRE board, the app's
// settings provisioned from the config, USART1 on stdout and the shell's input, USART3 on the
// simulated ESP-AT modem. Runs until `quit` (0), a power cut (3) or a fault (1).
int RunEmulated(const std::string& board_dir, const ota::device_sim::DeviceConfig& config) {
  ota::sim::BoardFlash flash(ota::kStm32f429Fire);
  if (!flash.internal.OpenFile(board_dir + "/internal.flash").ok() ||
      !flash.external.OpenFile(board_dir + "/external.flash").ok() ||
      !flash.otp.cells().OpenFile(board_dir + "/otp.flash").ok()) {
    throw std::runtime_error(board_dir + ": cannot open the flash files");
  }
  if (flash.internal.raw()[0] == 0xFF && flash.internal.raw()[3] == 0xFF) {
    throw std::runtime_error(board_dir + ": no loader at 0x08000000 (flash with --loader)");
  }
  ota::agent::DeviceSettings s;
  if (!ota::agent::SetField(s.device_id, config.device_id.c_str()) ||
      !ota::agent::SetField(s.secret, config.secret.c_str()) ||
      !ota::agent::SetField(s.broker_host, config.mqtt_host.c_str())) {
    throw std::runtime_error("device_id, secret or mqtt_host do not fit the app's settings");
  }
  s.broker_port = static_cast<uint16_t>(config.mqtt_port);
  if (!ota::device_sim::ProvisionSettings(flash, s).ok()) {
    throw std::runtime_error("cannot write the app's settings into the W25Q128");
  }
  ota::device_sim::EmulatedBoard emulated(flash, config.ca_file);
  ota::sim::m4::M4Board& board = emulated.board();
  ShellInput input(flash.power);
  Say("power on: emulated FIRE board (loader.bin + app from %s)", board_dir);
  emulated.PowerOn();
  size_t printed = 0;
  bool mid_line = false;
  size_t resets = board.resets().size();
  ota::sim::m4::RunLimits limits;
  limits.max_instructions = UINT64_MAX;
  limits.max_emulated_ns = UINT64_MAX;
  for (;;) {
    const ota::sim::m4::RunResult r = emulated.Run(
        [&] {
          return board.console().size() > printed || board.resets().size() > resets ||
                 input.pending() || input.power_cut();
        },
        limits);
    if (board.console().size() > printed) {
      std::fputs(board.console().c_str() + printed, stdout);
      printed = board.console().size();
      mid_line = board.console().back() != '\n';
      std::fflush(stdout);
    }
    // The simulator's own lines start on a line of their own (after the shell's prompt).
    const auto line_start = [&] {
      if (mid_line) std::fputs("\n", stdout);
      mid_line = false;
    };
    for (; resets < board.resets().size(); ++resets) {
      line_start();
      const char* cause = ota::sim::m4::ResetCauseName(board.resets()[resets].cause);
      SayFigures(emulated, (std::string("reset: ") + cause + ";").c_str());
    }
    if (r.reason == ota::sim::m4::StopReason::kPowerLost || input.power_cut()) {
      line_start();
      Say("power cut");
      SayFigures(emulated, "at the cut");
      return 3;
    }
    if (r.reason != ota::sim::m4::StopReason::kCondition) {
      line_start();
      std::fprintf(stderr, "ota-device: emulated board stopped: %s: %s\n",
                   ota::sim::m4::StopReasonName(r.reason), r.error.c_str());
      SayFigures(emulated, "stopped");
      return 1;
    }
    while (std::optional<std::string> line = input.Next()) {
      if (*line == "quit") {
        line_start();
        SayFigures(emulated, "quit");
        return 0;
      }
      board.ConsoleReceive(*line + "\r");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ota-device: one simulated STM32F429 FIRE board"};
  app.require_subcommand(1);
  std::string board_dir = "board", loader_file, app_file, config_file;
  uint64_t cut_after = 0;
  CLI::App* flash = app.add_subcommand("flash", "Write the loader and an app image (J-Flash)");
  flash->add_option("--board", board_dir, "directory of the board's flash files");
  flash->add_option("--loader", loader_file, "loader binary for 0x08000000");
  flash->add_option("--app", app_file, "app image for the running slot (0x08020000)")->required();
  CLI::App* run = app.add_subcommand("run", "Power the board on: loader, then the app and shell");
  run->add_option("--board", board_dir, "directory of the board's flash files");
  run->add_option("--config", config_file, "device config JSON (docs/agent.md)")->required();
  run->add_option("--power-cut-after", cut_after,
                  "cut the power before the Nth flash program/erase of this run");
  bool emulate = false;
  run->add_flag("--emulate", emulate,
                "run the flashed loader.bin and app (make firmware) on the emulated FIRE board "
                "(Cortex-M4 on Unicorn, docs/m4-board.md), its USART3 on the simulated modem");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (flash->parsed()) {
      ota::device_sim::DeviceConfig none;
      BoardRunner board(ota::kStm32f429Fire, board_dir, none);
      board.Program(loader_file.empty() ? std::vector<uint8_t>() : ReadFile(loader_file),
                    ReadFile(app_file));
      Say("flashed %s into %s", app_file, board_dir);
      return 0;
    }
    if (emulate) {
      if (cut_after != 0) throw std::runtime_error("--power-cut-after: not with --emulate");
      return RunEmulated(board_dir, ota::device_sim::LoadDeviceConfig(config_file));
    }
    BoardRunner board(ota::kStm32f429Fire, board_dir,
                      ota::device_sim::LoadDeviceConfig(config_file));
    if (cut_after != 0) board.flash().power.Arm({cut_after, 0, 0});
    ShellInput shell(board.flash().power);
    for (;;) {
      Say("power on: loader");
      const ota::Result<ota::BootDecision> d = board.Boot();
      if (!d.ok() || shell.power_cut()) {
        Say("power cut (%s)", d.status().name());
        return 3;
      }
      const ota::BootRecord& r = d->record;
      std::printf("ota-device: loader: status %s step %s reason %s\n",
                  ota::UpgradeStatusName(r.status), ota::UpgradeStepName(r.step),
                  ota::FailReasonName(r.reason));
      ReportFlash(board, "loader");
      if (!d->boot_app) {
        Say("loader: nothing verified to boot; the board stays in the loader");
        return 4;
      }
      Say("app %s running", std::string(d->image.header.version));
      if (!board.StartApp(d.value()).ok()) {
        Say("app: cannot read the boot state");
        return 1;
      }
      const Next next = RunApp(board, shell);
      if (next == Next::kQuit) return 0;
      if (next == Next::kPowerCut) {
        Say("power cut");
        return 3;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ota-device: %s\n", e.what());
    return 1;
  }
}
