// The few STM32F429 and Cortex-M4 registers the board port touches, written from RM0090
// (Rev 19) and the Cortex-M4 programming manual PM0214. No vendor HAL: each block lists only
// the registers used, at their documented offsets.
#pragma once

#include <cstdint>

namespace fire::reg {

// RCC, RM0090 section 6.3 (register map 6.3.27).
struct Rcc {
  volatile uint32_t CR;        // 0x00
  volatile uint32_t PLLCFGR;   // 0x04
  volatile uint32_t CFGR;      // 0x08
  volatile uint32_t CIR;       // 0x0C
  volatile uint32_t AHB1RSTR;  // 0x10
  volatile uint32_t AHB2RSTR;  // 0x14
  volatile uint32_t AHB3RSTR;  // 0x18
  uint32_t reserved0;          // 0x1C
  volatile uint32_t APB1RSTR;  // 0x20
  volatile uint32_t APB2RSTR;  // 0x24
  uint32_t reserved1[2];       // 0x28
  volatile uint32_t AHB1ENR;   // 0x30
  volatile uint32_t AHB2ENR;   // 0x34
  volatile uint32_t AHB3ENR;   // 0x38
  uint32_t reserved2;          // 0x3C
  volatile uint32_t APB1ENR;   // 0x40
  volatile uint32_t APB2ENR;   // 0x44
};
inline Rcc& RCC() {
  return *reinterpret_cast<Rcc*>(0x40023800u);
}
inline constexpr uint32_t kRccCrHseOn = 1u << 16;
inline constexpr uint32_t kRccCrHseRdy = 1u << 17;
inline constexpr uint32_t kRccCrPllOn = 1u << 24;
inline constexpr uint32_t kRccCrPllRdy = 1u << 25;
inline constexpr uint32_t kRccPllcfgrSrcHse = 1u << 22;
inline constexpr uint32_t kRccCfgrSwMask = 3u << 0;
inline constexpr uint32_t kRccCfgrSwPll = 2u << 0;
inline constexpr uint32_t kRccCfgrSwsMask = 3u << 2;
inline constexpr uint32_t kRccCfgrSwsPll = 2u << 2;
inline constexpr uint32_t kRccAhb1GpioA = 1u << 0;
inline constexpr uint32_t kRccAhb1GpioF = 1u << 5;
inline constexpr uint32_t kRccApb1Usart2 = 1u << 17;
inline constexpr uint32_t kRccApb1Usart3 = 1u << 18;
inline constexpr uint32_t kRccApb1Pwr = 1u << 28;
inline constexpr uint32_t kRccApb2Usart1 = 1u << 4;
inline constexpr uint32_t kRccApb2Usart6 = 1u << 5;
inline constexpr uint32_t kRccApb2Spi5 = 1u << 20;

// PWR, RM0090 section 5.4 (CR 5.4.1, CSR 5.4.2); over-drive sequence in 5.1.4.
struct Pwr {
  volatile uint32_t CR;   // 0x00
  volatile uint32_t CSR;  // 0x04
};
inline Pwr& PWR() {
  return *reinterpret_cast<Pwr*>(0x40007000u);
}
inline constexpr uint32_t kPwrCrVosScale1 = 3u << 14;
inline constexpr uint32_t kPwrCrOdEn = 1u << 16;
inline constexpr uint32_t kPwrCrOdSwEn = 1u << 17;
inline constexpr uint32_t kPwrCsrOdRdy = 1u << 16;
inline constexpr uint32_t kPwrCsrOdSwRdy = 1u << 17;

// Flash interface, RM0090 section 3.9 (ACR 3.9.1, KEYR 3.9.2, SR 3.9.4, CR 3.9.5 for
// STM32F42xxx/43xxx: 5-bit SNB at bits 7:3; OPTCR and OPTCR1 for STM32F42xxx/43xxx).
struct FlashIf {
  volatile uint32_t ACR;      // 0x00
  volatile uint32_t KEYR;     // 0x04
  volatile uint32_t OPTKEYR;  // 0x08
  volatile uint32_t SR;       // 0x0C
  volatile uint32_t CR;       // 0x10
  volatile uint32_t OPTCR;    // 0x14
  volatile uint32_t OPTCR1;   // 0x18: bank 2's nWRP, never written here
};
inline FlashIf& FLASH() {
  return *reinterpret_cast<FlashIf*>(0x40023C00u);
}
inline constexpr uint32_t kFlashKey1 = 0x45670123u;  // RM0090 3.5.1, unlocking the FLASH_CR
inline constexpr uint32_t kFlashKey2 = 0xCDEF89ABu;
inline constexpr uint32_t kFlashOptKey1 = 0x08192A3Bu;  // RM0090 "Programming user option bytes"
inline constexpr uint32_t kFlashOptKey2 = 0x4C5D6E7Fu;
inline constexpr uint32_t kFlashOptcrOptlock = 1u << 0;
inline constexpr uint32_t kFlashOptcrOptstrt = 1u << 1;
inline constexpr uint32_t kFlashAcrLatencyMask = 0xFu;
inline constexpr uint32_t kFlashAcrPrften = 1u << 8;
inline constexpr uint32_t kFlashAcrIcen = 1u << 9;
inline constexpr uint32_t kFlashAcrDcen = 1u << 10;
inline constexpr uint32_t kFlashAcrIcrst = 1u << 11;
inline constexpr uint32_t kFlashAcrDcrst = 1u << 12;
inline constexpr uint32_t kFlashSrEop = 1u << 0;
inline constexpr uint32_t kFlashSrOperr = 1u << 1;
inline constexpr uint32_t kFlashSrWrperr = 1u << 4;
inline constexpr uint32_t kFlashSrPgaerr = 1u << 5;
inline constexpr uint32_t kFlashSrPgperr = 1u << 6;
inline constexpr uint32_t kFlashSrPgserr = 1u << 7;
inline constexpr uint32_t kFlashSrRderr = 1u << 8;
inline constexpr uint32_t kFlashSrBsy = 1u << 16;
inline constexpr uint32_t kFlashSrErrors = kFlashSrOperr | kFlashSrWrperr | kFlashSrPgaerr |
                                           kFlashSrPgperr | kFlashSrPgserr | kFlashSrRderr;
inline constexpr uint32_t kFlashCrPg = 1u << 0;
inline constexpr uint32_t kFlashCrSer = 1u << 1;
inline constexpr uint32_t kFlashCrSnbShift = 3;
inline constexpr uint32_t kFlashCrSnbMask = 0x1Fu << kFlashCrSnbShift;
inline constexpr uint32_t kFlashCrPsizeX32 = 2u << 8;
inline constexpr uint32_t kFlashCrStrt = 1u << 16;
inline constexpr uint32_t kFlashCrLock = 1u << 31;

// GPIO, RM0090 section 8.4 (register map 8.4.11).
struct Gpio {
  volatile uint32_t MODER;    // 0x00
  volatile uint32_t OTYPER;   // 0x04
  volatile uint32_t OSPEEDR;  // 0x08
  volatile uint32_t PUPDR;    // 0x0C
  volatile uint32_t IDR;      // 0x10
  volatile uint32_t ODR;      // 0x14
  volatile uint32_t BSRR;     // 0x18
  volatile uint32_t LCKR;     // 0x1C
  volatile uint32_t AFR[2];   // 0x20 AFRL, 0x24 AFRH
};
inline Gpio& GPIOA() {
  return *reinterpret_cast<Gpio*>(0x40020000u);
}
inline Gpio& GPIOF() {
  return *reinterpret_cast<Gpio*>(0x40021400u);
}
// GPIOA..GPIOK by index (0 = A): 0x400 apart from 0x40020000 (RM0090 table 1), and their
// clock enables are RCC_AHB1ENR bits 0..10 in the same order (RM0090 6.3.10).
inline Gpio& GPIO(uint32_t index) {
  return *reinterpret_cast<Gpio*>(0x40020000u + 0x400u * index);
}
inline constexpr uint32_t kGpioModeOutput = 1;
inline constexpr uint32_t kGpioModeAf = 2;
inline constexpr uint32_t kGpioSpeedHigh = 2;
inline constexpr uint32_t kGpioPullUp = 1;

// SPI, RM0090 section 28.5 (register map 28.5.10).
struct Spi {
  volatile uint32_t CR1;  // 0x00
  volatile uint32_t CR2;  // 0x04
  volatile uint32_t SR;   // 0x08
  volatile uint32_t DR;   // 0x0C
};
inline Spi& SPI5() {
  return *reinterpret_cast<Spi*>(0x40015000u);
}
inline constexpr uint32_t kSpiCr1Mstr = 1u << 2;
inline constexpr uint32_t kSpiCr1BrShift = 3;
inline constexpr uint32_t kSpiCr1Spe = 1u << 6;
inline constexpr uint32_t kSpiCr1Ssi = 1u << 8;
inline constexpr uint32_t kSpiCr1Ssm = 1u << 9;
inline constexpr uint32_t kSpiSrRxne = 1u << 0;
inline constexpr uint32_t kSpiSrTxe = 1u << 1;
inline constexpr uint32_t kSpiSrBsy = 1u << 7;

// USART, RM0090 section 30.6 (register map 30.6.8).
struct Usart {
  volatile uint32_t SR;   // 0x00
  volatile uint32_t DR;   // 0x04
  volatile uint32_t BRR;  // 0x08
  volatile uint32_t CR1;  // 0x0C
  volatile uint32_t CR2;  // 0x10
  volatile uint32_t CR3;  // 0x14
};
// Base addresses: RM0090 table 1.
inline constexpr uint32_t kUsart1Base = 0x40011000u;
inline constexpr uint32_t kUsart2Base = 0x40004400u;
inline constexpr uint32_t kUsart3Base = 0x40004800u;
inline constexpr uint32_t kUsart6Base = 0x40011400u;
inline Usart& USART1() {
  return *reinterpret_cast<Usart*>(kUsart1Base);
}
inline Usart& USART(uint32_t base) {
  return *reinterpret_cast<Usart*>(base);
}
inline constexpr uint32_t kUsartSrOre = 1u << 3;
inline constexpr uint32_t kUsartSrRxne = 1u << 5;
inline constexpr uint32_t kUsartSrTc = 1u << 6;
inline constexpr uint32_t kUsartSrTxe = 1u << 7;
inline constexpr uint32_t kUsartCr1Re = 1u << 2;
inline constexpr uint32_t kUsartCr1Te = 1u << 3;
inline constexpr uint32_t kUsartCr1Rxneie = 1u << 5;
inline constexpr uint32_t kUsartCr1Ue = 1u << 13;

// SysTick, PM0214 section 4.5.
struct SysTickRegs {
  volatile uint32_t CTRL;  // 0x00
  volatile uint32_t LOAD;  // 0x04
  volatile uint32_t VAL;   // 0x08
};
inline SysTickRegs& SYSTICK() {
  return *reinterpret_cast<SysTickRegs*>(0xE000E010u);
}
inline constexpr uint32_t kSysTickEnable = 1u << 0;
inline constexpr uint32_t kSysTickTickInt = 1u << 1;
inline constexpr uint32_t kSysTickCpuClock = 1u << 2;

// NVIC, PM0214 section 4.2: ISER at 0xE000E100 (4.2.2), ICER at 0xE000E180 (4.2.3), ICPR at
// 0xE000E280 (4.2.5), 8 words each, bit n % 32 of word n / 32 for IRQ n; IPR at 0xE000E400
// (4.2.7), one byte per IRQ, of which the STM32F4 implements the top 4 bits.
inline volatile uint32_t* NVIC_ISER() {
  return reinterpret_cast<volatile uint32_t*>(0xE000E100u);
}
inline volatile uint32_t* NVIC_ICER() {
  return reinterpret_cast<volatile uint32_t*>(0xE000E180u);
}
inline volatile uint32_t* NVIC_ICPR() {
  return reinterpret_cast<volatile uint32_t*>(0xE000E280u);
}
inline volatile uint8_t* NVIC_IPR() {
  return reinterpret_cast<volatile uint8_t*>(0xE000E400u);
}
inline constexpr int kNvicWords = 8;
inline constexpr uint32_t kNvicPriorityShift = 4;

// Independent watchdog, RM0090 section 21 (register map 21.4.5). Clocked by the LSI RC
// (32 kHz typical, 17-47 kHz over temperature and parts: datasheet DS9405 table 42), which
// starting the watchdog switches on. Only a reset stops it.
struct Iwdg {
  volatile uint32_t KR;   // 0x00
  volatile uint32_t PR;   // 0x04
  volatile uint32_t RLR;  // 0x08
  volatile uint32_t SR;   // 0x0C
};
inline Iwdg& IWDG() {
  return *reinterpret_cast<Iwdg*>(0x40003000u);
}
inline constexpr uint32_t kIwdgKeyStart = 0xCCCC;
inline constexpr uint32_t kIwdgKeyAccess = 0x5555;  // PR and RLR writable
inline constexpr uint32_t kIwdgKeyReload = 0xAAAA;
inline constexpr uint32_t kIwdgSrPvu = 1u << 0;  // prescaler update under way
inline constexpr uint32_t kIwdgSrRvu = 1u << 1;  // reload update under way

// System control block, PM0214 section 4.3 (ICSR, VTOR, AIRCR) and 4.6.1 (CPACR).
inline volatile uint32_t& SCB_ICSR() {
  return *reinterpret_cast<volatile uint32_t*>(0xE000ED04u);
}
inline volatile uint32_t& SCB_VTOR() {
  return *reinterpret_cast<volatile uint32_t*>(0xE000ED08u);
}
inline volatile uint32_t& SCB_AIRCR() {
  return *reinterpret_cast<volatile uint32_t*>(0xE000ED0Cu);
}
inline volatile uint32_t& SCB_CPACR() {
  return *reinterpret_cast<volatile uint32_t*>(0xE000ED88u);
}
inline constexpr uint32_t kIcsrPendStClr = 1u << 25;
inline constexpr uint32_t kIcsrPendSvClr = 1u << 27;
inline constexpr uint32_t kAircrSysResetReq = (0x05FAu << 16) | (1u << 2);
inline constexpr uint32_t kCpacrCp10Cp11Full = 0xFu << 20;

// Memory accesses before it are observed before those after it (and the compiler keeps the
// order): for data shared with an interrupt handler.
inline void Dmb() {
  __asm volatile("dmb 0xF" ::: "memory");
}
inline void Dsb() {
  __asm volatile("dsb 0xF" ::: "memory");
}
inline void Isb() {
  __asm volatile("isb 0xF" ::: "memory");
}

}  // namespace fire::reg
