// The package parser on hand-made bytes: every field rule of docs/spec/package.md.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ota/bytes.hpp"
#include "ota/codec/delta_format.hpp"
#include "ota/package.hpp"

namespace ota {
namespace {

class Builder {
 public:
  Builder& Tlv(uint16_t type, std::vector<uint8_t> value) {
    tlvs_.push_back({type, std::move(value)});
    return *this;
  }
  Builder& Text(uint16_t type, const std::string& s) {
    return Tlv(type, std::vector<uint8_t>(s.begin(), s.end()));
  }
  Builder& U32(uint16_t type, uint32_t v) {
    std::vector<uint8_t> b(4);
    StoreLe32(b.data(), v);
    return Tlv(type, b);
  }
  // A valid full package's manifest.
  static Builder Full() {
    Builder b;
    b.Text(kTlvTargetVersion, "FOTAV2")
        .U32(kTlvTargetSize, 1000)
        .Tlv(kTlvTargetSha256, std::vector<uint8_t>(32, 0xAB))
        .Tlv(kTlvCodec, {1, codec::kDeltaFormat, 0, 0})
        .U32(kTlvSecurityCounter, 4);
    return b;
  }
  static Builder Diff() {
    Builder b = Full();
    b.kind = 2;
    b.Text(kTlvSourceVersion, "FOTAV1")
        .U32(kTlvSourceSize, 900)
        .Tlv(kTlvSourceSha256, std::vector<uint8_t>(32, 0xCD));
    return b;
  }
  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> m;
    for (const auto& [type, value] : tlvs_) {
      const size_t at = m.size();
      m.resize(at + 4);
      StoreLe16(&m[at], type);
      StoreLe16(&m[at + 2], static_cast<uint16_t>(value.size()));
      m.insert(m.end(), value.begin(), value.end());
    }
    std::vector<uint8_t> out(kPackageHeaderSize + m.size());
    std::copy(m.begin(), m.end(), out.begin() + kPackageHeaderSize);
    StoreLe32(&out[0], kPackageMagic);
    out[4] = format;
    out[5] = kind;
    StoreLe16(&out[6], static_cast<uint16_t>(m.size()));
    StoreLe32(&out[8], payload_size);
    return out;
  }

  uint8_t format = kPackageFormat;
  uint8_t kind = 1;
  uint32_t payload_size = 500;

