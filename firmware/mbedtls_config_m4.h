/* mbedTLS configuration for the Cortex-M4 loader: SHA-256 and ECDSA P-256 verification, and
 * nothing else. Bignums allocate from a fixed static arena (the loader's block pool,
 * mbedtls_pool.cpp; the app's memory_buffer_alloc), set up at start-up: the C library's heap
 * is never linked in. Verification needs no random numbers (nothing secret is computed), so
 * no RNG either. No self-tests, no time, no files. */
#ifndef OTA_MBEDTLS_CONFIG_M4_H_
#define OTA_MBEDTLS_CONFIG_M4_H_

#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_PLATFORM_NO_STD_FUNCTIONS /* calloc/free stay unset until the arena is */
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
#define MBEDTLS_MEMORY_ALIGN_MULTIPLE 8
/* memory_buffer_alloc calls exit() on a corrupted arena, the loader's pool on a foreign block:
 * both reset instead. */
#define MBEDTLS_PLATFORM_EXIT_MACRO ota_mbedtls_fatal
#ifdef __cplusplus
extern "C" {
#endif
void ota_mbedtls_fatal(int status);
#ifdef __cplusplus
}
#endif

#define MBEDTLS_SHA256_C
#define MBEDTLS_MD_C /* HMAC-SHA-256 for the app's IoTDA password; the loader links none of it */
#define MBEDTLS_SHA256_SMALLER

#define MBEDTLS_BIGNUM_C
#define MBEDTLS_HAVE_ASM /* bn_mul.h: UMAAL multiply-accumulate (Cortex-M4 DSP) */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
/* MBEDTLS_ECP_NIST_OPTIM (fast P-256 reduction) is left out: it costs 832 bytes the 32 KB
 * loader does not have. Verification takes ~1 s instead of ~0.2 s (docs/firmware.md). */
#define MBEDTLS_ECP_NO_INTERNAL_RNG
#define MBEDTLS_ECP_MAX_BITS 256
#define MBEDTLS_ECP_WINDOW_SIZE 2 /* RAM over speed: the loader verifies once a boot */
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_MPI_MAX_SIZE 64
#define MBEDTLS_NO_UDBL_DIVISION /* bignum divides by itself: no libgcc __udivmoddi4 (-584 bytes) \
                                  */
#define MBEDTLS_ECDSA_C

#include "mbedtls/check_config.h"

#endif /* OTA_MBEDTLS_CONFIG_M4_H_ */
