#include "sim/m4/board.hpp"

#include <unicorn/arm.h>

#include <algorithm>
#include <cstring>

#include "sim/m4/exceptions.hpp"
#include "sim/m4/memory_map.hpp"

namespace ota::sim::m4 {
namespace {

constexpr uint64_t kNoExit = 0xFFFFFFFEu;  // never an instruction address (the top is EXC_RETURN)
constexpr uint32_t kExceptionEntryCycles = 12;  // PM0214: 12-cycle latency, zero wait states
constexpr uint32_t kUsart1Irq = 37;
constexpr uint32_t kUsart3Irq = 39;

std::string UcError(uc_err err) {
  return uc_strerror(err);
}

// The OTP area (RM0090 3.7) as the CPU reads it; stores go to the flash interface, which
// programs them as it does main flash.
class OtpArea final : public Peripheral {
 public:
  OtpArea(Machine& machine, EmulatedOtp& otp, FlashInterface& flash_if)
      : Peripheral(machine, "OTP", kOtpBase, kOtpPage), otp_(otp), flash_if_(flash_if) {}
  void Reset() override {}
  uint32_t Read(uint32_t offset) override { return ReadNarrow(offset, 4); }
  void Write(uint32_t offset, uint32_t value) override { WriteNarrow(offset, 4, value); }
  uint32_t ReadNarrow(uint32_t offset, unsigned size) override {
    if (offset + size > kOtpSize) return Unmodelled(offset, size, false);
    uint32_t value = 0;
    std::memcpy(&value, &otp_.cells().raw()[offset], size);
    return value;
  }
  void WriteNarrow(uint32_t offset, unsigned size, uint32_t value) override {
    if (offset + size > kOtpSize) {
      Unmodelled(offset, size, true, value);
      return;
    }
    flash_if_.MemoryWrite(kOtpBase + offset, size, value);
  }

 private:
  EmulatedOtp& otp_;
  FlashInterface& flash_if_;
};

}  // namespace

const char* StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kCondition:
      return "condition met";
    case StopReason::kInstructionLimit:
      return "instruction limit";
    case StopReason::kTimeLimit:
      return "emulated time limit";
    case StopReason::kReset:
      return "reset";
    case StopReason::kFault:
      return "fault";
    case StopReason::kPowerLost:
      return "power lost";
  }
  return "?";
}

M4Board::M4Board(BoardFlash& flash)
    : flash_(flash), flash_size_(flash.internal.size()), sram_(kSramSize, 0), ccm_(kCcmSize, 0) {
  Machine& machine = *this;
  flash_if_ = std::make_unique<FlashInterface>(
      machine, flash_, [this](uint32_t offset, uint32_t len) { SyncFlash(offset, len); });
  rcc_ = std::make_unique<Rcc>(machine, [this] { return flash_if_->latency(); });
  pwr_ = std::make_unique<Pwr>(machine, *rcc_);
  for (uint32_t i = 0; i < kGpioPorts; ++i)
    gpio_.push_back(std::make_unique<Gpio>(machine, i));
  chip_ = std::make_unique<W25q128Chip>(machine, flash_.external);
  spi5_ = std::make_unique<Spi>(machine, *rcc_, *gpio_[5], *chip_);
  // The W25Q128's /CS is PF6.
  gpio_[5]->set_on_change([this](uint32_t pin, bool level) {
    if (pin == 6) spi5_->ChipSelect(level);
  });
  usart1_ = std::make_unique<Usart>(machine, "USART1", kUsart1Base, kUsart1Irq,
                                    [this] { return rcc_->apb2_hz(); });
  usart3_ = std::make_unique<Usart>(machine, "USART3", kUsart3Base, kUsart3Irq,
                                    [this] { return rcc_->apb1_hz(); });
  usart1_->set_sink([this](uint8_t byte) {
    console_.push_back(static_cast<char>(byte));
    if (until_ != nullptr && *until_ && (*until_)()) {
      // Stop at the next block: stopping inside an MMIO callback makes Unicorn 2.0.1 run
      // the store again when it resumes (the console would show the byte twice).
      until_met_ = true;
      deadline_ns_ = 0;
    }
  });
  iwdg_ = std::make_unique<Iwdg>(machine);
  scs_ = std::make_unique<Scs>(machine);
  dwt_ = std::make_unique<Dwt>(machine, *scs_);
  timed_ = {scs_.get(), iwdg_.get(), usart1_.get(), usart3_.get()};
  // Clock enables (RM0090 6.3.10, 6.3.13, 6.3.14).
  gates_.reserve(kGpioPorts + 4);
  for (uint32_t i = 0; i < kGpioPorts; ++i)
    gates_.push_back({kRccAhb1Enr, i, "RCC_AHB1ENR"});
  gates_.push_back({kRccApb2Enr, 4, "RCC_APB2ENR"});   // USART1
  gates_.push_back({kRccApb1Enr, 18, "RCC_APB1ENR"});  // USART3
  gates_.push_back({kRccApb2Enr, 20, "RCC_APB2ENR"});  // SPI5
  gates_.push_back({kRccApb1Enr, 28, "RCC_APB1ENR"});  // PWR
}

