// Start-up for the STM32F429: the vector table (initial SP + 16 core exceptions + 91 IRQs,
// RM0090 table 62) and Reset_Handler. Every handler is a weak alias of Default_Handler, so a
// driver overrides one by defining a function of the same name.
#include <cstdint>

#include "stm32f4_regs.hpp"

extern "C" {

// From the linker scripts (loader.ld, app.ld).
extern uint32_t _estack;
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;
using InitFunc = void (*)();
extern InitFunc __preinit_array_start[], __preinit_array_end[];
extern InitFunc __init_array_start[], __init_array_end[];

int main();
void Reset_Handler();

// An unexpected exception or interrupt: stop here, where a debugger shows what happened
// (no bkpt: without a debugger it would escalate to a lockup).
void Default_Handler() {
  while (true)
    __asm volatile("" ::: "memory");
}

// clang-format off
#define FIRE_WEAK_HANDLER(name) void name() __attribute__((weak, alias("Default_Handler")));
FIRE_WEAK_HANDLER(NMI_Handler)
FIRE_WEAK_HANDLER(HardFault_Handler)
FIRE_WEAK_HANDLER(MemManage_Handler)
FIRE_WEAK_HANDLER(BusFault_Handler)
FIRE_WEAK_HANDLER(UsageFault_Handler)
FIRE_WEAK_HANDLER(SVC_Handler)
FIRE_WEAK_HANDLER(DebugMon_Handler)
FIRE_WEAK_HANDLER(PendSV_Handler)
FIRE_WEAK_HANDLER(SysTick_Handler)
FIRE_WEAK_HANDLER(WWDG_IRQHandler)
FIRE_WEAK_HANDLER(PVD_IRQHandler)
FIRE_WEAK_HANDLER(TAMP_STAMP_IRQHandler)
FIRE_WEAK_HANDLER(RTC_WKUP_IRQHandler)
FIRE_WEAK_HANDLER(FLASH_IRQHandler)
FIRE_WEAK_HANDLER(RCC_IRQHandler)
FIRE_WEAK_HANDLER(EXTI0_IRQHandler)
FIRE_WEAK_HANDLER(EXTI1_IRQHandler)
FIRE_WEAK_HANDLER(EXTI2_IRQHandler)
FIRE_WEAK_HANDLER(EXTI3_IRQHandler)
FIRE_WEAK_HANDLER(EXTI4_IRQHandler)
FIRE_WEAK_HANDLER(DMA1_Stream0_IRQHandler)
FIRE_WEAK_HANDLER(DMA1_Stream1_IRQHandler)
FIRE_WEAK_HANDLER(DMA1_Stream2_IRQHandler)
FIRE_WEAK_HANDLER(DMA1_Stream3_IRQHandler)
FIRE_WEAK_HANDLER(DMA1_Stream4_IRQHandler)
FIRE_WEAK_HANDLER(DMA1_Stream5_IRQHandler)
FIRE_WEAK_HANDLER(DMA1_Stream6_IRQHandler)
FIRE_WEAK_HANDLER(ADC_IRQHandler)
FIRE_WEAK_HANDLER(CAN1_TX_IRQHandler)
FIRE_WEAK_HANDLER(CAN1_RX0_IRQHandler)
FIRE_WEAK_HANDLER(CAN1_RX1_IRQHandler)
FIRE_WEAK_HANDLER(CAN1_SCE_IRQHandler)
FIRE_WEAK_HANDLER(EXTI9_5_IRQHandler)
FIRE_WEAK_HANDLER(TIM1_BRK_TIM9_IRQHandler)
FIRE_WEAK_HANDLER(TIM1_UP_TIM10_IRQHandler)
FIRE_WEAK_HANDLER(TIM1_TRG_COM_TIM11_IRQHandler)
FIRE_WEAK_HANDLER(TIM1_CC_IRQHandler)
FIRE_WEAK_HANDLER(TIM2_IRQHandler)
FIRE_WEAK_HANDLER(TIM3_IRQHandler)
FIRE_WEAK_HANDLER(TIM4_IRQHandler)
FIRE_WEAK_HANDLER(I2C1_EV_IRQHandler)
FIRE_WEAK_HANDLER(I2C1_ER_IRQHandler)
FIRE_WEAK_HANDLER(I2C2_EV_IRQHandler)
FIRE_WEAK_HANDLER(I2C2_ER_IRQHandler)
FIRE_WEAK_HANDLER(SPI1_IRQHandler)
FIRE_WEAK_HANDLER(SPI2_IRQHandler)
FIRE_WEAK_HANDLER(USART1_IRQHandler)
FIRE_WEAK_HANDLER(USART2_IRQHandler)
FIRE_WEAK_HANDLER(USART3_IRQHandler)
FIRE_WEAK_HANDLER(EXTI15_10_IRQHandler)
FIRE_WEAK_HANDLER(RTC_Alarm_IRQHandler)
FIRE_WEAK_HANDLER(OTG_FS_WKUP_IRQHandler)
FIRE_WEAK_HANDLER(TIM8_BRK_TIM12_IRQHandler)
FIRE_WEAK_HANDLER(TIM8_UP_TIM13_IRQHandler)
FIRE_WEAK_HANDLER(TIM8_TRG_COM_TIM14_IRQHandler)
FIRE_WEAK_HANDLER(TIM8_CC_IRQHandler)
FIRE_WEAK_HANDLER(DMA1_Stream7_IRQHandler)
FIRE_WEAK_HANDLER(FMC_IRQHandler)
FIRE_WEAK_HANDLER(SDIO_IRQHandler)
FIRE_WEAK_HANDLER(TIM5_IRQHandler)
FIRE_WEAK_HANDLER(SPI3_IRQHandler)
FIRE_WEAK_HANDLER(UART4_IRQHandler)
FIRE_WEAK_HANDLER(UART5_IRQHandler)
FIRE_WEAK_HANDLER(TIM6_DAC_IRQHandler)
FIRE_WEAK_HANDLER(TIM7_IRQHandler)
FIRE_WEAK_HANDLER(DMA2_Stream0_IRQHandler)
FIRE_WEAK_HANDLER(DMA2_Stream1_IRQHandler)
FIRE_WEAK_HANDLER(DMA2_Stream2_IRQHandler)
FIRE_WEAK_HANDLER(DMA2_Stream3_IRQHandler)
FIRE_WEAK_HANDLER(DMA2_Stream4_IRQHandler)
FIRE_WEAK_HANDLER(ETH_IRQHandler)
FIRE_WEAK_HANDLER(ETH_WKUP_IRQHandler)
FIRE_WEAK_HANDLER(CAN2_TX_IRQHandler)
FIRE_WEAK_HANDLER(CAN2_RX0_IRQHandler)
FIRE_WEAK_HANDLER(CAN2_RX1_IRQHandler)
FIRE_WEAK_HANDLER(CAN2_SCE_IRQHandler)
FIRE_WEAK_HANDLER(OTG_FS_IRQHandler)
FIRE_WEAK_HANDLER(DMA2_Stream5_IRQHandler)
FIRE_WEAK_HANDLER(DMA2_Stream6_IRQHandler)
FIRE_WEAK_HANDLER(DMA2_Stream7_IRQHandler)
FIRE_WEAK_HANDLER(USART6_IRQHandler)
FIRE_WEAK_HANDLER(I2C3_EV_IRQHandler)
FIRE_WEAK_HANDLER(I2C3_ER_IRQHandler)
FIRE_WEAK_HANDLER(OTG_HS_EP1_OUT_IRQHandler)
FIRE_WEAK_HANDLER(OTG_HS_EP1_IN_IRQHandler)
FIRE_WEAK_HANDLER(OTG_HS_WKUP_IRQHandler)
FIRE_WEAK_HANDLER(OTG_HS_IRQHandler)
FIRE_WEAK_HANDLER(DCMI_IRQHandler)
FIRE_WEAK_HANDLER(HASH_RNG_IRQHandler)
FIRE_WEAK_HANDLER(FPU_IRQHandler)
FIRE_WEAK_HANDLER(UART7_IRQHandler)
FIRE_WEAK_HANDLER(UART8_IRQHandler)
FIRE_WEAK_HANDLER(SPI4_IRQHandler)
FIRE_WEAK_HANDLER(SPI5_IRQHandler)
FIRE_WEAK_HANDLER(SPI6_IRQHandler)
FIRE_WEAK_HANDLER(SAI1_IRQHandler)
FIRE_WEAK_HANDLER(LTDC_IRQHandler)
FIRE_WEAK_HANDLER(LTDC_ER_IRQHandler)
FIRE_WEAK_HANDLER(DMA2D_IRQHandler)
#undef FIRE_WEAK_HANDLER
// clang-format on

// Placed first in flash by the linker scripts; also what VTOR points at. An image that never
// enables an interrupt in the NVIC (the loader: its drivers poll, and SysTick is a core
// exception) is built with FIRE_CORE_VECTORS_ONLY: its table stops after SysTick, since the
// core reads an IRQ's slot only when it takes that IRQ (PM0214 2.3.4, "Vector table").
extern const InitFunc g_vector_table[];
const InitFunc g_vector_table[] __attribute__((section(".isr_vector"), used)) = {
    reinterpret_cast<InitFunc>(&_estack),
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    SVC_Handler,
    DebugMon_Handler,
    nullptr,
    PendSV_Handler,
    SysTick_Handler,
#if !defined(FIRE_CORE_VECTORS_ONLY)
    // IRQ 0-90.
    WWDG_IRQHandler,
    PVD_IRQHandler,
    TAMP_STAMP_IRQHandler,
    RTC_WKUP_IRQHandler,
    FLASH_IRQHandler,
    RCC_IRQHandler,
    EXTI0_IRQHandler,
    EXTI1_IRQHandler,
    EXTI2_IRQHandler,
    EXTI3_IRQHandler,
    EXTI4_IRQHandler,
    DMA1_Stream0_IRQHandler,
    DMA1_Stream1_IRQHandler,
    DMA1_Stream2_IRQHandler,
    DMA1_Stream3_IRQHandler,
    DMA1_Stream4_IRQHandler,
    DMA1_Stream5_IRQHandler,
    DMA1_Stream6_IRQHandler,
    ADC_IRQHandler,
    CAN1_TX_IRQHandler,
    CAN1_RX0_IRQHandler,
    CAN1_RX1_IRQHandler,
    CAN1_SCE_IRQHandler,
    EXTI9_5_IRQHandler,
    TIM1_BRK_TIM9_IRQHandler,
    TIM1_UP_TIM10_IRQHandler,
    TIM1_TRG_COM_TIM11_IRQHandler,
    TIM1_CC_IRQHandler,
    TIM2_IRQHandler,
    TIM3_IRQHandler,
    TIM4_IRQHandler,
    I2C1_EV_IRQHandler,
    I2C1_ER_IRQHandler,
    I2C2_EV_IRQHandler,
    I2C2_ER_IRQHandler,
    SPI1_IRQHandler,
    SPI2_IRQHandler,
    USART1_IRQHandler,
    USART2_IRQHandler,
    USART3_IRQHandler,
    EXTI15_10_IRQHandler,
    RTC_Alarm_IRQHandler,
    OTG_FS_WKUP_IRQHandler,
    TIM8_BRK_TIM12_IRQHandler,
    TIM8_UP_TIM13_IRQHandler,
    TIM8_TRG_COM_TIM14_IRQHandler,
    TIM8_CC_IRQHandler,
    DMA1_Stream7_IRQHandler,
    FMC_IRQHandler,
    SDIO_IRQHandler,
    TIM5_IRQHandler,
    SPI3_IRQHandler,
    UART4_IRQHandler,
    UART5_IRQHandler,
    TIM6_DAC_IRQHandler,
    TIM7_IRQHandler,
    DMA2_Stream0_IRQHandler,
    DMA2_Stream1_IRQHandler,
    DMA2_Stream2_IRQHandler,
    DMA2_Stream3_IRQHandler,
    DMA2_Stream4_IRQHandler,
    ETH_IRQHandler,
    ETH_WKUP_IRQHandler,
    CAN2_TX_IRQHandler,
    CAN2_RX0_IRQHandler,
    CAN2_RX1_IRQHandler,
    CAN2_SCE_IRQHandler,
    OTG_FS_IRQHandler,
    DMA2_Stream5_IRQHandler,
    DMA2_Stream6_IRQHandler,
    DMA2_Stream7_IRQHandler,
    USART6_IRQHandler,
    I2C3_EV_IRQHandler,
    I2C3_ER_IRQHandler,
    OTG_HS_EP1_OUT_IRQHandler,
    OTG_HS_EP1_IN_IRQHandler,
    OTG_HS_WKUP_IRQHandler,
    OTG_HS_IRQHandler,
    DCMI_IRQHandler,
    nullptr,  // 79: CRYP, STM32F43x only
    HASH_RNG_IRQHandler,
    FPU_IRQHandler,
    UART7_IRQHandler,
    UART8_IRQHandler,
    SPI4_IRQHandler,
    SPI5_IRQHandler,
    SPI6_IRQHandler,
    SAI1_IRQHandler,
    LTDC_IRQHandler,
    LTDC_ER_IRQHandler,
    DMA2D_IRQHandler,
#endif
};

void Reset_Handler() {
  for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;)
    *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;)
    *dst++ = 0;
  // Full access to CP10/CP11 before any FPU instruction (PM0214 4.6.1): code is built with
  // -mfloat-abi=hard.
  fire::reg::SCB_CPACR() |= fire::reg::kCpacrCp10Cp11Full;
  fire::reg::Dsb();
  fire::reg::Isb();
  for (InitFunc* f = __preinit_array_start; f < __preinit_array_end; ++f)
    (*f)();
  for (InitFunc* f = __init_array_start; f < __init_array_end; ++f)
    (*f)();
  // The loader jumps to the app with PRIMASK set; a cold reset clears it anyway.
  __asm volatile("cpsie i" ::: "memory");
  main();
  while (true)
    __asm volatile("wfi");
}

}  // extern "C"

#if defined(FIRE_CORE_VECTORS_ONLY)
// Initial SP + 15 core exception slots = 16 words (0x40 bytes).
static_assert(sizeof(g_vector_table) == 16 * sizeof(InitFunc), "Cortex-M4 core vectors");
#else
// Initial SP + 15 core exception slots + 91 IRQs = 107 words (0x1AC bytes): below the image
// header at 0x200.
static_assert(sizeof(g_vector_table) == 107 * sizeof(InitFunc), "STM32F429 vector table");
#endif
