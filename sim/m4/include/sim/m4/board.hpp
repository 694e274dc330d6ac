// The emulated FIRE board (STM32F429IGT6 + W25Q128JV): a Cortex-M4 on Unicorn 2 running the
// real loader.bin and app images instruction by instruction, with the memory map of RM0090
// and the peripheral models of this directory on the board's emulated flash devices
// (sim::BoardFlash). docs/m4-board.md says what is modelled and how.
//
// Time: one core cycle per instruction, at the SYSCLK RCC selects (16 MHz after reset, 180
// MHz once the firmware starts the PLL); a stalled core (waiting for the flash interface) and
// a sleeping one (WFI, until the next timer event or interrupt) advance time without
// instructions. Anything the firmware touches that no model covers stops the run with the
// address, the access size, the value and the PC: a gap in the model is never silent.
#pragma once

#include <unicorn/unicorn.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/board_flash.hpp"
#include "sim/m4/flash_interface.hpp"
#include "sim/m4/gpio.hpp"
#include "sim/m4/iwdg.hpp"
#include "sim/m4/peripheral.hpp"
#include "sim/m4/rcc.hpp"
#include "sim/m4/scs.hpp"
#include "sim/m4/spi.hpp"
#include "sim/m4/usart.hpp"
#include "sim/m4/w25q128_chip.hpp"

namespace ota::sim::m4 {

enum class StopReason {
  kCondition,         // the caller's condition became true
  kInstructionLimit,  // RunLimits::max_instructions reached
  kTimeLimit,         // RunLimits::max_emulated_ns reached
  kReset,             // a reset happened and RunLimits::stop_on_reset was set
  kFault,             // a gap in the model, a CPU fault, a rule broken: see error
  kPowerLost,         // the board's supply failed (a planned power cut)
};
const char* StopReasonName(StopReason reason);

struct RunLimits {
  uint64_t max_instructions = 2'000'000'000;
  uint64_t max_emulated_ns = 120'000'000'000;  // 2 minutes of board time
  bool stop_on_reset = false;
};

struct RunResult {
  StopReason reason = StopReason::kCondition;
  std::string error;  // kFault: what stopped the run, with the PC
  uint32_t pc = 0;
};

struct ResetRecord {
  ResetCause cause;
  uint64_t instructions;
  uint64_t ns;
};

class M4Board final : private Machine {
 public:
  // The board runs on `flash` (its internal flash, external flash, OTP and option bytes),
  // which must outlive it and have the stm32f429-fire geometry.
  explicit M4Board(BoardFlash& flash);
  ~M4Board();
  M4Board(const M4Board&) = delete;
  M4Board& operator=(const M4Board&) = delete;

  // A cold start: RAM cleared, every peripheral (the W25Q128 too) at its reset state, the
  // core starting from the vector table at 0 (the flash alias). Counters restart from 0.
  void PowerOn();
  // Runs until `until()` is true (checked whenever the run stops to deliver an event, and
  // after every console byte), a limit, a fault or a power loss.
  RunResult Run(const std::function<bool()>& until, const RunLimits& limits = {});

  // USART1's output since power-on.
  const std::string& console() const { return console_; }
  void ConsoleReceive(const std::string& bytes) { usart1_->Receive(bytes); }
  // USART3: the ESP-AT modem's side.
  void set_modem_sink(std::function<void(uint8_t)> sink) { usart3_->set_sink(std::move(sink)); }
  void ModemReceive(const std::string& bytes) { usart3_->Receive(bytes); }

  uint64_t instructions() const { return instructions_; }
  uint64_t cycles() const override { return cycles_; }
  uint64_t now_ns() const override { return static_cast<uint64_t>(time_ns_); }
  // Host time spent inside the CPU emulator (for the MIPS figure).
  double host_seconds() const { return host_seconds_; }
  const std::vector<ResetRecord>& resets() const { return resets_; }

  // The first block of instructions executed inside [begin, end), and SP as it was then: how
  // a test sees where a jump landed and on which stack.
  struct Entry {
    bool hit = false;
    uint32_t pc = 0;
    uint32_t sp = 0;
    uint64_t instructions = 0;
  };
  void WatchEntry(uint32_t begin, uint32_t end) {
    watch_begin_ = begin;
    watch_end_ = end;
    entry_ = Entry{};
  }
  const Entry& entry() const { return entry_; }

  // The core's registers (UC_ARM_REG_*) and memory as the CPU sees them.
  uint32_t Register(int uc_reg) const;
  uint32_t ReadWord(uint32_t address) const;
  uint32_t vtor() const { return scs_->vtor(); }

  // Every rule of the datasheets the firmware broke since the models were created, one line
  // each, prefixed by the model: the flash interface's violations and error flags it set
  // (a correct driver never makes the part refuse a store or a start), the W25Q128's ignored
  // or wrapped commands, SPI5's (mid-byte /CS, overrun, pins, clock), the bytes USART1 and
  // USART3 received while the firmware had not read the previous one (ORE: lost). Empty:
  // the firmware followed every rule the models check (docs/m4-board.md, "What is modelled").
  std::vector<std::string> Violations() const;

