/* The C library functions the loader links (memcpy, memmove, memset, memcmp, strlen), as
 * plain byte loops. newlib-nano's are tuned for speed on the Cortex-M4 (memcpy-armv7m.S,
 * strlen-armv7.S: 786 bytes with memset and memcmp); these take about 100, and speed does not
 * matter here: the loader copies at most a few KB at a time between flash operations that
 * take milliseconds, and SHA-256 costs some 60 instructions a byte where a copy costs 4.
 * Linked before the C library, so these definitions are the ones used. Compiled without LTO
 * and without -ftree-loop-distribute-patterns (CMakeLists.txt), so no loop below is turned
 * back into a call to itself. */
#include <stddef.h>
#include <stdint.h>

void* memcpy(void* dst, const void* src, size_t n) {
  uint8_t* d = (uint8_t*)dst;
  const uint8_t* s = (const uint8_t*)src;
  while (n-- != 0)
    *d++ = *s++;
  return dst;
}

void* memmove(void* dst, const void* src, size_t n) {
  uint8_t* d = (uint8_t*)dst;
  const uint8_t* s = (const uint8_t*)src;
  if (d <= s) return memcpy(dst, src, n);
  while (n-- != 0)
    d[n] = s[n];
  return dst;
}

void* memset(void* dst, int c, size_t n) {
  uint8_t* d = (uint8_t*)dst;
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
