#include "ota/host/package_builder.hpp"

#include <cstring>

#include "ota/bytes.hpp"
#include "ota/codec/delta_format.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/host/keys.hpp"
#include "ota/host/package_apply.hpp"
#include "ota/image.hpp"
#include "ota/sha256.hpp"

namespace ota::host {

namespace {

std::array<uint8_t, kSha256Size> Sha256Of(std::span<const uint8_t> bytes) {
  std::array<uint8_t, kSha256Size> out{};
  Sha256 sha;
  uint8_t digest[kSha256Size];
  if (sha.Update(ConstByteSpan(bytes.data(), bytes.size())).ok() && sha.Finish(digest).ok()) {
    std::memcpy(out.data(), digest, out.size());
  }
  return out;
}

class TlvWriter {
 public:
  void Bytes(uint16_t type, const void* data, size_t len) {
    const size_t at = out_.size();
    out_.resize(at + 4 + len);
    StoreLe16(&out_[at], type);
    StoreLe16(&out_[at + 2], static_cast<uint16_t>(len));
    if (len > 0) std::memcpy(&out_[at + 4], data, len);
  }
  void U32(uint16_t type, uint32_t value) {
    uint8_t raw[4];
    StoreLe32(raw, value);
    Bytes(type, raw, sizeof(raw));
  }
  void Text(uint16_t type, const std::string& s) { Bytes(type, s.data(), s.size()); }
  const std::vector<uint8_t>& bytes() const { return out_; }

