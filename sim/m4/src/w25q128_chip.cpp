#include "sim/m4/w25q128_chip.hpp"

#include <cstring>

#include "sim/flash_timing.hpp"

namespace ota::sim::m4 {
namespace {

constexpr uint8_t kWriteEnable = 0x06;
constexpr uint8_t kWriteDisable = 0x04;
constexpr uint8_t kReadStatus1 = 0x05;
constexpr uint8_t kReadStatus2 = 0x35;
constexpr uint8_t kReadStatus3 = 0x15;
constexpr uint8_t kJedecIdCmd = 0x9F;
constexpr uint8_t kRead = 0x03;
constexpr uint8_t kFastRead = 0x0B;
constexpr uint8_t kPageProgram = 0x02;
constexpr uint8_t kSectorErase = 0x20;
constexpr uint8_t kBlockErase32 = 0x52;
constexpr uint8_t kBlockErase64 = 0xD8;
constexpr uint8_t kPowerDown = 0xB9;
constexpr uint8_t kReleasePowerDown = 0xAB;

// The commands the chip executes when chip select rises (datasheet 8.2.x): they change its
// state, so they need the whole last byte latched first.
bool ExecutesOnDeselect(uint8_t op) {
  switch (op) {
    case kWriteEnable:
    case kWriteDisable:
    case kPageProgram:
    case kSectorErase:
    case kBlockErase32:
    case kBlockErase64:
    case kPowerDown:
    case kReleasePowerDown:
      return true;
    default:
      return false;
  }
}

bool IsStatusRead(uint8_t op) {
  return op == kReadStatus1 || op == kReadStatus2 || op == kReadStatus3;
}

std::string OpcodeText(uint8_t op) {
  char text[8];
  std::snprintf(text, sizeof(text), "0x%02X", op);
  return text;
}

}  // namespace

W25q128Chip::W25q128Chip(Machine& machine, EmulatedFlash& flash)
    : machine_(machine), flash_(flash) {
  Reset();
}

void W25q128Chip::Reset() {
  selected_ = false;
  wel_ = false;
  busy_ = false;
  powered_down_ = false;
  busy_until_ns_ = 0;
  byte_index_ = 0;
}

void W25q128Chip::Update() {
  if (busy_ && machine_.now_ns() >= busy_until_ns_) {
    busy_ = false;
    wel_ = false;  // cleared when a program or erase completes (datasheet 8.1.2)
  }
}

uint8_t W25q128Chip::status1() {
  Update();
  return static_cast<uint8_t>((busy_ ? kStatusBusy : 0) | (wel_ ? kStatusWel : 0));
}

std::vector<std::string> W25q128Chip::Violations() const {
  std::vector<std::string> out;
  for (const W25qCommand& c : commands_) {
    if (!c.note.empty())
      out.push_back(OpcodeText(c.opcode) + ": " + c.note + " at pc " + Hex(c.pc));
  }
  return out;
}

void W25q128Chip::Select() {
  if (selected_) return;
  Update();
  selected_ = true;
  current_ = W25qCommand{};
  current_.wel_before = wel_;
  current_.busy_before = busy_;
  byte_index_ = 0;
  page_pos_ = 0;
  std::memset(page_, 0xFF, sizeof(page_));
  std::memset(page_touched_, 0, sizeof(page_touched_));
}

uint32_t W25q128Chip::AddressBytes(uint8_t opcode) const {
  switch (opcode) {
    case kRead:
    case kFastRead:
    case kPageProgram:
    case kSectorErase:
    case kBlockErase32:
    case kBlockErase64:
      return 3;
    default:
      return 0;
  }
}

uint8_t W25q128Chip::Transfer(uint8_t in) {
  if (!selected_) return 0xFF;  // MISO not driven
  Update();
  const uint32_t index = byte_index_++;
  if (index == 0) {
    current_.opcode = in;
    switch (in) {
      case kWriteEnable:
      case kWriteDisable:
      case kReadStatus1:
      case kReadStatus2:
      case kReadStatus3:
      case kJedecIdCmd:
      case kRead:
      case kFastRead:
      case kPageProgram:
      case kSectorErase:
      case kBlockErase32:
      case kBlockErase64:
      case kPowerDown:
      case kReleasePowerDown:
        break;
      default:
        machine_.Fail("W25Q128: opcode " + OpcodeText(in) + " is not modelled");
    }
    return 0xFF;
  }
  const uint8_t op = current_.opcode;
  const uint32_t address_bytes = AddressBytes(op);
  if (index <= address_bytes) {
    current_.address = (current_.address << 8) | in;
    if (index == address_bytes) page_pos_ = current_.address % kPageSize;
    return 0xFF;
  }
  // Ignored commands still clock: the chip just does not drive MISO.
  if (powered_down_ && op != kReleasePowerDown) return 0xFF;
  if (busy_ && !IsStatusRead(op)) return 0xFF;
  const uint32_t dummy = op == kFastRead ? 1 : 0;
  if (index <= address_bytes + dummy) return 0xFF;
  const uint32_t data_index = index - address_bytes - dummy - 1;
  ++current_.data_bytes;
  switch (op) {
    case kReadStatus1: {
      const uint8_t status = status1();
      if (busy_ && fast_busy_wait_) {
        waited_ns_ += busy_until_ns_ - machine_.now_ns();
        machine_.Stall(busy_until_ns_ - machine_.now_ns());
      }
      return status;
    }
    case kReadStatus2:
    case kReadStatus3:
      return 0x00;
    case kJedecIdCmd:
      return static_cast<uint8_t>(data_index < 3 ? kJedecId >> (8 * (2 - data_index)) : 0xFFu);
    case kRead:
    case kFastRead: {
      const uint32_t a = (current_.address + data_index) % flash_.size();
      return flash_.raw()[a];
    }
    case kPageProgram:
      page_[page_pos_] = in;
      page_touched_[page_pos_] = true;
      page_pos_ = (page_pos_ + 1) % kPageSize;
      return 0xFF;
    default:
      return 0xFF;
  }
}

void W25q128Chip::Ignore(const std::string& why) {
  current_.executed = false;
  current_.note = why;
}

void W25q128Chip::Deselect(bool byte_complete) {
  if (!selected_) return;
  selected_ = false;
  Update();
  current_.cycle = machine_.cycles();
  current_.pc = machine_.pc();
  if (!byte_complete && ExecutesOnDeselect(current_.opcode)) {
    // Datasheet 8.2.5 (write enable), 8.2.13 (page program), 8.2.15-17 (erases), 8.2.19
    // (power-down): "/CS must be driven high after the eighth bit of the last byte has been
    // latched. If this is not done the ... instruction will not be executed."
    Ignore("chip select raised in the middle of a byte (before its eighth bit): not executed");
  } else if (byte_index_ > 0) {
    Execute();
  }
  commands_.push_back(current_);
}

void W25q128Chip::Execute() {
  const uint8_t op = current_.opcode;
  if (powered_down_ && op != kReleasePowerDown) {
    Ignore("sent while the chip is powered down (B9): ignored");
    return;
  }
  if (busy_ && !IsStatusRead(op)) {
    Ignore("sent while BUSY: ignored (only status reads are accepted, datasheet 8.1.1)");
    return;
  }
  const uint32_t address_bytes = AddressBytes(op);
  if (byte_index_ < 1 + address_bytes) {
    // Datasheet 8.2.13, 8.2.15-17: the address is 24 bits; an incomplete one is not executed.
    Ignore("chip select raised before the whole address was sent: ignored");
    return;
  }
  switch (op) {
    case kWriteEnable:
      wel_ = true;
      break;
    case kWriteDisable:
      wel_ = false;
      break;
    case kPowerDown:
      powered_down_ = true;
      break;
    case kReleasePowerDown:
      powered_down_ = false;
      break;
    case kPageProgram:
      if (!wel_) {
        Ignore("page program without write enable (WEL clear): ignored (datasheet 8.2.13)");
        return;
      }
      Program();
      break;
    case kSectorErase:
    case kBlockErase32:
    case kBlockErase64:
      if (!wel_) {
        Ignore("erase without write enable (WEL clear): ignored (datasheet 8.2.15-17)");
        return;
      }
      Erase(op == kSectorErase ? 4096 : op == kBlockErase32 ? 32 * 1024 : 64 * 1024);
      break;
    default:
      break;
  }
}

void W25q128Chip::Program() {
  if (current_.data_bytes == 0) {
    Ignore("page program with no data byte");
    return;
  }
  const uint32_t page_base = current_.address - current_.address % kPageSize;
  const uint32_t start = current_.address % kPageSize;
  if (current_.data_bytes > kPageSize - start) {
    current_.note = "page program of " + std::to_string(current_.data_bytes) + " bytes at " +
                    Hex(current_.address) +
                    " runs past the page end: the address wrapped to the page start";
  }
  // Datasheet 8.2.13: page program writes previously erased (FFh) locations; programming
  // only clears bits, so a 1 over a 0 leaves the 0, and the chip reports nothing (its status
  // registers have no error bit). Recorded: a driver that relies on it is wrong.
  // The cells get the AND (the emulated flash, stricter for the host ports, would refuse).
  bool reported = false;
  for (uint32_t i = 0; i < kPageSize; ++i) {
    const uint8_t old = flash_.raw()[page_base + i];
    if (!page_touched_[i] || (old & page_[i]) == page_[i]) continue;
    if (!reported) {
      if (!current_.note.empty()) current_.note += "; ";
      current_.note += "byte " + Hex(page_base + i) + " programmed over " + Hex(old) +
                       " (not erased): a 1 programmed over a 0 stays 0";
      reported = true;
    }
    page_[i] &= old;
  }
  // Program the touched runs of the page buffer, at most two (before and after a wrap).
  Status status;
  for (uint32_t i = 0; i < kPageSize && status.ok();) {
    if (!page_touched_[i]) {
      ++i;
      continue;
    }
    uint32_t end = i;
    while (end < kPageSize && page_touched_[end])
      ++end;
    status = flash_.Program(page_base + i, ConstByteSpan(page_ + i, end - i));
    i = end;
  }
  if (status.code() == StatusCode::kPowerLost) {
    machine_.PowerLost();
    return;
  }
  if (!status.ok()) {
    machine_.Fail("W25Q128: page program at " + Hex(current_.address) +
                  " refused by the flash model (" + status.name() + ")");
    return;
  }
  busy_ = true;
  busy_until_ns_ = machine_.now_ns() + ProgramUs(kW25q128Timing, timing_) * 1000;
}

void W25q128Chip::Erase(uint32_t size) {
  const uint32_t base = current_.address - current_.address % size;  // address bits ignored
  const Status status = flash_.Erase(base, size);
  if (status.code() == StatusCode::kPowerLost) {
    machine_.PowerLost();
    return;
  }
  if (!status.ok()) {
    machine_.Fail("W25Q128: erase of " + std::to_string(size) + " bytes at " + Hex(base) +
                  " refused by the flash model (" + status.name() + ")");
    return;
  }
  busy_ = true;
  busy_until_ns_ = machine_.now_ns() + EraseUs(kW25q128Timing, size, timing_) * 1000;
}

}  // namespace ota::sim::m4