M4Board::~M4Board() {
  if (uc_ != nullptr) uc_close(uc_);
}

uint32_t M4Board::Register(int uc_reg) const {
  uint32_t value = 0;
  if (uc_ != nullptr) uc_reg_read(uc_, uc_reg, &value);
  return value;
}

std::vector<std::string> M4Board::Violations() const {
  std::vector<std::string> out;
  for (const std::string& v : flash_if_->Violations())
    out.push_back("FLASH: " + v);
  for (const FlashIfEvent& e : flash_if_->events()) {
    if (e.kind == FlashIfEvent::Kind::kError)
      out.push_back("FLASH: " + e.note + " at pc " + Hex(e.pc));
  }
  for (const std::string& v : chip_->Violations())
    out.push_back("W25Q128: " + v);
  for (const std::string& v : spi5_->violations())
    out.push_back("SPI5: " + v);
  for (const Usart* usart : {usart1_.get(), usart3_.get()}) {
    if (usart->dropped() != 0) {
      out.push_back(usart->name() + ": " + std::to_string(usart->dropped()) +
                    " received bytes lost (overrun: the previous byte was not read in time)");
    }
  }
  return out;
}

uint32_t M4Board::ReadWord(uint32_t address) const {
  uint32_t value = 0;
  if (uc_ != nullptr) uc_mem_read(uc_, address, &value, sizeof(value));
  return value;
}

uint32_t M4Board::pc() const {
  return Register(UC_ARM_REG_PC);
}

void M4Board::Fail(const std::string& what) {
  if (!fault_) {
    fault_ = true;
    error_ = what;
    error_pc_ = pc();
  }
  if (uc_ != nullptr) uc_emu_stop(uc_);
}

void M4Board::SetPending(uint32_t number) {
  scs_->nvic().SetPending(number);
  deadline_ns_ = 0;  // stop at the end of this block to take it
}

void M4Board::RequestReset(ResetCause cause) {
  if (!reset_requested_) {
    reset_requested_ = true;
    reset_cause_ = cause;
  }
  if (uc_ != nullptr) uc_emu_stop(uc_);
}

void M4Board::TimersChanged() {
  ns_per_cycle_ = 1e9 / rcc_->sysclk_hz();
  deadline_dirty_ = true;
}

void M4Board::PowerLost() {
  power_lost_ = true;
  if (uc_ != nullptr) uc_emu_stop(uc_);
}

void M4Board::AdvanceTime(uint64_t instructions) {
  instructions_ += instructions;
  cycles_ += instructions;
  time_ns_ += static_cast<double>(instructions) * ns_per_cycle_;
}

void M4Board::AdvanceNs(uint64_t ns) {
  time_ns_ += static_cast<double>(ns);
  cycles_ += ns * rcc_->sysclk_hz() / 1'000'000'000ull;
}

void M4Board::Stall(uint64_t ns) {
  AdvanceNs(ns);
  deadline_dirty_ = true;
}

uint64_t M4Board::NextEventNs() {
  ns_per_cycle_ = 1e9 / rcc_->sysclk_hz();
  uint64_t next = Peripheral::kNever;
  for (Peripheral* p : timed_)
    next = std::min(next, p->NextEventNs());
  return next;
}

void M4Board::RunDueEvents() {
  // A peripheral's event may schedule another one at once (a byte queue): bounded loop.
  for (int round = 0; round < 16; ++round) {
    bool any = false;
    for (Peripheral* p : timed_) {
      if (p->NextEventNs() <= now_ns()) {
        p->OnTime();
        any = true;
      }
    }
    if (!any) return;
  }
}