  // The flash interface's and the W25Q128's operations take their datasheets' typical times
  // (default) or their maximums (worst-case parts: the drivers' timeouts must cover them).
  void set_flash_timing(FlashTimingCase timing) {
    flash_if_->set_timing(timing);
    chip_->set_timing(timing);
  }

  FlashInterface& flash_interface() { return *flash_if_; }
  W25q128Chip& w25q128() { return *chip_; }
  Spi& spi5() { return *spi5_; }
  Iwdg& iwdg() { return *iwdg_; }
  Rcc& rcc() { return *rcc_; }
  Usart& usart1() { return *usart1_; }
  Usart& usart3() { return *usart3_; }
  Gpio& gpio(uint32_t index) { return *gpio_.at(index); }  // 0 = GPIOA
  Scs& scs() { return *scs_; }

 private:
  // Machine.
  uint32_t pc() const override;
  void Fail(const std::string& what) override;
  void SetPending(uint32_t number) override;
  void RequestReset(ResetCause cause) override;
  void TimersChanged() override;
  uint32_t sysclk_hz() const override { return rcc_->sysclk_hz(); }
  void Stall(uint64_t ns) override;
  void PowerLost() override;

  void CreateEngine();
  void MapPeripheral(Peripheral& peripheral, const ClockGate* gate);
  void LoadVectors();
  void SystemReset(ResetCause cause);
  void ResetPeripherals(bool power_on);
  void SyncFlash(uint32_t offset, uint32_t len);
  void AdvanceTime(uint64_t cycles);
  void AdvanceNs(uint64_t ns);
  uint64_t NextEventNs();
  void RunDueEvents();
  bool DeliverException();
  uint32_t BlockInstructions(uint64_t address, uint32_t size);

  static void OnBlock(uc_engine* uc, uint64_t address, uint32_t size, void* user);
  static bool OnUnmapped(uc_engine* uc, uc_mem_type type, uint64_t address, int size, int64_t value,
                         void* user);
  static bool OnFlashWrite(uc_engine* uc, uc_mem_type type, uint64_t address, int size,
                           int64_t value, void* user);
  static void OnInterrupt(uc_engine* uc, uint32_t intno, void* user);
  static uint64_t MmioRead(uc_engine* uc, uint64_t offset, unsigned size, void* user);
  static void MmioWrite(uc_engine* uc, uint64_t offset, unsigned size, uint64_t value, void* user);

  struct Mapping {
    M4Board* board;
    Peripheral* peripheral;
    const ClockGate* gate;
  };

  BoardFlash& flash_;
  uint32_t flash_size_;
  uc_engine* uc_ = nullptr;

  std::unique_ptr<FlashInterface> flash_if_;
  std::unique_ptr<Rcc> rcc_;
  std::unique_ptr<Pwr> pwr_;
  std::vector<std::unique_ptr<Gpio>> gpio_;
  std::unique_ptr<W25q128Chip> chip_;
  std::unique_ptr<Spi> spi5_;
  std::unique_ptr<Usart> usart1_;
  std::unique_ptr<Usart> usart3_;
  std::unique_ptr<Iwdg> iwdg_;
  std::unique_ptr<Scs> scs_;
  std::unique_ptr<Dwt> dwt_;
  std::unique_ptr<Peripheral> otp_area_;
  std::vector<Peripheral*> timed_;
  std::vector<std::unique_ptr<Mapping>> mappings_;
  std::vector<ClockGate> gates_;

  std::vector<uint8_t> sram_;  // kept across a system reset
  std::vector<uint8_t> ccm_;

  uint64_t instructions_ = 0;
  uint64_t cycles_ = 0;
  double time_ns_ = 0;
  double ns_per_cycle_ = 0;
  double host_seconds_ = 0;
  uint64_t deadline_ns_ = 0;
  uint64_t max_instructions_ = UINT64_MAX;
  bool deadline_dirty_ = true;
  std::unordered_map<uint64_t, uint32_t> block_sizes_;

  // Why the emulator stopped, set by the hooks.
  bool fault_ = false;
  std::string error_;
  uint32_t error_pc_ = 0;
  bool power_lost_ = false;
  bool reset_requested_ = false;
  ResetCause reset_cause_ = ResetCause::kPowerOn;
  bool exc_return_ = false;
  uint32_t exc_return_value_ = 0;
  const std::function<bool()>* until_ = nullptr;
  bool until_met_ = false;

  uint32_t watch_begin_ = 0;
  uint32_t watch_end_ = 0;
  Entry entry_;
  std::string console_;
  std::vector<ResetRecord> resets_;
};

}  // namespace ota::sim::m4
