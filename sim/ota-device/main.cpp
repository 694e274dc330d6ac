// `ota-device`: one simulated STM32F429 FIRE board (docs/agent.md). `flash` writes images at
// their addresses, like J-Flash; `run` powers the board on: the loader runs, then the app with
// its OTA agent, and a shell on stdin like the seed's.
#include <poll.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "board_runner.hpp"
#include "ota/profile.hpp"

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

// A line from stdin if one is ready; nullopt when none (or at EOF: `eof` is set).
std::optional<std::string> ReadyLine(bool* eof) {
  static std::string buffer;
  pollfd p{STDIN_FILENO, POLLIN, 0};
  while (!*eof && ::poll(&p, 1, 0) > 0) {
    char c;
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n <= 0) {
      *eof = true;
      break;
    }
    if (c == '\n') {
      std::string line;
      line.swap(buffer);
      return line;
    }
    buffer.push_back(c);
  }
  return std::nullopt;
}

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

void PrintStatus(BoardRunner& board) {
  const ota::BootRecord& r = board.agent().record();
  std::printf("ota-device: status %s step %s reason %s download %u/%u package %s mqtt %s\n",
              ota::UpgradeStatusName(r.status), ota::UpgradeStepName(r.step),
              ota::FailReasonName(r.reason), r.download_offset, r.package_size,
              r.package_version[0] != '\0' ? r.package_version : "-",
              board.agent().connected() ? "connected" : "disconnected");
  std::fflush(stdout);
}

// The app's main loop: agent steps and shell commands until a reboot, a cut or quit.
Next RunApp(BoardRunner& board, bool* stdin_eof) {
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
      ReportFlash(board, "download");
      Say("package staged, rebooting into the loader");
      return Next::kReboot;
    }
    while (std::optional<std::string> line = ReadyLine(stdin_eof)) {
      std::istringstream words(*line);
      std::string cmd;
      words >> cmd;
      if (cmd.empty()) continue;
      if (cmd == "version") {
        std::printf("%s\n", board.running_version().c_str());
        std::fflush(stdout);
      } else if (cmd == "status") {
        PrintStatus(board);
      } else if (cmd == "radio") {
        int v = 0;
        if (words >> v) {
          board.agent().set_radio(v);
          Say("radioValue %s", std::to_string(v));
        } else {
          Say("usage: radio <value>");
        }
      } else if (cmd == "reboot") {
        return Next::kReboot;
      } else if (cmd == "powercut") {
        return Next::kPowerCut;
      } else if (cmd == "quit") {
        return Next::kQuit;
      } else {
        Say("commands: version, status, radio <value>, reboot, powercut, quit");
      }
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
    BoardRunner board(ota::kStm32f429Fire, board_dir,
                      ota::device_sim::LoadDeviceConfig(config_file));
    if (cut_after != 0) board.flash().power.Arm({cut_after, 0, 0});
    bool stdin_eof = false;
    for (;;) {
      Say("power on: loader");
      const ota::Result<ota::BootDecision> d = board.Boot();
      if (!d.ok()) {
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
      const Next next = RunApp(board, &stdin_eof);
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