void M4Board::SyncFlash(uint32_t offset, uint32_t len) {
  if (uc_ == nullptr) return;
  const uint8_t* cells = flash_.internal.raw().data() + offset;
  uc_mem_write(uc_, kFlashBase + offset, cells, len);
  uc_mem_write(uc_, kFlashAliasBase + offset, cells, len);
  block_sizes_.clear();
}

uint32_t M4Board::BlockInstructions(uint64_t address, uint32_t size) {
  const uint64_t key = (address << 16) | size;
  const auto it = block_sizes_.find(key);
  if (it != block_sizes_.end()) return it->second;
  std::vector<uint8_t> code(size);
  uint32_t count = 0;
  if (uc_mem_read(uc_, address, code.data(), size) == UC_ERR_OK) {
    // Thumb-2: a halfword whose top five bits are 0b11101, 0b11110 or 0b11111 starts a
    // 32-bit instruction (ARMv7-M ARM A5.1).
    for (uint32_t i = 0; i + 1 < size;) {
      const uint32_t halfword = code[i] | (code[i + 1] << 8);
      i += (halfword >> 11) >= 0x1D ? 4 : 2;
      ++count;
    }
  }
  if (count == 0) count = 1;
  block_sizes_.emplace(key, count);
  return count;
}

void M4Board::OnBlock(uc_engine* uc, uint64_t address, uint32_t size, void* user) {
  auto* board = static_cast<M4Board*>(user);
  if (!board->entry_.hit && address >= board->watch_begin_ && address < board->watch_end_) {
    board->entry_ = Entry{true, static_cast<uint32_t>(address), board->Register(UC_ARM_REG_SP),
                          board->instructions_};
  }
  board->AdvanceTime(board->BlockInstructions(address, size));
  if (board->deadline_dirty_) {
    board->deadline_dirty_ = false;
    board->deadline_ns_ = std::min(board->deadline_ns_, board->NextEventNs());
  }
  if (board->now_ns() >= board->deadline_ns_ || board->instructions_ >= board->max_instructions_) {
    uc_emu_stop(uc);
  }
}

bool M4Board::OnUnmapped(uc_engine* /*uc*/, uc_mem_type type, uint64_t address, int size,
                         int64_t value, void* user) {
  auto* board = static_cast<M4Board*>(user);
  const auto addr = static_cast<uint32_t>(address);
  if ((type == UC_MEM_FETCH_UNMAPPED || type == UC_MEM_FETCH_PROT) && IsExcReturn(addr) &&
      board->scs_->nvic().depth() > 0) {
    board->exc_return_ = true;
    board->exc_return_value_ = addr | 1u;
    return false;  // the emulator stops; Run() returns from the exception
  }
  const char* what = "access";
  switch (type) {
    case UC_MEM_READ_UNMAPPED:
      what = "unmapped read";
      break;
    case UC_MEM_WRITE_UNMAPPED:
      what = "unmapped write";
      break;
    case UC_MEM_FETCH_UNMAPPED:
      what = "instruction fetch from unmapped memory";
      break;
    case UC_MEM_FETCH_PROT:
      what = "instruction fetch from non-executable memory";
      break;
    case UC_MEM_READ_PROT:
      what = "read of unreadable memory";
      break;
    default:
      break;
  }
  std::string text = std::string(what) + " of " + std::to_string(size) + " bytes at " + Hex(addr);
  if (type == UC_MEM_WRITE_UNMAPPED) text += " (value " + Hex(static_cast<uint32_t>(value)) + ")";
  board->Fail(text + ": no model covers it");
  return false;
}

bool M4Board::OnFlashWrite(uc_engine* /*uc*/, uc_mem_type /*type*/, uint64_t address, int size,
                           int64_t value, void* user) {
  auto* board = static_cast<M4Board*>(user);
  uint32_t cpu_address = static_cast<uint32_t>(address);
  if (cpu_address < kFlashBase) cpu_address += kFlashBase;  // the alias at 0
  board->flash_if_->MemoryWrite(cpu_address, static_cast<unsigned>(size),
                                static_cast<uint32_t>(value));
  return true;  // handled: the emulator discards the store to its read-only copy
}

