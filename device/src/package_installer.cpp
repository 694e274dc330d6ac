#include "ota/package_installer.hpp"

#include <cstring>
#include <new>

#include "ota/bytes.hpp"
#include "ota/codec/delta_format.hpp"

namespace ota {

namespace {

static_assert(SlotWriter::kMaxProgramAlign <= codec::DeltaDecoder::kUnflushed,
              "the decoder must keep every byte the slot writer may still hold back");

bool IsPowerLost(Status s) {
  return s.code() == StatusCode::kPowerLost;
}

// The payload, read once in order from the download region.
class AreaSource final : public codec::ByteSource {
 public:
  explicit AreaSource(const FlashArea& area) : area_(area) {}
  Result<size_t> Read(ByteSpan out) override {
    const uint32_t left = area_.size() - pos_;
    const ByteSpan chunk = out.first(left);
    if (chunk.empty()) return size_t{0};
    OTA_TRY(area_.Read(pos_, chunk));
    pos_ += static_cast<uint32_t>(chunk.size());
    return chunk.size();
  }

 private:
  FlashArea area_;
  uint32_t pos_ = 0;
};

FailReason ReasonFor(Status s, FailReason structural) {
  return s.code() == StatusCode::kUnsupported ? FailReason::kUnsupported : structural;
}

}  // namespace

Status PackageInstaller::Authenticate(const InstallerContext& ctx, FailReason* reason,
                                      uint32_t* permissions) {
  *reason = FailReason::kPackageInvalid;
  *permissions = 0;
  package_error_ = PackageError::kNone;
  if (ctx.staged_size == 0 || ctx.staged_size > ctx.staged.size()) {
    package_error_ = PackageError::kBadLength;
    return StatusCode::kCorrupt;
  }
  const FlashArea staged(ctx.staged.flash(), ctx.staged.offset(), ctx.staged_size);
  const Result<PackageManifest> m = ReadManifest(staged, ctx.work, &package_error_);
  if (!m.ok()) {
    *reason = ReasonFor(m.status(), FailReason::kPackageInvalid);
    return m.status();
  }
  manifest_ = m.value();
  OTA_TRY_ASSIGN(const bool is_signed,
                 HasSignatureBlock(manifest_, ctx.staged_size, &package_error_));

  if (policy_.accept_unsigned) {
    // Host tools only: with no signature checked, no key rule can be either.
    *permissions = kKeyMayDowngrade;
    *reason = FailReason::kNone;
    return Status::Ok();
  }
  *reason = FailReason::kBadSignature;
  if (!is_signed) return StatusCode::kVerifyFailed;
  const ByteSpan block = ctx.work.first(kSignatureBlockSize);
  if (block.size() != kSignatureBlockSize) return StatusCode::kInvalidArgument;
  OTA_TRY(staged.Read(manifest_.signed_size(), block));
  OTA_TRY_ASSIGN(const SignatureBlock sig, ParseSignatureBlock(block, &package_error_));

  const TrustedKey* signer = nullptr;
  for (const TrustedKey& key : policy_.keys) {
    uint8_t id[kKeyIdSize];
    OTA_TRY(ComputeKeyId(key.point, id));
    if (std::memcmp(id, sig.key_id, kKeyIdSize) == 0) signer = &key;
  }
  if (signer == nullptr) return StatusCode::kVerifyFailed;  // not a key this loader trusts

  // The whole signed range is hashed as it lies in flash; nothing of it is trusted before.
  Sha256Digest digest;
  OTA_TRY(HashArea(staged, 0, manifest_.signed_size(), ctx.work, digest));
  // ECDSA is the slow part on the board; within one boot, bytes that hash the same under the
  // same signature and key were verified already (the hash itself is recomputed every time).
  const bool cached = verified_.valid && verified_.signer == signer &&
                      DigestEqual(verified_.digest, digest) &&
                      verified_.der_length == sig.der_length &&
                      std::memcmp(verified_.der, sig.der, sig.der_length) == 0;
  if (!cached) {
    verified_.valid = false;
    OTA_TRY(VerifyEcdsaP256(signer->point, digest, ConstByteSpan(sig.der, sig.der_length)));
    verified_.valid = true;
    verified_.signer = signer;
    std::memcpy(verified_.digest, digest, kSha256Size);
    std::memcpy(verified_.der, sig.der, kSignatureDerMax);
    verified_.der_length = sig.der_length;
  }
  *permissions = signer->permissions;
  *reason = FailReason::kNone;
  return Status::Ok();
}

Result<PackageInfo> PackageInstaller::Info(const InstallerContext& ctx, uint32_t permissions,
                                           FailReason* reason) const {
  const PackageManifest& m = manifest_;
  if (m.target_size > ctx.running.size()) {
    *reason = FailReason::kTooLarge;
    return StatusCode::kTooLarge;
  }
  // Downgrades (docs/spec/package.md): the flag is only valid from a key allowed to use it,
  // and a lower counter is only accepted with the flag.
  const bool may_downgrade = (permissions & kKeyMayDowngrade) != 0;
  const bool flagged = (m.flags & kPackageFlagAllowDowngrade) != 0;
  const bool lower = m.security_counter < ctx.record.security_counter;
  if ((flagged && !may_downgrade) || (lower && !flagged)) {
    *reason = FailReason::kDowngrade;
    return StatusCode::kVerifyFailed;
  }
  PackageInfo info;
  info.target_size = m.target_size;
  std::memcpy(info.target_sha256, m.target_sha256, kSha256Size);
  std::memcpy(info.version, m.target_version, kVersionMax);
  info.security_counter = m.security_counter;
  info.downgrade = lower;
  *reason = FailReason::kNone;
  return info;
}

// The codec stream must promise what the manifest does, before anything is erased.
Status PackageInstaller::CheckCodecHeader(const FlashArea& staged, ByteSpan work) const {
  const PackageManifest& m = manifest_;
  if (m.codec == CodecId::kStored) return Status::Ok();
  if (m.payload_size < codec::kDeltaHeaderSize || work.size() < codec::kDeltaHeaderSize) {
    return StatusCode::kCorrupt;
  }
  const ByteSpan h = work.first(codec::kDeltaHeaderSize);
  OTA_TRY(staged.Read(m.payload_offset(), h));
  const uint32_t old_size = m.kind == PackageKind::kDiff ? m.source_size : 0;
  if (LoadLe32(h.data()) != codec::kDeltaMagic || h[4] != m.codec_format ||
      LoadLe32(h.data() + 8) != old_size || LoadLe32(h.data() + 12) != m.target_size) {
    return StatusCode::kCorrupt;
  }
  return Status::Ok();
}

Result<PackageInfo> PackageInstaller::Inspect(const InstallerContext& ctx, FailReason* reason) {
  uint32_t permissions = 0;
  OTA_TRY(Authenticate(ctx, reason, &permissions));
  return Info(ctx, permissions, reason);
}

Result<PackageInfo> PackageInstaller::Check(const InstallerContext& ctx, FailReason* reason) {
  OTA_TRY_ASSIGN(const PackageInfo info, Inspect(ctx, reason));
  const PackageManifest& m = manifest_;
  const FlashArea staged(ctx.staged.flash(), ctx.staged.offset(), ctx.staged_size);
  const Status header = CheckCodecHeader(staged, ctx.work);
  if (!header.ok()) {
    if (!IsPowerLost(header)) *reason = FailReason::kPackageInvalid;
    return header;
  }
  if (m.kind == PackageKind::kDiff) {
    // A diff applies to one exact image: the running slot must start with it.
    *reason = FailReason::kWrongSource;
    if (m.source_size > ctx.running.size()) return StatusCode::kVerifyFailed;
    Sha256Digest running;
    OTA_TRY(HashArea(ctx.running, 0, m.source_size, ctx.work, running));
    if (!DigestEqual(running, m.source_sha256)) return StatusCode::kVerifyFailed;
    *reason = FailReason::kNone;
  }
  return info;
}

Status PackageInstaller::Apply(const InstallerContext& ctx, const FlashArea& old, SlotWriter& out) {
  PackageError error = PackageError::kNone;
  const FlashArea staged(ctx.staged.flash(), ctx.staged.offset(), ctx.staged_size);
  OTA_TRY_ASSIGN(const PackageManifest m, ReadManifest(staged, ctx.work, &error));
  const FlashArea payload(staged.flash(), staged.offset() + m.payload_offset(), m.payload_size);
  if (m.payload_offset() + static_cast<uint64_t>(m.payload_size) > ctx.staged_size) {
    return StatusCode::kCorrupt;
  }
  if (m.codec == CodecId::kStored) return CopyToWriter(payload, m.payload_size, out, ctx.work);

  uint32_t old_size = 0;
  if (m.kind == PackageKind::kDiff) {
    // The backup is the verified copy of the running image the diff was checked against.
    if (old.size() < m.source_size) return StatusCode::kFailedPrecondition;
    old_size = m.source_size;
  }
  const FlashArea source(old.flash(), old.offset(), old_size);
  AreaSource patch(payload);
  // Copies may reach back into the part of the new image already written: the decoder reads
  // it from the running slot (SlotWriter holds back less than the decoder keeps itself).
  codec::DeltaDecoder* const decoder =
      new (decoder_storage_) codec::DeltaDecoder(patch, source, ctx.running);
  Status status = decoder->Init(old_size);
  if (status.ok() && decoder->new_size() != m.target_size) status = StatusCode::kCorrupt;
  while (status.ok()) {
    const Result<size_t> n = decoder->Read(ctx.work);
    if (!n.ok()) {
      status = n.status();
    } else if (n.value() == 0) {
      break;
    } else {
      status = out.Write(ctx.work.first(n.value()));
    }
  }
  if (status.ok() && decoder->produced() != m.target_size) status = StatusCode::kCorrupt;
  decoder->~DeltaDecoder();
  OTA_TRY(status);
  return out.Finish();
}

}  // namespace ota
