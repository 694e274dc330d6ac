#include "ota/sha256.hpp"

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include <new>

namespace ota {

static_assert(sizeof(mbedtls_sha256_context) <= 128, "grow Sha256::context_");

namespace {
mbedtls_sha256_context* Ctx(uint8_t* storage) {
  return std::launder(reinterpret_cast<mbedtls_sha256_context*>(storage));
}
}  // namespace

// mbedTLS 2.x names the checked variants *_ret; 3.x made them the plain names.
#if MBEDTLS_VERSION_MAJOR >= 3
#define OTA_SHA256_STARTS mbedtls_sha256_starts
#define OTA_SHA256_UPDATE mbedtls_sha256_update
#define OTA_SHA256_FINISH mbedtls_sha256_finish
#else
#define OTA_SHA256_STARTS mbedtls_sha256_starts_ret
#define OTA_SHA256_UPDATE mbedtls_sha256_update_ret
#define OTA_SHA256_FINISH mbedtls_sha256_finish_ret
#endif

Sha256::Sha256() {
  mbedtls_sha256_context* ctx = new (context_) mbedtls_sha256_context;
  mbedtls_sha256_init(ctx);
  failed_ = OTA_SHA256_STARTS(ctx, 0) != 0;
}

Sha256::~Sha256() {
  mbedtls_sha256_free(Ctx(context_));
}

Status Sha256::Update(ConstByteSpan data) {
  if (failed_) return StatusCode::kIoError;
  if (OTA_SHA256_UPDATE(Ctx(context_), data.data(), data.size()) != 0) {
    failed_ = true;
    return StatusCode::kIoError;
  }
  return Status::Ok();
}

Status Sha256::Finish(Sha256Digest out) {
  if (failed_ || OTA_SHA256_FINISH(Ctx(context_), out) != 0) return StatusCode::kIoError;
  return Status::Ok();
}

bool DigestEqual(const Sha256Digest a, const Sha256Digest b) {
  uint8_t diff = 0;
  for (size_t i = 0; i < kSha256Size; ++i)
    diff = static_cast<uint8_t>(diff | (a[i] ^ b[i]));
  return diff == 0;
}

}  // namespace ota
