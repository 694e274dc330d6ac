// mbedTLS's calloc and free for the loader: fixed-size blocks from one static arena, linked
// in a free list. ECDSA P-256 verification (the loader's only user) allocates bignum limbs and
// small point arrays: at most 72 bytes at a time and 35 blocks at once (measured on the
// emulated Cortex-M4 with this configuration, MBEDTLS_ECP_WINDOW_SIZE 2, no NIST reduction),
// some 56000 calls per verification. A request larger than a block, or one with no block
// left, gets NULL: the verification fails with MBEDTLS_ERR_MPI_ALLOC_FAILED (io-error from
// ota::VerifyEcdsaP256) and the package is refused, never accepted. The M4 crypto check runs
// on this pool: every case there would show such a failure. About 100 bytes of code where
// memory_buffer_alloc takes 600; the app keeps memory_buffer_alloc (HMAC's contexts need
// larger blocks).
#pragma once

#include <cstddef>

namespace fire {

inline constexpr size_t kMbedtlsPoolBlockSize = 96;  // 24 limbs
inline constexpr size_t kMbedtlsPoolBlocks = 64;     // 6 KB

// Empties the pool and makes it mbedTLS's allocator (mbedtls_platform_set_calloc_free). A
// free of anything but a block of the pool calls ota_mbedtls_fatal (the loader resets).
void MbedtlsPoolInit();

}  // namespace fire
