// The loader's signature check as built for the board (the device library's Sha256 and
// VerifyEcdsaP256 over libmbedcrypto_m4 with firmware/mbedtls_config_m4.h), run on an
// emulated Cortex-M4: QEMU's netduinoplus2 (STM32F405, same core and FPU as the F429), with
// the loader's allocator (fire::MbedtlsPoolInit).
// m4_crypto_check.sh puts a test case in flash at kCaseAddress (QEMU's generic loader) and
// reads the verdict from the semihosting output: "m4-crypto: accepted" or "... refused".
//
// Test case layout (little-endian): u32 magic 'M4CC', u32 message size, 65-byte public point,
// u8 DER size, DER signature (at most 72 bytes), then the message.
#include <cstdint>

#include "mbedtls_pool.hpp"

#include "ota/sha256.hpp"
#include "ota/signature.hpp"

extern "C" {
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;
void Reset_Handler();
void ota_mbedtls_fatal(int status);
}

namespace {

constexpr uintptr_t kCaseAddress = 0x08080000;
constexpr uint32_t kCaseMagic = 0x4343344D;  // "M4CC"
constexpr uint32_t kMaxDer = 72;

// ARM semihosting (bkpt 0xAB): SYS_WRITE0 and SYS_EXIT.
int Semihost(int op, const void* arg) {
  register int r0 __asm("r0") = op;
  register const void* r1 __asm("r1") = arg;
  __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
void Say(const char* text) {
  Semihost(0x04, text);
}
[[noreturn]] void Exit(bool ok) {
  // ADP_Stopped_ApplicationExit (QEMU exits 0) or ADP_Stopped_RunTimeErrorUnknown (exits 1).
  static const uint32_t kReason[2] = {ok ? 0x20026u : 0x20023u, 0};
  Semihost(0x18, kReason);
  for (;;) {
  }
}

uint32_t Load32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

extern "C" void ota_mbedtls_fatal(int /*status*/) {
  Say("m4-crypto: mbedTLS pool corrupted\n");
  Exit(false);
}

int main() {
  // The loader's allocator (firmware/mbedtls_pool.cpp): verification must fit in its pool.
  fire::MbedtlsPoolInit();
  const auto* c = reinterpret_cast<const uint8_t*>(kCaseAddress);
  if (Load32(c) != kCaseMagic) {
    Say("m4-crypto: no test case in flash\n");
    Exit(false);
  }
  const uint32_t msg_size = Load32(c + 4);
  uint8_t point[ota::kPublicKeySize];
  for (uint32_t i = 0; i < ota::kPublicKeySize; ++i)
    point[i] = c[8 + i];
  const uint8_t der_size = c[8 + ota::kPublicKeySize];
  const uint8_t* der = c + 9 + ota::kPublicKeySize;
  const uint8_t* msg = der + kMaxDer;
  if (der_size > kMaxDer) {
    Say("m4-crypto: bad test case\n");
    Exit(false);
  }

  ota::Sha256 sha;
  ota::Sha256Digest digest;
  if (!sha.Update(ota::ConstByteSpan(msg, msg_size)).ok() || !sha.Finish(digest).ok()) {
    Say("m4-crypto: sha256 failed\n");
    Exit(false);
  }
  const ota::Status s = ota::VerifyEcdsaP256(point, digest, ota::ConstByteSpan(der, der_size));
  Say(s.ok() ? "m4-crypto: accepted\n" : "m4-crypto: refused: ");
  if (!s.ok()) {
    Say(s.name());
    Say("\n");
  }
  Exit(true);
}

extern "C" void Reset_Handler() {
  for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;)
    *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;)
    *dst++ = 0;
  // CP10/CP11 full access: the code is built for the FPU (-mfloat-abi=hard).
  *reinterpret_cast<volatile uint32_t*>(0xE000ED88) |= 0xFu << 20;
  __asm volatile("dsb\n isb" ::: "memory");
  main();
  Exit(false);
}

using Handler = void (*)();
extern "C" const Handler g_check_vectors[2] __attribute__((section(".isr_vector"), used)) = {
    reinterpret_cast<Handler>(0x20020000),  // top of the F405's 128 KB SRAM
    Reset_Handler,
};
