#include "ota/package.hpp"

#include <cstring>

#include "ota/bytes.hpp"
#include "ota/codec/delta_format.hpp"

namespace ota {

namespace {

// Bits for the fields seen so far, to catch duplicates and missing ones.
enum FieldBit : uint32_t {
  kSeenTargetVersion = 1u << 0,
  kSeenTargetSize = 1u << 1,
  kSeenTargetSha = 1u << 2,
  kSeenSourceVersion = 1u << 3,
  kSeenSourceSize = 1u << 4,
  kSeenSourceSha = 1u << 5,
  kSeenCodec = 1u << 6,
  kSeenCounter = 1u << 7,
  kSeenFlags = 1u << 8,
  kSeenDescription = 1u << 9,
};
constexpr uint32_t kRequiredAlways =
    kSeenTargetVersion | kSeenTargetSize | kSeenTargetSha | kSeenCodec | kSeenCounter;
constexpr uint32_t kSourceFields = kSeenSourceVersion | kSeenSourceSize | kSeenSourceSha;

Status Refuse(PackageError* error, PackageError why, StatusCode code = StatusCode::kCorrupt) {
  *error = why;
  return code;
}

// A version field: 1..kVersionMax-1 bytes that IsValidVersion accepts once terminated.
bool CopyVersion(const uint8_t* value, uint32_t len, char (&out)[kVersionMax]) {
  if (len == 0 || len >= kVersionMax) return false;
  std::memcpy(out, value, len);
  out[len] = '\0';
  return IsValidVersion(out);
}

bool KnownCodec(uint8_t id, uint8_t format) {
  if (id == static_cast<uint8_t>(CodecId::kStored)) return format == 0;
  if (id == static_cast<uint8_t>(CodecId::kDelta)) return format == codec::kDeltaFormat;
  return false;
}

}  // namespace

const char* PackageErrorName(PackageError error) {
  switch (error) {
    case PackageError::kNone:
      return "none";
    case PackageError::kBadHeader:
      return "bad header";
    case PackageError::kFormatUnknown:
      return "unknown package format";
    case PackageError::kKindUnknown:
      return "unknown package kind";
    case PackageError::kBadField:
      return "invalid manifest field";
    case PackageError::kDuplicateField:
      return "duplicate manifest field";
    case PackageError::kMissingField:
      return "missing or misplaced manifest field";
    case PackageError::kUnknownCritical:
      return "unknown critical manifest field";
    case PackageError::kCodecUnknown:
      return "unknown codec";
    case PackageError::kBadLength:
      return "length does not match the header";
    case PackageError::kBadSignatureBlock:
      return "bad signature block";
  }
  return "unknown";
}

Result<uint32_t> ManifestExtent(ConstByteSpan header, PackageError* error) {
  *error = PackageError::kNone;
  if (header.size() < kPackageHeaderSize) return Refuse(error, PackageError::kBadLength);
  const uint8_t* h = header.data();
  if (LoadLe32(h) != kPackageMagic) return Refuse(error, PackageError::kBadHeader);
  // A newer format may lay out everything differently: nothing past the version is trusted.
  if (h[4] != kPackageFormat) {
    return Refuse(error, PackageError::kFormatUnknown, StatusCode::kUnsupported);
  }
  const uint32_t manifest_size = LoadLe16(h + 6);
  if (LoadLe32(h + 12) != 0 || manifest_size == 0 || manifest_size > kManifestMax) {
    return Refuse(error, PackageError::kBadHeader);
  }
  return kPackageHeaderSize + manifest_size;
}

Result<PackageManifest> ParseManifest(ConstByteSpan bytes, PackageError* error) {
  OTA_TRY_ASSIGN(const uint32_t extent, ManifestExtent(bytes, error));
  if (bytes.size() < extent) return Refuse(error, PackageError::kBadLength);
  const uint8_t* h = bytes.data();
  PackageManifest m;
  const uint8_t kind = h[5];
  if (kind != static_cast<uint8_t>(PackageKind::kFull) &&
      kind != static_cast<uint8_t>(PackageKind::kDiff)) {
    return Refuse(error, PackageError::kKindUnknown, StatusCode::kUnsupported);
  }
  m.kind = static_cast<PackageKind>(kind);
  m.manifest_size = extent - kPackageHeaderSize;
  m.payload_size = LoadLe32(h + 8);
  if (m.payload_size == 0) return Refuse(error, PackageError::kBadHeader);

  uint32_t seen = 0;
  uint32_t pos = kPackageHeaderSize;
  while (pos < extent) {
    if (extent - pos < 4) return Refuse(error, PackageError::kBadField);
    const uint16_t type = LoadLe16(h + pos);
    const uint32_t len = LoadLe16(h + pos + 2);
    pos += 4;
    if (len > extent - pos) return Refuse(error, PackageError::kBadField);
    const uint8_t* v = h + pos;
    pos += len;

    uint32_t bit = 0;
    bool valid = true;
    switch (type) {
      case kTlvTargetVersion:
        bit = kSeenTargetVersion;
        valid = CopyVersion(v, len, m.target_version);
        break;
      case kTlvTargetSize:
        bit = kSeenTargetSize;
        valid = len == 4 && (m.target_size = LoadLe32(v)) != 0;
        break;
      case kTlvTargetSha256:
        bit = kSeenTargetSha;
        valid = len == kSha256Size;
        if (valid) std::memcpy(m.target_sha256, v, kSha256Size);
        break;
      case kTlvSourceVersion:
        bit = kSeenSourceVersion;
        valid = CopyVersion(v, len, m.source_version);
        break;
      case kTlvSourceSize:
        bit = kSeenSourceSize;
        valid = len == 4 && (m.source_size = LoadLe32(v)) != 0;
        break;
      case kTlvSourceSha256:
        bit = kSeenSourceSha;
        valid = len == kSha256Size;
        if (valid) std::memcpy(m.source_sha256, v, kSha256Size);
        break;
      case kTlvCodec:
        bit = kSeenCodec;
        valid = len == 4 && LoadLe16(v + 2) == 0;
        if (valid && !KnownCodec(v[0], v[1])) {
          return Refuse(error, PackageError::kCodecUnknown, StatusCode::kUnsupported);
        }
        m.codec = static_cast<CodecId>(valid ? v[0] : 0);
        m.codec_format = valid ? v[1] : 0;
        break;
      case kTlvSecurityCounter:
        bit = kSeenCounter;
        valid = len == 4;
        if (valid) m.security_counter = LoadLe32(v);
        break;
      case kTlvFlags:
        bit = kSeenFlags;
        valid = len == 4 && (LoadLe32(v) & ~kPackageFlagsKnown) == 0;
        if (valid) m.flags = LoadLe32(v);
        break;
      case kTlvDescription:
        bit = kSeenDescription;
        valid = len <= kDescriptionMax;
        for (uint32_t i = 0; valid && i < len; ++i)
          valid = v[i] != 0;
        if (valid) std::memcpy(m.description, v, len);
        break;
      default:
        if ((type & kTlvCritical) != 0) {
          return Refuse(error, PackageError::kUnknownCritical, StatusCode::kUnsupported);
        }
        continue;  // an informational field from a newer writer
    }
    if (!valid) return Refuse(error, PackageError::kBadField);
    if ((seen & bit) != 0) return Refuse(error, PackageError::kDuplicateField);
    seen |= bit;
  }

  if ((seen & kRequiredAlways) != kRequiredAlways) {
    return Refuse(error, PackageError::kMissingField);
  }
  const uint32_t source = seen & kSourceFields;
  if (m.kind == PackageKind::kDiff ? source != kSourceFields : source != 0) {
    return Refuse(error, PackageError::kMissingField);
  }
  // A stored payload is the image: only a full package can be one, and sizes must agree.
  if (m.codec == CodecId::kStored &&
      (m.kind != PackageKind::kFull || m.payload_size != m.target_size)) {
    return Refuse(error, PackageError::kBadField);
  }
  *error = PackageError::kNone;
  return m;
}

Result<bool> HasSignatureBlock(const PackageManifest& manifest, uint32_t file_size,
                               PackageError* error) {
  const uint64_t unsigned_size = manifest.signed_size();
  if (file_size == unsigned_size) return false;
  if (file_size == unsigned_size + kSignatureBlockSize) return true;
  return Refuse(error, PackageError::kBadLength);
}

Result<SignatureBlock> ParseSignatureBlock(ConstByteSpan bytes, PackageError* error) {
  if (bytes.size() != kSignatureBlockSize) return Refuse(error, PackageError::kBadSignatureBlock);
  const uint8_t* b = bytes.data();
  SignatureBlock s;
  s.algorithm = b[4];
  s.der_length = LoadLe16(b + 6);
  if (LoadLe32(b) != kSignatureMagic || s.algorithm != kSignatureEcdsaP256Sha256 || b[5] != 0 ||
      s.der_length < 8 || s.der_length > kSignatureDerMax) {
    return Refuse(error, PackageError::kBadSignatureBlock);
  }
  std::memcpy(s.key_id, b + 8, kKeyIdSize);
  std::memcpy(s.der, b + 8 + kKeyIdSize, kSignatureDerMax);
  // Padding must be zero, so one package has exactly one byte form.
  for (uint32_t i = s.der_length; i < kSignatureDerMax; ++i) {
    if (s.der[i] != 0) return Refuse(error, PackageError::kBadSignatureBlock);
  }
  *error = PackageError::kNone;
  return s;
}

Result<PackageManifest> ReadManifest(const FlashArea& area, ByteSpan work, PackageError* error) {
  *error = PackageError::kNone;
  if (work.size() < kPackageHeaderSize + kManifestMax) return StatusCode::kInvalidArgument;
  if (area.size() < kPackageHeaderSize) return Refuse(error, PackageError::kBadLength);
  OTA_TRY(area.Read(0, work.first(kPackageHeaderSize)));
  OTA_TRY_ASSIGN(const uint32_t extent, ManifestExtent(work.first(kPackageHeaderSize), error));
  if (area.size() < extent) return Refuse(error, PackageError::kBadLength);
  OTA_TRY(
      area.Read(kPackageHeaderSize, work.subspan(kPackageHeaderSize, extent - kPackageHeaderSize)));
  return ParseManifest(work.first(extent), error);
}

}  // namespace ota