void M4Board::OnInterrupt(uc_engine* uc, uint32_t intno, void* user) {
  auto* board = static_cast<M4Board*>(user);
  // A branch to EXC_RETURN: the M-profile memory map makes 0xE0000000 and up execute-never,
  // so QEMU raises a prefetch abort (3) for the fetch there.
  const uint32_t pc = board->pc();
  if (intno == 3 && IsExcReturn(pc) && board->scs_->nvic().depth() > 0) {
    board->exc_return_ = true;
    board->exc_return_value_ = pc | 1u;
    uc_emu_stop(uc);
    return;
  }
  // QEMU's numbers (target/arm/cpu.h): 1 undefined instruction, 2 SVC, 7 BKPT, 17 no
  // coprocessor, 18 invalid state, 22 unaligned.
  board->Fail("CPU exception " + std::to_string(intno) +
              " (1 undefined instruction, 2 SVC, 7 BKPT, 17 NOCP, 18 INVSTATE, 22 unaligned): "
              "fault handling is not modelled");
}

uint64_t M4Board::MmioRead(uc_engine* /*uc*/, uint64_t offset, unsigned size, void* user) {
  auto* m = static_cast<Mapping*>(user);
  const auto off = static_cast<uint32_t>(offset);
  if (m->gate != nullptr && !m->board->rcc_->Enabled(*m->gate)) {
    m->board->Fail(m->peripheral->name() + " read at " + Hex(m->peripheral->base() + off) +
                   " with its clock off (" + m->gate->register_name + " bit " +
                   std::to_string(m->gate->bit) + ")");
    return 0;
  }
  if (size == 4 && off % 4 == 0) return m->peripheral->Read(off);
  return m->peripheral->ReadNarrow(off, size);
}

void M4Board::MmioWrite(uc_engine* /*uc*/, uint64_t offset, unsigned size, uint64_t value,
                        void* user) {
  auto* m = static_cast<Mapping*>(user);
  const auto off = static_cast<uint32_t>(offset);
  const auto v = static_cast<uint32_t>(value);
  if (m->gate != nullptr && !m->board->rcc_->Enabled(*m->gate)) {
    m->board->Fail(m->peripheral->name() + " write of " + Hex(v) + " at " +
                   Hex(m->peripheral->base() + off) + " with its clock off (" +
                   m->gate->register_name + " bit " + std::to_string(m->gate->bit) + ")");
    return;
  }
  if (size == 4 && off % 4 == 0) {
    m->peripheral->Write(off, v);
  } else {
    m->peripheral->WriteNarrow(off, size, v);
  }
}

void M4Board::MapPeripheral(Peripheral& peripheral, const ClockGate* gate) {
  mappings_.push_back(std::make_unique<Mapping>(Mapping{this, &peripheral, gate}));
  Mapping* m = mappings_.back().get();
  const uc_err err =
      uc_mmio_map(uc_, peripheral.base(), peripheral.size(), MmioRead, m, MmioWrite, m);
  if (err != UC_ERR_OK) Fail("mapping " + peripheral.name() + ": " + UcError(err));
}

