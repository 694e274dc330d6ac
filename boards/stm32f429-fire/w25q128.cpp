#include "w25q128.hpp"

#include "clock.hpp"
#include "ota/profile.hpp"
#include "stm32f4_regs.hpp"

namespace fire {
namespace {

using namespace reg;  // NOLINT: register names read better unqualified here

// Instructions, W25Q128JV datasheet section 8.1.2.
constexpr uint8_t kCmdWriteEnable = 0x06;
constexpr uint8_t kCmdReadStatus1 = 0x05;
constexpr uint8_t kCmdReadData = 0x03;
constexpr uint8_t kCmdPageProgram = 0x02;
constexpr uint8_t kCmdSectorErase4K = 0x20;
constexpr uint8_t kCmdBlockErase32K = 0x52;
constexpr uint8_t kCmdBlockErase64K = 0xD8;
constexpr uint8_t kCmdReleasePowerDown = 0xAB;
constexpr uint8_t kCmdJedecId = 0x9F;
constexpr uint32_t kJedecId = 0xEF4018;  // Winbond, W25Q (SPI), 128 Mbit
constexpr uint8_t kStatusBusy = 0x01;
constexpr uint8_t kStatusWel = 0x02;

// Maximum times, datasheet section 9.6 (AC characteristics), with margin.
constexpr uint32_t kPageProgramTimeoutMs = 5;    // tPP max 3 ms
constexpr uint32_t kSectorEraseTimeoutMs = 500;  // tSE max 400 ms
constexpr uint32_t kBlock32TimeoutMs = 2000;     // tBE1 max 1.6 s
constexpr uint32_t kBlock64TimeoutMs = 2500;     // tBE2 max 2 s
constexpr uint32_t kByteTimeoutMs = 1;           // one SPI byte is 0.36 us at 22.5 MHz

constexpr uint32_t kPinCs = 6;
constexpr uint32_t kPinSck = 7;
constexpr uint32_t kPinMiso = 8;
constexpr uint32_t kPinMosi = 9;
constexpr uint32_t kAfSpi5 = 5;  // PF7/8/9 AF5: datasheet DS9405 table 12

void SetPinMode(Gpio& gpio, uint32_t pin, uint32_t mode) {
  gpio.MODER = (gpio.MODER & ~(3u << (pin * 2))) | (mode << (pin * 2));
  gpio.OSPEEDR = (gpio.OSPEEDR & ~(3u << (pin * 2))) | (kGpioSpeedHigh << (pin * 2));
  if (mode == kGpioModeAf) {
    const uint32_t shift = (pin % 8) * 4;
    gpio.AFR[pin / 8] = (gpio.AFR[pin / 8] & ~(0xFu << shift)) | (kAfSpi5 << shift);
  }
}

// One command with chip select held low from construction to destruction. A stuck SPI
// (no clock) ends the transfer with an error instead of hanging.
class Transaction {
 public:
  Transaction() { GPIOF().BSRR = 1u << (kPinCs + 16); }
  ~Transaction() {
    Spi& spi = SPI5();
    (void)WaitWhile([&] { return (spi.SR & kSpiSrBsy) != 0; }, kByteTimeoutMs);
    GPIOF().BSRR = 1u << kPinCs;
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  uint8_t Transfer(uint8_t out) {
    Spi& spi = SPI5();
    if (failed_) return 0xFF;
    // 8-bit access to DR, so the SPI sends one byte (RM0090 28.3.5).
    volatile uint8_t* dr = reinterpret_cast<volatile uint8_t*>(&spi.DR);
    if (!WaitWhile([&] { return (spi.SR & kSpiSrTxe) == 0; }, kByteTimeoutMs)) failed_ = true;
    if (failed_) return 0xFF;
    *dr = out;
    if (!WaitWhile([&] { return (spi.SR & kSpiSrRxne) == 0; }, kByteTimeoutMs)) failed_ = true;
    return failed_ ? 0xFF : *dr;
  }
  void Command(uint8_t cmd, uint32_t addr) {
    Transfer(cmd);
    Transfer(static_cast<uint8_t>(addr >> 16));
    Transfer(static_cast<uint8_t>(addr >> 8));
    Transfer(static_cast<uint8_t>(addr));
  }
  ota::Status status() const { return failed_ ? ota::StatusCode::kIoError : ota::StatusCode::kOk; }

 private:
  bool failed_ = false;
};

uint8_t ReadStatus1(bool* failed) {
  Transaction t;
  t.Transfer(kCmdReadStatus1);
  const uint8_t sr = t.Transfer(0xFF);
  *failed = !t.status().ok();
  return sr;
}

}  // namespace

W25q128::W25q128() : ota::Flash(ota::kStm32f429Fire.external) {}

ota::Status W25q128::Init() {
  ready_ = false;
  Rcc& rcc = RCC();
  rcc.AHB1ENR |= kRccAhb1GpioF;
  rcc.APB2ENR |= kRccApb2Spi5;
  (void)rcc.APB2ENR;  // read back: clocks are on before the peripherals are written

  Gpio& gpio = GPIOF();
  gpio.BSRR = 1u << kPinCs;  // deselected before the pin becomes an output
  SetPinMode(gpio, kPinCs, kGpioModeOutput);
  SetPinMode(gpio, kPinSck, kGpioModeAf);
  SetPinMode(gpio, kPinMiso, kGpioModeAf);
  SetPinMode(gpio, kPinMosi, kGpioModeAf);

  // Master, mode 0, 8-bit, MSB first, software NSS held high, fPCLK2 / 4 (BR = 001).
  Spi& spi = SPI5();
  spi.CR1 = 0;
  spi.CR2 = 0;
  spi.CR1 = kSpiCr1Mstr | (1u << kSpiCr1BrShift) | kSpiCr1Ssm | kSpiCr1Ssi;
  spi.CR1 |= kSpiCr1Spe;

  {
    // The app may have left the chip in power-down.
    Transaction t;
    t.Transfer(kCmdReleasePowerDown);
    OTA_TRY(t.status());
  }
  // tRES1 is 3 us: wait at least 1 ms, bounded even if SysTick does not run.
  (void)WaitWhile([] { return true; }, 1);

  Transaction t;
  t.Transfer(kCmdJedecId);
  uint32_t id = 0;
  for (int i = 0; i < 3; ++i)
    id = (id << 8) | t.Transfer(0xFF);
  OTA_TRY(t.status());
  jedec_id_ = id;
  if (id != kJedecId) return ota::StatusCode::kNotFound;
  ready_ = true;
  return ota::Status::Ok();
}

ota::Status W25q128::DoRead(uint32_t addr, ota::ByteSpan out) {
  if (!ready_) return ota::StatusCode::kFailedPrecondition;
  Transaction t;
  t.Command(kCmdReadData, addr);
  for (uint8_t& b : out)
    b = t.Transfer(0xFF);
  return t.status();
}

ota::Status W25q128::WriteEnable() {
  {
    Transaction t;
    t.Transfer(kCmdWriteEnable);
    OTA_TRY(t.status());
  }
  // WEL stays 0 if the chip ignores the command (e.g. /WP with protection bits set).
  bool failed = false;
  const uint8_t sr = ReadStatus1(&failed);
  return !failed && (sr & kStatusWel) != 0 ? ota::StatusCode::kOk : ota::StatusCode::kIoError;
}

ota::Status W25q128::WaitReady(uint32_t timeout_ms) {
  bool failed = false;
  const bool ready =
      WaitWhile([&] { return !failed && (ReadStatus1(&failed) & kStatusBusy) != 0; }, timeout_ms);
  return ready && !failed ? ota::StatusCode::kOk : ota::StatusCode::kIoError;
}

ota::Status W25q128::DoProgram(uint32_t addr, ota::ConstByteSpan data) {
  if (!ready_) return ota::StatusCode::kFailedPrecondition;
  // Programming only clears bits: refuse 0 -> 1 like the emulator, before writing anything.
  uint8_t current[32];
  for (size_t done = 0; done < data.size(); done += sizeof(current)) {
    const ota::ByteSpan chunk = ota::ByteSpan(current).first(data.size() - done);
    OTA_TRY(DoRead(addr + static_cast<uint32_t>(done), chunk));
    for (size_t i = 0; i < chunk.size(); ++i) {
      if ((chunk[i] & data[done + i]) != data[done + i]) return ota::StatusCode::kNotErased;
    }
  }
  // One page program: the base class guarantees <= 256 bytes and no page crossing.
  OTA_TRY(WriteEnable());
  {
    Transaction t;
    t.Command(kCmdPageProgram, addr);
    for (const uint8_t b : data)
      t.Transfer(b);
    OTA_TRY(t.status());
  }
  return WaitReady(kPageProgramTimeoutMs);
}

ota::Status W25q128::DoErase(uint32_t addr, uint32_t len) {
  if (!ready_) return ota::StatusCode::kFailedPrecondition;
  const uint32_t end = addr + len;
  for (uint32_t pos = addr; pos < end;) {
    // The emulator's rule: the largest command (64 KB, 32 KB block or 4 KB sector) aligned at
    // `pos` that fits.
    const uint32_t size = geometry().EraseCommandSize(pos, end - pos);
    uint8_t cmd = kCmdSectorErase4K;
    uint32_t timeout_ms = kSectorEraseTimeoutMs;
    if (size == 64 * 1024) {
      cmd = kCmdBlockErase64K;
      timeout_ms = kBlock64TimeoutMs;
    } else if (size == 32 * 1024) {
      cmd = kCmdBlockErase32K;
      timeout_ms = kBlock32TimeoutMs;
    } else if (size != 4 * 1024) {
      return ota::StatusCode::kUnsupported;  // a geometry this chip has no command for
    }
    OTA_TRY(WriteEnable());
    {
      Transaction t;
      t.Command(cmd, pos);
      OTA_TRY(t.status());
    }
    OTA_TRY(WaitReady(timeout_ms));
    pos += size;
  }
  return ota::Status::Ok();
}

}  // namespace fire
