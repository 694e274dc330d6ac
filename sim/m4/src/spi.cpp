#include "sim/m4/spi.hpp"

#include "sim/m4/memory_map.hpp"

namespace ota::sim::m4 {
namespace {

constexpr uint32_t kCr1 = 0x00;
constexpr uint32_t kCr2 = 0x04;
constexpr uint32_t kSr = 0x08;
constexpr uint32_t kDr = 0x0C;
constexpr uint32_t kCrcpr = 0x10;
constexpr uint32_t kI2scfgr = 0x1C;

constexpr uint32_t kCr1Cpha = 1u << 0;
constexpr uint32_t kCr1Cpol = 1u << 1;
constexpr uint32_t kCr1Mstr = 1u << 2;
constexpr uint32_t kCr1Spe = 1u << 6;
constexpr uint32_t kCr1Lsbfirst = 1u << 7;
constexpr uint32_t kCr1Dff = 1u << 11;
constexpr uint32_t kSrRxne = 1u << 0;
constexpr uint32_t kSrTxe = 1u << 1;
constexpr uint32_t kSrOvr = 1u << 6;
constexpr uint32_t kSrBsy = 1u << 7;

constexpr uint32_t kPinSck = 7;
constexpr uint32_t kPinMiso = 8;
constexpr uint32_t kPinMosi = 9;
constexpr uint32_t kAfSpi5 = 5;
constexpr uint64_t kChipReadMaxHz = 50'000'000;  // W25Q128JV fR, Read Data (03h)
constexpr uint64_t kSpi5MaxHz = 45'000'000;      // DS9405: SPI1/4/5/6 up to 45 Mbit/s

}  // namespace

Spi::Spi(Machine& machine, const Rcc& rcc, const Gpio& pins, W25q128Chip& chip)
    : Peripheral(machine, "SPI5", kSpi5Base, kPeripheralBlock),
      rcc_(rcc),
      pins_(pins),
      chip_(chip) {
  Reset();
}

void Spi::Reset() {
  cr1_ = 0;
  cr2_ = 0;
  sr_ = kSrTxe;
  rx_ = 0;
  shifting_ = false;
}

void Spi::Violation(const std::string& what) {
  violations_.push_back(what + " at pc " + Hex(machine_.pc()));
}

void Spi::Update() {
  if (shifting_ && machine_.now_ns() >= shift_end_ns_) {
    shifting_ = false;
    if ((sr_ & kSrRxne) != 0) {
      sr_ |= kSrOvr;  // the previous byte was never read: it is lost
      Violation("SPI5 overrun: a byte arrived before the previous one was read");
    } else {
      rx_ = shifting_rx_;
      sr_ |= kSrRxne;
    }
  }
}

void Spi::Send(uint8_t byte) {
  Update();
  if ((cr1_ & kCr1Spe) == 0) {
    Violation("SPI5 DR written with SPE clear: nothing is sent");
    return;
  }
  if ((cr1_ & kCr1Mstr) == 0) {
    Fail("slave mode is not modelled");
    return;
  }
  if ((cr1_ & kCr1Dff) != 0) {
    Fail("16-bit frames are not modelled");
    return;
  }
  if (shifting_) {
    Fail("DR written while a byte is still shifting: back-to-back frames are not modelled");
    return;
  }
  const bool cpol = (cr1_ & kCr1Cpol) != 0;
  const bool cpha = (cr1_ & kCr1Cpha) != 0;
  if (cpol != cpha) Violation("SPI mode 1 or 2: the W25Q128 takes modes 0 and 3 only");
  if ((cr1_ & kCr1Lsbfirst) != 0) Violation("LSB first: the W25Q128 expects MSB first");
  const uint32_t br = (cr1_ >> 3) & 7;
  const uint64_t sck_hz = rcc_.apb2_hz() >> (br + 1);
  if (sck_hz > kSpi5MaxHz) {
    Violation("SCK " + std::to_string(sck_hz) + " Hz above SPI5's 45 MHz");
  }
  bool wired = true;
  for (const uint32_t pin : {kPinSck, kPinMiso, kPinMosi}) {
    if (pins_.mode(pin) != Gpio::kModeAf || pins_.alternate(pin) != kAfSpi5) wired = false;
  }
  uint8_t answer = 0xFF;
  if (!wired) {
    Violation("PF7/PF8/PF9 are not all in AF5: the byte does not reach the W25Q128");
  } else {
    if (chip_.selected() && sck_hz > kChipReadMaxHz) {
      Violation("SCK " + std::to_string(sck_hz) + " Hz above the W25Q128's 50 MHz for reads");
    }
    answer = chip_.Transfer(byte);
  }
  ++bytes_;
  shifting_ = true;
  shifting_rx_ = answer;
  shift_end_ns_ = machine_.now_ns() + (8 * 1'000'000'000ull + sck_hz - 1) / sck_hz;
}

uint8_t Spi::ReceiveDr() {
  Update();
  sr_ &= ~kSrRxne;
  return rx_;
}

void Spi::ChipSelect(bool level) {
  Update();
  const bool mid_byte = shifting_ && level;
  if (mid_byte) {
    Violation("W25Q128 chip select raised while SPI5 was still shifting a byte");
  }
  if (level) {
    // The byte being shifted never reached its eighth bit: the chip does not execute a
    // program, erase or write enable ended that way (W25Q128JV datasheet 8.2.x).
    chip_.Deselect(/*byte_complete=*/!mid_byte);
  } else {
    chip_.Select();
  }
}

uint32_t Spi::Read(uint32_t offset) {
  Update();
  switch (offset) {
    case kCr1:
      return cr1_;
    case kCr2:
      return cr2_;
    case kSr:
      return sr_ | (shifting_ ? kSrBsy : 0);
    case kDr:
      return ReceiveDr();
    case kCrcpr:
      return 7;
    case kI2scfgr:
      return 0;
    default:
      return Unmodelled(offset, 4, false);
  }
}

void Spi::Write(uint32_t offset, uint32_t value) {
  Update();
  switch (offset) {
    case kCr1:
      cr1_ = value & 0xFFFFu;
      return;
    case kCr2:
      cr2_ = value & 0xF7u;
      if (cr2_ != 0) Fail("SPI5 CR2 (DMA, interrupts, NSS output) is not modelled");
      return;
    case kSr:
      return;  // OVR is cleared by reading DR then SR; CRCERR is not modelled
    case kDr:
      Send(static_cast<uint8_t>(value));  // 8-bit frames: the low byte (no FIFO on the F4)
      return;
    default:
      Unmodelled(offset, 4, true, value);
  }
}

uint32_t Spi::ReadNarrow(uint32_t offset, unsigned size) {
  if (offset == kDr) return ReceiveDr();
  if (offset == kSr) return Read(kSr);
  return Unmodelled(offset, size, false);
}

void Spi::WriteNarrow(uint32_t offset, unsigned size, uint32_t value) {
  if (offset == kDr) {
    Send(static_cast<uint8_t>(value));
    return;
  }
  Unmodelled(offset, size, true, value);
}

}  // namespace ota::sim::m4