void M4Board::CreateEngine() {
  if (uc_ != nullptr) uc_close(uc_);
  uc_ = nullptr;
  mappings_.clear();
  block_sizes_.clear();
  // Unicorn 2.0.1 turns UC_MODE_MCLASS into a Cortex-M33 whatever model is asked for
  // (qemu/target/arm/cpu.c); plain Thumb mode with the model set takes the Cortex-M4.
  uc_err err = uc_open(UC_ARCH_ARM, UC_MODE_THUMB, &uc_);
  if (err == UC_ERR_OK) err = uc_ctl_set_cpu_model(uc_, UC_CPU_ARM_CORTEX_M4);
  if (err == UC_ERR_OK) err = uc_mem_map(uc_, kFlashBase, flash_size_, UC_PROT_READ | UC_PROT_EXEC);
  if (err == UC_ERR_OK) {
    err = uc_mem_map(uc_, kFlashAliasBase, flash_size_, UC_PROT_READ | UC_PROT_EXEC);
  }
  if (err == UC_ERR_OK) err = uc_mem_map(uc_, kSramBase, kSramSize, UC_PROT_ALL);
  if (err == UC_ERR_OK) err = uc_mem_map(uc_, kCcmBase, kCcmSize, UC_PROT_READ | UC_PROT_WRITE);
  if (err != UC_ERR_OK) {
    Fail("setting up the CPU emulator: " + UcError(err));
    return;
  }
  SyncFlash(0, flash_size_);
  uc_mem_write(uc_, kSramBase, sram_.data(), sram_.size());
  uc_mem_write(uc_, kCcmBase, ccm_.data(), ccm_.size());

  MapPeripheral(*flash_if_, nullptr);
  MapPeripheral(*rcc_, nullptr);
  MapPeripheral(*pwr_, &gates_[kGpioPorts + 3]);
  for (uint32_t i = 0; i < kGpioPorts; ++i)
    MapPeripheral(*gpio_[i], &gates_[i]);
  MapPeripheral(*usart1_, &gates_[kGpioPorts]);
  MapPeripheral(*usart3_, &gates_[kGpioPorts + 1]);
  MapPeripheral(*spi5_, &gates_[kGpioPorts + 2]);
  MapPeripheral(*iwdg_, nullptr);
  MapPeripheral(*scs_, nullptr);
  MapPeripheral(*dwt_, nullptr);
  static_assert(kOtpPage == kPeripheralBlock);
  Machine& machine = *this;
  otp_area_ = std::make_unique<OtpArea>(machine, flash_.otp, *flash_if_);
  MapPeripheral(*otp_area_, nullptr);

  uc_hook hook;
  uc_hook_add(uc_, &hook, UC_HOOK_BLOCK, reinterpret_cast<void*>(OnBlock), this, 1, 0);
  uc_hook_add(uc_, &hook, UC_HOOK_MEM_UNMAPPED | UC_HOOK_MEM_FETCH_PROT | UC_HOOK_MEM_READ_PROT,
              reinterpret_cast<void*>(OnUnmapped), this, 1, 0);
  uc_hook_add(uc_, &hook, UC_HOOK_MEM_WRITE_PROT, reinterpret_cast<void*>(OnFlashWrite), this,
              kFlashBase, kFlashBase + flash_size_ - 1);
  uc_hook_add(uc_, &hook, UC_HOOK_MEM_WRITE_PROT, reinterpret_cast<void*>(OnFlashWrite), this,
              kFlashAliasBase, kFlashAliasBase + flash_size_ - 1);
  uc_hook_add(uc_, &hook, UC_HOOK_INTR, reinterpret_cast<void*>(OnInterrupt), this, 1, 0);
}

void M4Board::ResetPeripherals(bool power_on) {
  flash_if_->Reset();
  rcc_->Reset();
  pwr_->Reset();
  for (auto& gpio : gpio_)
    gpio->Reset();
  spi5_->Reset();
  usart1_->Reset();
  usart3_->Reset();
  iwdg_->Reset();
  scs_->Reset();
  dwt_->Reset();
  // The W25Q128 is another chip: the MCU's reset does not reach it.
  if (power_on) chip_->Reset();
  deadline_dirty_ = true;
}

void M4Board::LoadVectors() {
  // BOOT0 = 0: the core fetches the initial SP and reset vector from the flash alias at 0.
  const uint32_t sp = ReadWord(kFlashAliasBase);
  const uint32_t reset = ReadWord(kFlashAliasBase + 4);
  uint32_t xpsr = 1u << 24;
  uc_reg_write(uc_, UC_ARM_REG_SP, &sp);
  uc_reg_write(uc_, UC_ARM_REG_XPSR, &xpsr);
  uc_reg_write(uc_, UC_ARM_REG_PC, &reset);
  if ((reset & 1u) == 0) Fail("reset vector " + Hex(reset) + " is not a Thumb address");
}

void M4Board::PowerOn() {
  std::fill(sram_.begin(), sram_.end(), 0);
  std::fill(ccm_.begin(), ccm_.end(), 0);
  instructions_ = 0;
  cycles_ = 0;
  time_ns_ = 0;
  host_seconds_ = 0;
  console_.clear();
  resets_.clear();
  fault_ = false;
  error_.clear();
  power_lost_ = false;
  reset_requested_ = false;
  ResetPeripherals(true);
  rcc_->NoteReset(ResetCause::kPowerOn);
  scs_->nvic().Reset();
  CreateEngine();
  LoadVectors();
  resets_.push_back({ResetCause::kPowerOn, 0, 0});
}