 private:
  std::vector<std::pair<uint16_t, std::vector<uint8_t>>> tlvs_;
};

Result<PackageManifest> Parse(const std::vector<uint8_t>& bytes, PackageError* error) {
  return ParseManifest(ConstByteSpan(bytes.data(), bytes.size()), error);
}

PackageError ErrorOf(const Builder& b) {
  PackageError e = PackageError::kNone;
  const Result<PackageManifest> m = Parse(b.Bytes(), &e);
  EXPECT_FALSE(m.ok());
  return e;
}

TEST(Package, ValidFull_AllFieldsRead) {
  PackageError e;
  const Result<PackageManifest> m = Parse(Builder::Full().Bytes(), &e);
  ASSERT_TRUE(m.ok()) << PackageErrorName(e);
  EXPECT_EQ(m->kind, PackageKind::kFull);
  EXPECT_STREQ(m->target_version, "FOTAV2");
  EXPECT_EQ(m->target_size, 1000u);
  EXPECT_EQ(m->target_sha256[31], 0xAB);
  EXPECT_EQ(m->codec, CodecId::kDelta);
  EXPECT_EQ(m->security_counter, 4u);
  EXPECT_EQ(m->payload_size, 500u);
  EXPECT_EQ(m->signed_size(), m->payload_offset() + 500u);
}

TEST(Package, ValidDiff_SourceFieldsRead) {
  PackageError e;
  const Result<PackageManifest> m = Parse(Builder::Diff().Bytes(), &e);
  ASSERT_TRUE(m.ok()) << PackageErrorName(e);
  EXPECT_EQ(m->kind, PackageKind::kDiff);
  EXPECT_STREQ(m->source_version, "FOTAV1");
  EXPECT_EQ(m->source_size, 900u);
}

TEST(Package, Header_Rejected) {
  Builder b = Builder::Full();
  b.format = 2;
  EXPECT_EQ(ErrorOf(b), PackageError::kFormatUnknown);
  b = Builder::Full();
  b.kind = 3;
  EXPECT_EQ(ErrorOf(b), PackageError::kKindUnknown);
  b = Builder::Full();
  b.payload_size = 0;
  EXPECT_EQ(ErrorOf(b), PackageError::kBadHeader);
  auto bytes = Builder::Full().Bytes();
  bytes[12] = 1;  // reserved
  PackageError e;
  EXPECT_FALSE(Parse(bytes, &e).ok());
  EXPECT_EQ(e, PackageError::kBadHeader);
  bytes = Builder::Full().Bytes();
  bytes[0] ^= 1;
  EXPECT_FALSE(Parse(bytes, &e).ok());
  EXPECT_EQ(e, PackageError::kBadHeader);
}

TEST(Package, ManifestTooLarge_Rejected) {
  Builder b = Builder::Full();
  b.Tlv(0x0002, std::vector<uint8_t>(kManifestMax, 0));
  EXPECT_EQ(ErrorOf(b), PackageError::kBadHeader);
}

TEST(Package, Truncated_Rejected) {
  auto bytes = Builder::Full().Bytes();
  bytes.pop_back();
  PackageError e;
  EXPECT_FALSE(Parse(bytes, &e).ok());
  EXPECT_EQ(e, PackageError::kBadLength);
}

TEST(Package, FieldRules_Rejected) {
  EXPECT_EQ(ErrorOf(Builder::Full().Text(kTlvTargetVersion, "again")),
            PackageError::kDuplicateField);
  EXPECT_EQ(ErrorOf(Builder::Full().Tlv(0x80AA, {})), PackageError::kUnknownCritical);
  EXPECT_EQ(ErrorOf(Builder::Full().U32(kTlvFlags, 0x2)), PackageError::kBadField);
  EXPECT_EQ(ErrorOf(Builder::Full().Text(kTlvSourceVersion, "FOTAV1")),
            PackageError::kMissingField);  // source fields in a full package
  Builder missing;
  missing.Text(kTlvTargetVersion, "FOTAV2").U32(kTlvTargetSize, 1);
  EXPECT_EQ(ErrorOf(missing), PackageError::kMissingField);
  Builder diff_without_source = Builder::Full();
  diff_without_source.kind = 2;
  EXPECT_EQ(ErrorOf(diff_without_source), PackageError::kMissingField);
}

TEST(Package, BadValues_Rejected) {
  for (const std::string& v : {std::string(), std::string("FOTA V2"), std::string(32, 'A')}) {
    Builder b;
    b.Text(kTlvTargetVersion, v)
        .U32(kTlvTargetSize, 1000)
        .Tlv(kTlvTargetSha256, std::vector<uint8_t>(32, 0))
        .Tlv(kTlvCodec, {1, codec::kDeltaFormat, 0, 0})
        .U32(kTlvSecurityCounter, 0);
    EXPECT_EQ(ErrorOf(b), PackageError::kBadField) << "version '" << v << "'";
  }
  Builder short_sha;
  short_sha.Text(kTlvTargetVersion, "V")
      .U32(kTlvTargetSize, 1)
      .Tlv(kTlvTargetSha256, std::vector<uint8_t>(31, 0));
  EXPECT_EQ(ErrorOf(short_sha), PackageError::kBadField);
  Builder codec;
  codec.Tlv(kTlvCodec, {7, 0, 0, 0});
  EXPECT_EQ(ErrorOf(codec), PackageError::kCodecUnknown);
  Builder codec_format;
  codec_format.Tlv(kTlvCodec, {1, static_cast<uint8_t>(codec::kDeltaFormat + 1), 0, 0});
  EXPECT_EQ(ErrorOf(codec_format), PackageError::kCodecUnknown);
  // A TLV whose length runs past the manifest.
  auto bytes = Builder::Full().Bytes();
  StoreLe16(&bytes[kPackageHeaderSize + 2], 200);
  PackageError e;
  EXPECT_FALSE(Parse(bytes, &e).ok());
  EXPECT_EQ(e, PackageError::kBadField);
}

TEST(Package, UnknownInformationalField_Skipped) {
  PackageError e;
  EXPECT_TRUE(Parse(Builder::Full().Tlv(0x0042, {1, 2, 3}).Bytes(), &e).ok());
}

TEST(Package, StoredCodec_OnlyFullWithEqualSizes) {
  Builder ok;
  ok.Text(kTlvTargetVersion, "V")
      .U32(kTlvTargetSize, 500)
      .Tlv(kTlvTargetSha256, std::vector<uint8_t>(32, 0))
      .Tlv(kTlvCodec, {0, 0, 0, 0})
      .U32(kTlvSecurityCounter, 0);
  PackageError e;
  EXPECT_TRUE(Parse(ok.Bytes(), &e).ok());
  ok.payload_size = 501;
  EXPECT_EQ(ErrorOf(ok), PackageError::kBadField);
}

TEST(Package, SignatureBlockAndLength) {
  PackageError e;
  const Result<PackageManifest> m = Parse(Builder::Full().Bytes(), &e);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(HasSignatureBlock(*m, m->signed_size(), &e).value());
  EXPECT_TRUE(HasSignatureBlock(*m, m->signed_size() + kSignatureBlockSize, &e).value());
  EXPECT_FALSE(HasSignatureBlock(*m, m->signed_size() + 1, &e).ok());

  std::vector<uint8_t> block(kSignatureBlockSize, 0);
  StoreLe32(block.data(), kSignatureMagic);
  block[4] = kSignatureEcdsaP256Sha256;
  StoreLe16(&block[6], 70);
  EXPECT_TRUE(ParseSignatureBlock(ConstByteSpan(block.data(), block.size()), &e).ok());
  block[8 + kKeyIdSize + 71] = 1;  // padding after the DER must be zero
  EXPECT_FALSE(ParseSignatureBlock(ConstByteSpan(block.data(), block.size()), &e).ok());
  block[8 + kKeyIdSize + 71] = 0;
  StoreLe16(&block[6], 73);
  EXPECT_FALSE(ParseSignatureBlock(ConstByteSpan(block.data(), block.size()), &e).ok());
}

}  // namespace
}  // namespace ota
