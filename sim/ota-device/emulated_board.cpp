#include "emulated_board.hpp"

#include <algorithm>
#include <thread>

#include "ota/flash_area.hpp"
#include "ota/profile.hpp"

namespace ota::device_sim {

namespace {

using Clock = std::chrono::steady_clock;

// The board runs in slices of at most this much board time; between two, the bridge hands
// the firmware's bytes to the modem and holds the board to real time when it is idle.
constexpr uint64_t kSliceNs = 10'000'000;
// While the board is busy, the broker's socket is still served this often (real time): MQTT
// keep-alive, and a message that arrives meanwhile.
constexpr auto kBusyPollInterval = std::chrono::milliseconds(50);
// A modem without a broker session has nothing to wait on: the hold sleeps in these steps.
constexpr auto kIdleSleep = std::chrono::milliseconds(2);
// The ESP module's enable and reset pins (boards/stm32f429-fire/modem_power.hpp): PC8, PC9.
constexpr uint32_t kModemPort = 2;
constexpr uint32_t kModemChPdPin = 8;
constexpr uint32_t kModemRstPin = 9;

int64_t Ns(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

}  // namespace

Status ProvisionSettings(sim::BoardFlash& flash, const agent::DeviceSettings& settings) {
  const FlashArea area(flash.external, kAppSettingsOffset, kAppSettingsSize);
  const Status s = agent::SaveSettings(area, settings);
  flash.ResetCounters();
  return s;
}

EmulatedBoard::EmulatedBoard(sim::BoardFlash& flash, std::string ca_file)
    : https_(ca_file), board_(flash), modem_(ca_file, https_, [this](const std::string& bytes) {
        from_modem_ += bytes.size();
        board_.ModemReceive(bytes);
      }) {
  board_.set_modem_sink([this](uint8_t byte) {
    tx_.push_back(static_cast<char>(byte));
    ++to_modem_;
  });
}

void EmulatedBoard::PowerOn() {
  board_.PowerOn();
  tx_.clear();
  modem_on_ = false;
  UpdateModem();
}

bool EmulatedBoard::ModemPinsHigh() {
  sim::m4::Gpio& c = board_.gpio(kModemPort);
  return c.Level(kModemChPdPin) && c.Level(kModemRstPin);
}

void EmulatedBoard::UpdateModem() {
  const bool on = ModemPinsHigh();
  if (on != modem_on_) {
    modem_on_ = on;
    modem_.Restart();
    modem_booting_ = on;
    if (on) {
      modem_ready_ns_ = board_.now_ns() + kModemBootNs;
      ++modem_starts_;
    }
  }
  if (modem_booting_ && board_.now_ns() >= modem_ready_ns_) {
    modem_booting_ = false;
    modem_.Ready();
  }
}

sim::m4::RunResult EmulatedBoard::Run(const std::function<bool()>& until,
                                      const sim::m4::RunLimits& limits) {
  anchor_board_ns_ = board_.now_ns();
  anchor_real_ = Clock::now();
  last_poll_ = anchor_real_;
  for (;;) {
    const uint64_t slice_end = board_.now_ns() + kSliceNs;
    const sim::m4::RunResult r = board_.Run(
        [&] {
          return !tx_.empty() || board_.now_ns() >= slice_end || ModemPinsHigh() != modem_on_ ||
                 (modem_booting_ && board_.now_ns() >= modem_ready_ns_) || until();
        },
        limits);
    UpdateModem();
    if (!tx_.empty()) {
      std::string bytes;
      bytes.swap(tx_);
      if (modem_on_ && !modem_booting_) {
        modem_.Feed(bytes);
      } else {
        lost_to_modem_ += bytes.size();
      }
    }
    if (r.reason != sim::m4::StopReason::kCondition || until()) return r;
    Pace();
  }
}

void EmulatedBoard::Pace() {
  const uint64_t board_ns = board_.now_ns();
  // The modem's boot is board time of its own, not a wait for the network.
  const bool idle = tx_.empty() && board_.usart3().rx_pending() == 0 && !modem_booting_;
  int64_t ahead =
      static_cast<int64_t>(board_ns - anchor_board_ns_) - Ns(Clock::now() - anchor_real_);
  if (idle && ahead > 0) {
    // Waiting for the network: the board's clock does not run ahead of the real one. A
    // message from the broker ends the wait at once.
    held_ns_ += board_ns - anchor_board_ns_;
    const uint64_t before = from_modem_;
    while (ahead > 0 && from_modem_ == before) {
      const Clock::time_point start = Clock::now();
      if (modem_.has_session()) {
        modem_.PollBroker();
        last_poll_ = Clock::now();
      } else {
        std::this_thread::sleep_for(
            std::min<Clock::duration>(kIdleSleep, std::chrono::nanoseconds(ahead)));
      }
      ahead -= Ns(Clock::now() - start);
    }
  } else if (Clock::now() - last_poll_ >= kBusyPollInterval) {
    modem_.PollBroker();
    last_poll_ = Clock::now();
  }
  anchor_board_ns_ = board_.now_ns();
  anchor_real_ = Clock::now();
}

}  // namespace ota::device_sim
