// The update package format (docs/spec/package.md): a fixed header, a manifest of TLV fields,
// the codec payload and an ECDSA P-256 signature block. This module only parses and checks
// structure; signatures are ota/signature.hpp, installation is ota/package_installer.hpp.
#pragma once

#include <cstdint>

#include "ota/flash_area.hpp"
#include "ota/image.hpp"
#include "ota/sha256.hpp"
#include "ota/span.hpp"
#include "ota/status.hpp"

namespace ota {

inline constexpr uint32_t kPackageMagic = 0x5041544F;  // bytes "OTAP"
inline constexpr uint8_t kPackageFormat = 1;
inline constexpr uint32_t kPackageHeaderSize = 16;
// Header (little-endian): 0 u32 magic, 4 u8 format, 5 u8 kind, 6 u16 manifest_size,
// 8 u32 payload_size, 12 u32 reserved (0).
inline constexpr uint32_t kManifestMax = 512;  // bytes; bounds what a reader must hold

enum class PackageKind : uint8_t { kFull = 1, kDiff = 2 };

// Manifest TLV: u16 type, u16 length, then `length` bytes. Types with kTlvCritical set must be
// understood by the reader, or the package is refused; others may be skipped.
inline constexpr uint16_t kTlvCritical = 0x8000;
enum TlvType : uint16_t {
  kTlvTargetVersion = 0x8001,    // 1..31 bytes, no NUL (IsValidVersion)
  kTlvTargetSize = 0x8002,       // u32
  kTlvTargetSha256 = 0x8003,     // 32 bytes
  kTlvSourceVersion = 0x8004,    // diff only
  kTlvSourceSize = 0x8005,       // diff only, u32
  kTlvSourceSha256 = 0x8006,     // diff only, 32 bytes
  kTlvCodec = 0x8007,            // u8 codec id, u8 codec format, u16 reserved (0)
  kTlvSecurityCounter = 0x8008,  // u32
  kTlvFlags = 0x8009,            // u32, bits of kPackageFlag*
  kTlvDescription = 0x0001,      // free text, 0..kDescriptionMax bytes (informational)
};
inline constexpr uint32_t kDescriptionMax = 64;

enum class CodecId : uint8_t {
  kStored = 0,  // the payload is the image itself (full packages only)
  kDelta = 1,   // ota::codec delta stream (docs/spec/delta.md); empty old image for full
};

inline constexpr uint32_t kPackageFlagAllowDowngrade = 0x1;
inline constexpr uint32_t kPackageFlagsKnown = kPackageFlagAllowDowngrade;

// The signature block that follows the payload in a signed package.
inline constexpr uint32_t kSignatureMagic = 0x4753544F;  // bytes "OTSG"
inline constexpr uint8_t kSignatureEcdsaP256Sha256 = 1;
inline constexpr uint32_t kKeyIdSize = 32;        // SHA-256 of the 65-byte public point
inline constexpr uint32_t kSignatureDerMax = 72;  // DER ECDSA P-256 signature, at most
inline constexpr uint32_t kSignatureBlockSize = 8 + kKeyIdSize + kSignatureDerMax;
// Block: 0 u32 magic, 4 u8 algorithm, 5 u8 reserved (0), 6 u16 der_length,
// 8 key_id[32], 40 der[72] (zero after der_length).

struct PackageManifest {
  PackageKind kind = PackageKind::kFull;
  uint32_t manifest_size = 0;
  uint32_t payload_size = 0;
  char target_version[kVersionMax] = {};
  uint32_t target_size = 0;
  Sha256Digest target_sha256 = {};
  char source_version[kVersionMax] = {};  // diff only
  uint32_t source_size = 0;               // diff only
  Sha256Digest source_sha256 = {};        // diff only
  CodecId codec = CodecId::kDelta;
  uint8_t codec_format = 0;
  uint32_t security_counter = 0;
  uint32_t flags = 0;
  char description[kDescriptionMax + 1] = {};

  uint32_t payload_offset() const { return kPackageHeaderSize + manifest_size; }
  // Bytes covered by the signature: header, manifest and payload.
  uint32_t signed_size() const { return payload_offset() + payload_size; }
};

struct SignatureBlock {
  uint8_t algorithm = 0;
  uint8_t key_id[kKeyIdSize] = {};
  uint8_t der[kSignatureDerMax] = {};
  uint32_t der_length = 0;
};

// Why a structurally bad package was refused, for error messages and reason codes.
enum class PackageError : uint8_t {
  kNone,
  kBadHeader,        // magic, reserved bytes or sizes
  kFormatUnknown,    // a newer package format
  kKindUnknown,      // neither full nor diff
  kBadField,         // a TLV of the wrong length or with an invalid value
  kDuplicateField,   // a TLV given twice
  kMissingField,     // a required TLV is absent (or present where it must not be)
  kUnknownCritical,  // a critical TLV this reader does not know
  kCodecUnknown,     // a codec or codec format this reader does not know
  kBadLength,        // the file's length is not header + manifest + payload [+ signature]
  kBadSignatureBlock,
};
const char* PackageErrorName(PackageError error);

// Parses the header and manifest from the first bytes of a package. `bytes` must hold at
// least kPackageHeaderSize bytes, and the whole manifest once the header is known (callers
// read the header, then header + manifest_size). Checks every field; does not check lengths
// against a file or the signature.
Result<PackageManifest> ParseManifest(ConstByteSpan bytes, PackageError* error);

// Header only: how many bytes ParseManifest needs (kPackageHeaderSize + manifest_size).
Result<uint32_t> ManifestExtent(ConstByteSpan header, PackageError* error);

// Whether a package of `file_size` bytes with this manifest is signed (has the block), or an
// error when the length fits neither form.
Result<bool> HasSignatureBlock(const PackageManifest& manifest, uint32_t file_size,
                               PackageError* error);

Result<SignatureBlock> ParseSignatureBlock(ConstByteSpan bytes, PackageError* error);

// Reads and parses header + manifest from the start of `area` through `work` (which must hold
// kPackageHeaderSize + kManifestMax bytes).
Result<PackageManifest> ReadManifest(const FlashArea& area, ByteSpan work, PackageError* error);

}  // namespace ota