void M4Board::SystemReset(ResetCause cause) {
  // SRAM and CCM keep their contents through a system reset.
  uc_mem_read(uc_, kSramBase, sram_.data(), sram_.size());
  uc_mem_read(uc_, kCcmBase, ccm_.data(), ccm_.size());
  reset_requested_ = false;
  ResetPeripherals(false);
  rcc_->NoteReset(cause);
  CreateEngine();
  LoadVectors();
  resets_.push_back({cause, instructions_, now_ns()});
}

bool M4Board::DeliverException() {
  const bool primask = (Register(UC_ARM_REG_PRIMASK) & 1u) != 0;
  Nvic& nvic = scs_->nvic();
  if (nvic.NextToTake(false) != 0 &&
      (Register(UC_ARM_REG_BASEPRI) != 0 || Register(UC_ARM_REG_FAULTMASK) != 0)) {
    Fail("BASEPRI or FAULTMASK set with an exception pending: not modelled");
    return false;
  }
  const uint32_t number = nvic.NextToTake(primask);
  if (number == 0) return false;
  const uint32_t vector = ReadWord(scs_->vtor() + 4 * number);
  const bool nested = nvic.depth() > 0;
  nvic.Enter(number);
  const std::string error = EnterException(uc_, vector, nested);
  if (!error.empty()) {
    Fail("exception " + std::to_string(number) + ": " + error);
    return false;
  }
  AdvanceNs(static_cast<uint64_t>(kExceptionEntryCycles * ns_per_cycle_));
  return true;
}

RunResult M4Board::Run(const std::function<bool()>& until, const RunLimits& limits) {
  RunResult result;
  until_ = &until;
  until_met_ = false;
  const auto finish = [&](StopReason reason) {
    result.reason = reason;
    result.pc = fault_ ? error_pc_ : pc();
    if (reason == StopReason::kFault) {
      result.error = error_ + " (in the block at pc " + Hex(result.pc) + ")";
    }
    until_ = nullptr;
    return result;
  };
  for (;;) {
    if (fault_) return finish(StopReason::kFault);
    if (power_lost_) return finish(StopReason::kPowerLost);
    if (until_met_ || until()) return finish(StopReason::kCondition);
    RunDueEvents();
    if (reset_requested_) {
      SystemReset(reset_cause_);
      if (limits.stop_on_reset) return finish(StopReason::kReset);
      continue;
    }
    if (fault_) continue;
    DeliverException();
    if (instructions_ >= limits.max_instructions) return finish(StopReason::kInstructionLimit);
    if (now_ns() >= limits.max_emulated_ns) return finish(StopReason::kTimeLimit);

    deadline_ns_ = std::min(NextEventNs(), limits.max_emulated_ns);
    deadline_dirty_ = false;
    const uint32_t start_pc = pc();
    const auto started = std::chrono::steady_clock::now();
    // No instruction count: Unicorn counts with a per-instruction hook, which is slow; the
    // block hook counts and stops instead.
    max_instructions_ = limits.max_instructions;
    const uc_err err = uc_emu_start(uc_, start_pc | 1u, kNoExit, 0, 0);
    host_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (exc_return_) {
      exc_return_ = false;
      uint32_t number = 0;
      if (!scs_->nvic().Return(&number)) {
        Fail("exception return with no exception active");
        continue;
      }
      const std::string error =
          ReturnFromException(uc_, exc_return_value_, scs_->nvic().depth() > 0);
      if (!error.empty()) Fail("return from exception " + std::to_string(number) + ": " + error);
      continue;
    }
    if (fault_ || power_lost_ || reset_requested_ || until_met_) continue;
    if (err != UC_ERR_OK) {
      Fail("CPU emulator stopped: " + UcError(err));
      continue;
    }
    if (now_ns() >= deadline_ns_ || instructions_ >= limits.max_instructions) continue;
    // Otherwise the core executed WFI: it sleeps until the next event.
    const uint32_t now_pc = pc();
    uint16_t before = 0;
    uc_mem_read(uc_, now_pc - 2, &before, sizeof(before));
    if (before != 0xBF30) {
      Fail("the CPU emulator stopped for no reason the board knows");
      continue;
    }
    if (scs_->nvic().NextToTake(false) != 0) continue;  // an interrupt is already pending
    const uint64_t next = NextEventNs();
    if (next == Peripheral::kNever) {
      Fail("WFI with nothing that could wake the core (no timer, no interrupt, no input)");
      continue;
    }
    if (next > now_ns()) AdvanceNs(next - now_ns());
  }
}

}  // namespace ota::sim::m4
