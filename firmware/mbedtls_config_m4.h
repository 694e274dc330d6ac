/* mbedTLS configuration for the Cortex-M4 build of the two files the loader links
 * (library/sha256.c, library/platform_util.c): SHA-256 and nothing else. No self-test (it
 * would pull in printf), no time/date, no platform layer. */
#ifndef OTA_MBEDTLS_CONFIG_M4_H_
#define OTA_MBEDTLS_CONFIG_M4_H_

#define MBEDTLS_SHA256_C

#include "mbedtls/check_config.h"

#endif /* OTA_MBEDTLS_CONFIG_M4_H_ */
