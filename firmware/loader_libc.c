/* The C library functions the loader links (memcpy, memmove, memset, memcmp, strlen), small
 * loops. newlib-nano's are tuned for speed on the Cortex-M4 (memcpy-armv7m.S, strlen-armv7.S:
 * 786 bytes with memset and memcmp); these take 174 bytes in the loader. memcpy and memset
 * move a word at a time when both pointers (memset: the destination) are 4-byte aligned, a
 * byte at a time otherwise: mbedTLS's bignum code copies and clears its aligned limb arrays
 * with them all the time, and byte loops there were 40% of the package signature check's
 * instructions. The word accesses go through a may_alias type, so they are valid whatever
 * type the bytes hold.
 * Linked before the C library, so these definitions are the ones used. Compiled without LTO
 * and without -ftree-loop-distribute-patterns (CMakeLists.txt), so no loop below is turned
 * back into a call to itself. */
#include <stddef.h>
#include <stdint.h>

typedef uint32_t __attribute__((may_alias)) word_t;

void* memcpy(void* dst, const void* src, size_t n) {
  uint8_t* d = (uint8_t*)dst;
  const uint8_t* s = (const uint8_t*)src;
  if ((((uintptr_t)d | (uintptr_t)s) & 3u) == 0) {
    for (; n >= 4; n -= 4, d += 4, s += 4)
      *(word_t*)d = *(const word_t*)s;
  }
  while (n-- != 0)
    *d++ = *s++;
  return dst;
}

void* memmove(void* dst, const void* src, size_t n) {
  uint8_t* d = (uint8_t*)dst;
  const uint8_t* s = (const uint8_t*)src;
  /* Forward is safe for d <= s, by words too: aligned both, they are 0 or at least 4 bytes
   * apart, and each word is read before the store that may overlap it. */
  if (d <= s) return memcpy(dst, src, n);
  while (n-- != 0)
    d[n] = s[n];
  return dst;
}

void* memset(void* dst, int c, size_t n) {
  uint8_t* d = (uint8_t*)dst;
  if (((uintptr_t)d & 3u) == 0) {
    const word_t w = (uint8_t)c * 0x01010101u;
    for (; n >= 4; n -= 4, d += 4)
      *(word_t*)d = w;
  }
  while (n-- != 0)
    *d++ = (uint8_t)c;
  return dst;
}

int memcmp(const void* a, const void* b, size_t n) {
  const uint8_t* x = (const uint8_t*)a;
  const uint8_t* y = (const uint8_t*)b;
  for (; n != 0; --n, ++x, ++y) {
    if (*x != *y) return *x < *y ? -1 : 1;
  }
  return 0;
}

size_t strlen(const char* s) {
  const char* p = s;
  while (*p != '\0')
    ++p;
  return (size_t)(p - s);
}
