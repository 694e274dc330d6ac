#include "ota/signature.hpp"

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>

namespace ota {

Status ComputeKeyId(const uint8_t (&point)[kPublicKeySize], uint8_t (&id)[kKeyIdSize]) {
  static_assert(kKeyIdSize == kSha256Size, "the key id is a SHA-256");
  Sha256 sha;
  OTA_TRY(sha.Update(ConstByteSpan(point)));
  return sha.Finish(id);
}

Status VerifyEcdsaP256(const uint8_t (&point)[kPublicKeySize], const Sha256Digest digest,
                       ConstByteSpan der) {
  mbedtls_ecdsa_context ctx;
  mbedtls_ecdsa_init(&ctx);
  Status result = StatusCode::kVerifyFailed;
  int rc = mbedtls_ecp_group_load(&ctx.grp, MBEDTLS_ECP_DP_SECP256R1);
  if (rc != 0) {
    result = StatusCode::kIoError;  // out of memory for the group: not the package's fault
  } else if (mbedtls_ecp_point_read_binary(&ctx.grp, &ctx.Q, point, kPublicKeySize) == 0 &&
             mbedtls_ecp_check_pubkey(&ctx.grp, &ctx.Q) == 0) {
    rc = mbedtls_ecdsa_read_signature(&ctx, digest, kSha256Size, der.data(), der.size());
    if (rc == 0) result = Status::Ok();
    if (rc == MBEDTLS_ERR_MPI_ALLOC_FAILED || rc == MBEDTLS_ERR_ECP_ALLOC_FAILED) {
      result = StatusCode::kIoError;  // the bignum arena is too small: a port defect
    }
  }
  mbedtls_ecdsa_free(&ctx);
  return result;
}

}  // namespace ota
