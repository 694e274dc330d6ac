#include "mbedtls_pool.hpp"

#include <mbedtls/platform.h>

#include <cstdint>
#include <cstring>

namespace {

alignas(8) unsigned char g_pool[fire::kMbedtlsPoolBlockSize * fire::kMbedtlsPoolBlocks];
// The free blocks, each holding the address of the next in its first word.
void* g_free = nullptr;

void Push(void* block) {
  std::memcpy(block, &g_free, sizeof(g_free));
  g_free = block;
}

}  // namespace

// extern "C" and named: scripts/stack-bound.py maps mbedTLS's calloc/free pointers to them.
extern "C" {

void* fire_mbedtls_pool_calloc(size_t n, size_t size) {
  if (size != 0 && n > fire::kMbedtlsPoolBlockSize / size) return nullptr;
  void* const block = g_free;
  if (block == nullptr) return nullptr;
  std::memcpy(&g_free, block, sizeof(g_free));
  std::memset(block, 0, fire::kMbedtlsPoolBlockSize);
  return block;
}

void fire_mbedtls_pool_free(void* block) {
  if (block == nullptr) return;
  const uintptr_t offset = reinterpret_cast<uintptr_t>(block) - reinterpret_cast<uintptr_t>(g_pool);
  if (offset >= sizeof(g_pool) || offset % fire::kMbedtlsPoolBlockSize != 0) {
    ota_mbedtls_fatal(0);  // not one of ours: RAM is corrupted (the loader resets)
    return;
  }
  Push(block);
}

}  // extern "C"

namespace fire {

void MbedtlsPoolInit() {
  g_free = nullptr;
  for (size_t i = kMbedtlsPoolBlocks; i-- != 0;)
    Push(g_pool + i * kMbedtlsPoolBlockSize);
  (void)mbedtls_platform_set_calloc_free(fire_mbedtls_pool_calloc, fire_mbedtls_pool_free);
}

}  // namespace fire
