// The installer for signed packages (docs/spec/package.md): authenticates the package in the
// download region with the loader's trusted keys, checks it against the running image and the
// boot state, and writes the new image by running the package's codec.
#pragma once

#include <cstdint>

#include "ota/codec/delta_decoder.hpp"
#include "ota/installer.hpp"
#include "ota/package.hpp"
#include "ota/signature.hpp"
#include "ota/span.hpp"

namespace ota {

struct PackagePolicy {
  Span<const TrustedKey> keys;
  // Only host tools set this (`ota apply` without --pub); the loader never does.
  bool accept_unsigned = false;
};

class PackageInstaller final : public Installer {
 public:
  explicit PackageInstaller(const PackagePolicy& policy) : policy_(policy) {}

  Result<PackageInfo> Check(const InstallerContext& ctx, FailReason* reason) override;
  Result<PackageInfo> Inspect(const InstallerContext& ctx, FailReason* reason) override;
  Status Apply(const InstallerContext& ctx, const FlashArea& old, SlotWriter& out) override;

  // What the last Check/Inspect read, for host tools that explain a refusal.
  const PackageManifest& manifest() const { return manifest_; }
  PackageError package_error() const { return package_error_; }

 private:
  // Structure, length and signature; sets `permissions` to the signing key's.
  Status Authenticate(const InstallerContext& ctx, FailReason* reason, uint32_t* permissions);
  Result<PackageInfo> Info(const InstallerContext& ctx, uint32_t permissions,
                           FailReason* reason) const;
  Status CheckCodecHeader(const FlashArea& staged, ByteSpan work) const;

  // The last signature that verified (see Authenticate).
  struct Verified {
    bool valid = false;
    const TrustedKey* signer = nullptr;
    Sha256Digest digest = {};
    uint8_t der[kSignatureDerMax] = {};
    uint32_t der_length = 0;
  };

  PackagePolicy policy_;
  Verified verified_;
  PackageManifest manifest_;
  PackageError package_error_ = PackageError::kNone;
  // The decoder lives here, not on the loader's small stack (kDeltaDecoderRamBudget).
  alignas(codec::DeltaDecoder) uint8_t decoder_storage_[sizeof(codec::DeltaDecoder)];
};

}  // namespace ota
