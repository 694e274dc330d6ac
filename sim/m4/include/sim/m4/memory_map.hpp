// The STM32F429's memory map as the emulated board lays it out (RM0090 section 2.3, table 1
// "STM32F4xx register boundary addresses"; PM0214 section 4 for the Cortex-M4 core
// peripherals). Everything the firmware may touch has an address here; an access anywhere
// else stops the run (docs/m4-board.md).
#pragma once

#include <cstdint>

namespace ota::sim::m4 {

// Main flash, and its alias at 0 (BOOT0 = 0: boot from main flash, RM0090 2.4). The size is
// the profile's internal flash (1 MB on the FIRE board's STM32F429IGT6).
inline constexpr uint32_t kFlashBase = 0x08000000;
inline constexpr uint32_t kFlashAliasBase = 0x00000000;
// SRAM1 (112 KB) + SRAM2 (16 KB) + SRAM3 (64 KB): contiguous from 0x20000000 (RM0090 2.3.1).
inline constexpr uint32_t kSramBase = 0x20000000;
inline constexpr uint32_t kSramSize = 192 * 1024;
// Core-coupled memory: data only (on the D-bus), never executable.
inline constexpr uint32_t kCcmBase = 0x10000000;
inline constexpr uint32_t kCcmSize = 64 * 1024;
// The OTP area: 16 blocks of 32 bytes, then 16 lock bytes (RM0090 3.7), mapped as one 1 KB
// page of which only the first kOtpSize bytes exist.
inline constexpr uint32_t kOtpBase = 0x1FFF7800;
inline constexpr uint32_t kOtpPage = 0x400;

// Peripherals: one 1 KB block each.
inline constexpr uint32_t kPeripheralBlock = 0x400;
inline constexpr uint32_t kIwdgBase = 0x40003000;
inline constexpr uint32_t kUsart3Base = 0x40004800;
inline constexpr uint32_t kPwrBase = 0x40007000;
inline constexpr uint32_t kUsart1Base = 0x40011000;
inline constexpr uint32_t kSpi5Base = 0x40015000;
inline constexpr uint32_t kGpioBase = 0x40020000;  // GPIOA; GPIOB..GPIOK follow, 0x400 apart
inline constexpr uint32_t kGpioPorts = 11;
inline constexpr uint32_t kRccBase = 0x40023800;
inline constexpr uint32_t kFlashIfBase = 0x40023C00;

// Cortex-M4 private peripherals.
inline constexpr uint32_t kDwtBase = 0xE0001000;  // DWT (CTRL, CYCCNT): one 4 KB page
inline constexpr uint32_t kScsBase = 0xE000E000;  // SysTick, NVIC, SCB, CPACR: one 4 KB page
inline constexpr uint32_t kScsSize = 0x1000;

// Clocks of the FIRE board: the STM32F4's internal RC and the board's 25 MHz crystal.
inline constexpr uint32_t kHsiHz = 16'000'000;
inline constexpr uint32_t kHseHz = 25'000'000;
// The LSI RC that clocks the IWDG: 32 kHz typical (DS9405 table 42: 17-47 kHz).
inline constexpr uint32_t kLsiHz = 32'000;

}  // namespace ota::sim::m4