 private:
  std::vector<uint8_t> out_;
};

std::string VersionError(const std::string& what, const std::string& version) {
  char buf[kVersionMax] = {};
  if (version.size() < kVersionMax) std::memcpy(buf, version.data(), version.size());
  if (version.size() >= kVersionMax || !IsValidVersion(buf)) {
    return what + " '" + version +
           "' is not a version string: 1-31 printable ASCII characters, no spaces";
  }
  return {};
}

}  // namespace

std::string CheckAppImage(std::span<const uint8_t> image, const BoardProfile& profile,
                          std::string* version) {
  const Partition& slot = profile.partition(PartitionId::kRunning);
  if (image.size() > slot.size) {
    return "image is " + std::to_string(image.size()) + " bytes, larger than the " +
           std::to_string(slot.size) + "-byte running slot of " + profile.name;
  }
  if (image.size() < kImageHeaderOffset + kImageHeaderSize + kImageTrailerSize) {
    return "not an app image: " + std::to_string(image.size()) + " bytes is too small";
  }
  uint8_t raw[kImageHeaderSize];
  std::memcpy(raw, image.data() + kImageHeaderOffset, kImageHeaderSize);
  const Result<ImageHeader> header = DecodeImageHeader(raw);
  if (!header.ok()) {
    return "not an app image: no valid image header at offset 0x200 (docs/spec/image.md)";
  }
  if (static_cast<uint64_t>(header->image_size) + kImageTrailerSize != image.size()) {
    return "not an app image: the header says " + std::to_string(header->image_size) +
           " bytes + trailer, the file has " + std::to_string(image.size());
  }
  const uint32_t load = profile.internal_base + slot.offset;
  if (header->load_address != load) {
    char buf[80];
    std::snprintf(buf, sizeof(buf), "image is linked for 0x%08X, the running slot is at 0x%08X",
                  header->load_address, load);
    return buf;
  }
  const auto digest = Sha256Of(image.first(header->image_size));
  if (std::memcmp(digest.data(), image.data() + header->image_size, kSha256Size) != 0) {
    return "not an app image: its SHA-256 trailer does not match its contents";
  }
  if (std::string e = VectorTableError(image, load, header->image_size); !e.empty()) return e;
  *version = header->version;
  return {};
}

PackResult BuildPackage(const PackageSpec& spec) {
  PackResult result;
  const bool diff = spec.kind == PackageKind::kDiff;
  if (std::string e = VersionError("--version", spec.version); !e.empty()) {
    result.error = e;
    return result;
  }
  if (diff) {
    if (std::string e = VersionError("--from-version", spec.from_version); !e.empty()) {
      result.error = e;
      return result;
    }
  }
  std::string image_version;
  if (std::string e = CheckAppImage(spec.image, *spec.profile, &image_version); !e.empty()) {
    result.error = "new image: " + e;
    return result;
  }
  if (image_version != spec.version) {
    result.error = "new image: its header says version " + image_version + ", not " + spec.version;
    return result;
  }
  if (diff) {
    std::string source_version;
    if (std::string e = CheckAppImage(spec.source, *spec.profile, &source_version); !e.empty()) {
      result.error = "old image: " + e;
      return result;
    }
    if (source_version != spec.from_version) {
      result.error =
          "old image: its header says version " + source_version + ", not " + spec.from_version;
      return result;
    }
    if (spec.source.size() == spec.image.size() &&
        std::memcmp(spec.source.data(), spec.image.data(), spec.image.size()) == 0) {
      result.error = "old and new images are identical: there is nothing to update";
      return result;
    }
  }
  if (spec.description.size() > kDescriptionMax ||
      spec.description.find('\0') != std::string::npos) {
    result.error = "description is longer than " + std::to_string(kDescriptionMax) + " bytes";
    return result;
  }
  if (diff && spec.codec != CodecId::kDelta) {
    result.error = "a diff package needs the delta codec";
    return result;
  }

  std::vector<uint8_t> payload;
  uint8_t codec_format = 0;
  if (spec.codec == CodecId::kStored) {
    payload = spec.image;
  } else {
    const std::span<const uint8_t> old =
        diff ? std::span<const uint8_t>(spec.source) : std::span<const uint8_t>();
    payload = EncodeDelta(old, spec.image, &result.stats);
    codec_format = codec::kDeltaFormat;
  }

  TlvWriter tlv;
  tlv.Text(kTlvTargetVersion, spec.version);
  tlv.U32(kTlvTargetSize, static_cast<uint32_t>(spec.image.size()));
  const auto target_sha = Sha256Of(spec.image);
  tlv.Bytes(kTlvTargetSha256, target_sha.data(), target_sha.size());
  if (diff) {
    tlv.Text(kTlvSourceVersion, spec.from_version);
    tlv.U32(kTlvSourceSize, static_cast<uint32_t>(spec.source.size()));
    const auto source_sha = Sha256Of(spec.source);
    tlv.Bytes(kTlvSourceSha256, source_sha.data(), source_sha.size());
  }
  const uint8_t codec[4] = {static_cast<uint8_t>(spec.codec), codec_format, 0, 0};
  tlv.Bytes(kTlvCodec, codec, sizeof(codec));
  tlv.U32(kTlvSecurityCounter, spec.security_counter);
  if (spec.allow_downgrade) tlv.U32(kTlvFlags, kPackageFlagAllowDowngrade);
  if (!spec.description.empty()) tlv.Text(kTlvDescription, spec.description);

  std::vector<uint8_t>& out = result.package;
  out.resize(kPackageHeaderSize);
  StoreLe32(&out[0], kPackageMagic);
  out[4] = kPackageFormat;
  out[5] = static_cast<uint8_t>(spec.kind);
  StoreLe16(&out[6], static_cast<uint16_t>(tlv.bytes().size()));
  StoreLe32(&out[8], static_cast<uint32_t>(payload.size()));
  out.insert(out.end(), tlv.bytes().begin(), tlv.bytes().end());
  out.insert(out.end(), payload.begin(), payload.end());

  // The package must install exactly the target through the device's own code, or no file.
  ApplyOptions check;
  check.profile = spec.profile;
  const ApplyResult applied = ApplyPackage(
      out, diff ? std::span<const uint8_t>(spec.source) : std::span<const uint8_t>(), check);
  if (!applied.installed || applied.image != spec.image) {
    result.error = "internal error: the package does not reproduce the new image (" +
                   (applied.error.empty() ? std::string("different bytes") : applied.error) + ")";
    result.package.clear();
  }
  return result;
}

SignResult SignPackage(std::span<const uint8_t> unsigned_package, EVP_PKEY* key) {
  SignResult result;
  PackageError error = PackageError::kNone;
  const ConstByteSpan bytes(unsigned_package.data(), unsigned_package.size());
  const Result<PackageManifest> m =
      ParseManifest(bytes.first(kPackageHeaderSize + kManifestMax), &error);
  if (!m.ok()) {
    result.error = std::string("not a valid package: ") + PackageErrorName(error);
    return result;
  }
  const Result<bool> is_signed =
      HasSignatureBlock(m.value(), static_cast<uint32_t>(unsigned_package.size()), &error);
  if (!is_signed.ok()) {
    result.error = std::string("not a valid package: ") + PackageErrorName(error);
    return result;
  }
  if (is_signed.value()) {
    result.error = "the package is already signed";
    return result;
  }
  const auto digest = Sha256Of(unsigned_package);
  uint8_t raw_digest[kSha256Size];
  std::memcpy(raw_digest, digest.data(), kSha256Size);
  const std::vector<uint8_t> der = SignDigest(key, raw_digest);
  if (der.empty() || der.size() > kSignatureDerMax) {
    result.error = "signing failed: " + OpensslError();
    return result;
  }
  const KeyId id = KeyIdOf(PublicPointOf(key));
  uint8_t block[kSignatureBlockSize] = {};
  StoreLe32(block, kSignatureMagic);
  block[4] = kSignatureEcdsaP256Sha256;
  StoreLe16(block + 6, static_cast<uint16_t>(der.size()));
  std::memcpy(block + 8, id.data(), id.size());
  std::memcpy(block + 8 + kKeyIdSize, der.data(), der.size());
  result.package.assign(unsigned_package.begin(), unsigned_package.end());
  result.package.insert(result.package.end(), block, block + sizeof(block));
  return result;
}

}  // namespace ota::host
