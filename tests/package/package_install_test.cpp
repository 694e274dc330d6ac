// Signed packages through the loader on the emulated FIRE board: round trips on synthetic and
// real firmware, and one test per refusal, each checking the reason (and its IoTDA code) and
// that the running slot is byte-for-byte what it was.
#include <gtest/gtest.h>

#include "ota/otp_counter.hpp"

#include <cstring>

#include "ota/bytes.hpp"
#include "ota/host/image_builder.hpp"
#include "ota/host/package_apply.hpp"
#include "ota/package.hpp"
#include "ota/sha256.hpp"
#include "sim_board.hpp"
#include "test_images.hpp"
#include "test_packages.hpp"

namespace ota::testing {
namespace {

const BoardProfile& kBoard = kStm32f429Fire;

uint32_t LoadAddress() {
  return kBoard.internal_base + kBoard.partition(PartitionId::kRunning).offset;
}

// Offset of the value of the first TLV of `type` in a package's manifest.
size_t TlvValue(const std::vector<uint8_t>& pkg, uint16_t type) {
  const size_t end = kPackageHeaderSize + LoadLe16(&pkg[6]);
  for (size_t pos = kPackageHeaderSize; pos + 4 <= end;) {
    const uint16_t t = LoadLe16(&pkg[pos]);
    const size_t len = LoadLe16(&pkg[pos + 2]);
    if (t == type) return pos + 4;
    pos += 4 + len;
  }
  ADD_FAILURE() << "no TLV " << type;
  return 0;
}

// Inserts a TLV at the end of the manifest (fixing manifest_size); the signature is dropped.
std::vector<uint8_t> WithExtraTlv(const std::vector<uint8_t>& pkg, uint16_t type,
                                  std::vector<uint8_t> value) {
  std::vector<uint8_t> unsigned_pkg(pkg.begin(), pkg.end() - kSignatureBlockSize);
  const uint16_t manifest = LoadLe16(&unsigned_pkg[6]);
  std::vector<uint8_t> tlv(4);
  StoreLe16(&tlv[0], type);
  StoreLe16(&tlv[2], static_cast<uint16_t>(value.size()));
  tlv.insert(tlv.end(), value.begin(), value.end());
  unsigned_pkg.insert(unsigned_pkg.begin() + kPackageHeaderSize + manifest, tlv.begin(), tlv.end());
  StoreLe16(&unsigned_pkg[6], static_cast<uint16_t>(manifest + tlv.size()));
  unsigned_pkg.resize(unsigned_pkg.size() + kSignatureBlockSize);  // Resign drops this
  return unsigned_pkg;
}

class PackageInstall : public ::testing::Test {
 protected:
  PackageInstall()
      : v1_(MakeTestImage("FOTAV1", 40000, LoadAddress(), 1)),
        v2_(MakeTestImage("FOTAV2", 43000, LoadAddress(), 2)) {
    // v2 shares most of v1, as a real new version would.
    std::copy(v1_.begin() + 0x400, v1_.begin() + 30000, v2_.begin() + 0x400);
    v2_ = Restamp(v2_, "FOTAV2");
  }

  static std::vector<uint8_t> Restamp(std::vector<uint8_t> image, const char* version) {
    image.resize(image.size() - kImageTrailerSize);
    std::fill(image.begin() + kImageHeaderOffset,
              image.begin() + kImageHeaderOffset + kImageHeaderSize, 0);
    host::StampResult s = host::StampImage(std::move(image), version, LoadAddress());
    EXPECT_TRUE(s.error.empty()) << s.error;
    return s.image;
  }

  host::PackageSpec Full(const std::vector<uint8_t>& image, const char* version) const {
    host::PackageSpec spec;
    spec.kind = PackageKind::kFull;
    spec.version = version;
    spec.image = image;
    spec.profile = &kBoard;
    return spec;
  }
  host::PackageSpec Diff(const std::vector<uint8_t>& from, const char* from_version,
                         const std::vector<uint8_t>& to, const char* version) const {
    host::PackageSpec spec = Full(to, version);
    spec.kind = PackageKind::kDiff;
    spec.source = from;
    spec.from_version = from_version;
    return spec;
  }

  // Stages `pkg` on a board running `running` and boots once.
  BootRecord Install(const std::vector<uint8_t>& running, const std::vector<uint8_t>& pkg,
                     uint32_t counter = 0) {
    board_.FlashRunning(running);
    if (counter != 0) SetCounter(counter);
    EXPECT_TRUE(board_.Stage(pkg, "FOTAV2").ok());
    before_ = board_.RunningSlot();
    const Result<BootDecision> d = board_.Boot(installer_);
    EXPECT_TRUE(d.ok()) << d.status().name();
    return d.ok() ? d->record : BootRecord{};
  }

  // The board's anti-rollback counter lives in OTP: burn it up to `counter`.
  void SetCounter(uint32_t counter) {
    OtpCounter otp(board_.flash().otp, kBoard);
    ASSERT_TRUE(otp.Raise(counter).ok());
  }

  // The app confirms the image on trial and the board powers on again.
  BootDecision ConfirmAndBoot() {
    EXPECT_TRUE(board_.Confirm().ok());
    const Result<BootDecision> d = board_.Boot(installer_);
    EXPECT_TRUE(d.ok()) << d.status().name();
    return d.ok() ? d.value() : BootDecision{};
  }

  // A refusal: the reason and its IoTDA code, and not one byte of the slot changed.
  void ExpectRefused(const BootRecord& r, FailReason reason, int iotda) {
    EXPECT_EQ(r.status, UpgradeStatus::kUpgradedFailed);
    EXPECT_EQ(FailReasonName(r.reason), std::string(FailReasonName(reason)));
    EXPECT_EQ(IotdaResultCode(r.reason), iotda);
    EXPECT_TRUE(board_.RunningSlot() == before_) << "the running slot was touched";
  }

  void ExpectInstalled(const BootRecord& r, const std::vector<uint8_t>& image) {
    EXPECT_EQ(r.status, UpgradeStatus::kUpgradedOk) << FailReasonName(r.reason);
    EXPECT_TRUE(board_.RunningHolds(image));
  }

  TestKey key_;
  TestKey downgrade_key_{kKeyMayDowngrade};
  TrustedKey keys_[2] = {key_.trusted(), downgrade_key_.trusted()};
  PackageInstaller installer_{PackagePolicy{Span<const TrustedKey>(keys_), false}};
  SimBoard board_{kBoard};
  std::vector<uint8_t> v1_, v2_, before_;
};

TEST_F(PackageInstall, FullPackage_Signed_InstallsAndBoots) {
  const auto pkg = MakePackage(Full(v2_, "FOTAV2"), &key_);
  ExpectInstalled(Install(v1_, pkg), v2_);
}

TEST_F(PackageInstall, FullPackage_Stored_InstallsAndBoots) {
  host::PackageSpec spec = Full(v2_, "FOTAV2");
  spec.codec = CodecId::kStored;
  ExpectInstalled(Install(v1_, MakePackage(spec, &key_)), v2_);
}

TEST_F(PackageInstall, FullPackage_OnBlankBoard_Installs) {
  const auto pkg = MakePackage(Full(v2_, "FOTAV2"), &key_);
  board_.FlashRunning({});
  ASSERT_TRUE(board_.Stage(pkg, "FOTAV2").ok());
  const Result<BootDecision> d = board_.Boot(installer_);
  ASSERT_TRUE(d.ok());
  ExpectInstalled(d->record, v2_);
}

TEST_F(PackageInstall, DiffPackage_Signed_InstallsAndBoots) {
  const auto pkg = MakePackage(Diff(v1_, "FOTAV1", v2_, "FOTAV2"), &key_);
  EXPECT_LT(pkg.size(), v2_.size() / 2);
  ExpectInstalled(Install(v1_, pkg), v2_);
}

TEST_F(PackageInstall, SecurityCounter_BurntIntoOtpOnlyWhenConfirmed) {
  host::PackageSpec spec = Full(v2_, "FOTAV2");
  spec.security_counter = 7;
  const BootRecord r = Install(v1_, MakePackage(spec, &key_), 3);
  ExpectInstalled(r, v2_);
  // On trial: the trust record knows the counter; OTP does not have it yet.
  EXPECT_EQ(board_.Trust()->trial.security_counter, 7u);
  EXPECT_EQ(board_.OtpCounterValue().value(), 3u);
  const BootDecision d = ConfirmAndBoot();
  EXPECT_EQ(d.security_counter, 7u);
  EXPECT_EQ(board_.OtpCounterValue().value(), 7u);
  EXPECT_EQ(d.record.security_counter, 7u) << "the boot state's copy for the app";
}

// Real firmware (../shared/firmware-pairs), as app images: full and diff, through the loader.
TEST_F(PackageInstall, RealPairs_FullAndDiff_InstallExactly) {
  for (const char* pair :
       {"p2_pybv11_stm32f405_v1.10.old.bin|p2_pybv11_stm32f405_1f5d945af-dirty.new.bin",
        "p3_detools_shell_cortexm4.old.bin|p3_detools_shell_cortexm4.new.bin"}) {
    const std::string names(pair);
    const std::string old_name = names.substr(0, names.find('|'));
    const std::string new_name = names.substr(names.find('|') + 1);
    SCOPED_TRACE(new_name);
    const auto old_image = RealFirmwareImage(old_name, "FOTAV1", LoadAddress());
    const auto new_image = RealFirmwareImage(new_name, "FOTAV2", LoadAddress());
    ASSERT_TRUE(old_image && new_image) << "../shared/firmware-pairs is missing " << new_name;
    const auto diff = MakePackage(Diff(*old_image, "FOTAV1", *new_image, "FOTAV2"), &key_);
    ExpectInstalled(Install(*old_image, diff), *new_image);
    const auto full = MakePackage(Full(*new_image, "FOTAV2"), &key_);
    ExpectInstalled(Install(*old_image, full), *new_image);
    EXPECT_LT(diff.size(), full.size());
    // The host's `ota apply` path gives the same image.
    host::ApplyOptions options;
    options.keys = {key_.trusted()};
    const host::ApplyResult applied = host::ApplyPackage(diff, *old_image, options);
    EXPECT_TRUE(applied.installed) << applied.error;
    EXPECT_TRUE(applied.image == *new_image);
  }
}

TEST_F(PackageInstall, RealFirmwareLargerThanSlot_PackRefuses) {
  const auto big =
      RealFirmwareImage("p1_esp8266_micropython_v1.10.new.bin", "FOTAV2", LoadAddress());
  ASSERT_TRUE(big.has_value());
  const host::PackResult r = host::BuildPackage(Full(*big, "FOTAV2"));
  EXPECT_NE(r.error.find("larger than"), std::string::npos) << r.error;
  EXPECT_TRUE(r.package.empty());
}

TEST_F(PackageInstall, TamperedHeader_RefusedBadSignature) {
  auto pkg = MakePackage(Full(v2_, "FOTAV2"), &key_);
  pkg[TlvValue(pkg, kTlvTargetVersion) + 4] ^= 0x01;  // "FOTAV2" -> "FOTAV3"
  ExpectRefused(Install(v1_, pkg), FailReason::kBadSignature, 7);
}

TEST_F(PackageInstall, TamperedPayload_RefusedBadSignature) {
  auto pkg = MakePackage(Diff(v1_, "FOTAV1", v2_, "FOTAV2"), &key_);
  pkg[pkg.size() - kSignatureBlockSize - 10] ^= 0x40;
  ExpectRefused(Install(v1_, pkg), FailReason::kBadSignature, 7);
}

TEST_F(PackageInstall, TamperedSignature_RefusedBadSignature) {
  auto pkg = MakePackage(Full(v2_, "FOTAV2"), &key_);
  pkg[pkg.size() - kSignatureDerMax + 10] ^= 0x01;  // inside the DER's r or s
  ExpectRefused(Install(v1_, pkg), FailReason::kBadSignature, 7);
}

TEST_F(PackageInstall, WrongKey_RefusedBadSignature) {
  TestKey stranger;
  ExpectRefused(Install(v1_, MakePackage(Full(v2_, "FOTAV2"), &stranger)),
                FailReason::kBadSignature, 7);
}

TEST_F(PackageInstall, Unsigned_RefusedBadSignature) {
  ExpectRefused(Install(v1_, MakePackage(Full(v2_, "FOTAV2"), nullptr)), FailReason::kBadSignature,
                7);
}

TEST_F(PackageInstall, Truncated_RefusedInvalid) {
  auto pkg = MakePackage(Full(v2_, "FOTAV2"), &key_);
  pkg.pop_back();
  ExpectRefused(Install(v1_, pkg), FailReason::kPackageInvalid, 7);
  pkg.resize(100);
  ExpectRefused(Install(v1_, pkg), FailReason::kPackageInvalid, 7);
}

TEST_F(PackageInstall, Downgrade_RefusedBelowCounter) {
  host::PackageSpec spec = Full(v2_, "FOTAV2");
  spec.security_counter = 3;
  ExpectRefused(Install(v1_, MakePackage(spec, &key_), 5), FailReason::kDowngrade, 7);
}

TEST_F(PackageInstall, DowngradeFlag_FromOrdinaryKey_Refused) {
  host::PackageSpec spec = Full(v2_, "FOTAV2");
  spec.security_counter = 3;
  spec.allow_downgrade = true;
  ExpectRefused(Install(v1_, MakePackage(spec, &key_), 5), FailReason::kDowngrade, 7);
}

TEST_F(PackageInstall, DowngradeFlag_FromDowngradeKey_InstallsButOtpNeverLowers) {
  host::PackageSpec spec = Full(v2_, "FOTAV2");
  spec.security_counter = 3;
  spec.allow_downgrade = true;
  const BootRecord r = Install(v1_, MakePackage(spec, &downgrade_key_), 5);
  ExpectInstalled(r, v2_);
  const BootDecision d = ConfirmAndBoot();
  EXPECT_EQ(d.security_counter, 5u);
  EXPECT_EQ(board_.OtpCounterValue().value(), 5u) << "OTP bits cannot be set back";
  // An ordinary package must still reach the counter OTP holds.
  host::PackageSpec next = Full(Restamp(v1_, "FOTAV3"), "FOTAV3");
  next.security_counter = 4;
  ASSERT_TRUE(board_.Stage(MakePackage(next, &key_), "FOTAV3").ok());
  before_ = board_.RunningSlot();
  const Result<BootDecision> refused = board_.Boot(installer_);
  ASSERT_TRUE(refused.ok());
  ExpectRefused(refused->record, FailReason::kDowngrade, 7);
}

TEST_F(PackageInstall, DiffAgainstWrongRunningImage_RefusedWrongSource) {
  const auto other = MakeTestImage("FOTAV1", 40000, LoadAddress(), 99);
  const auto pkg = MakePackage(Diff(v1_, "FOTAV1", v2_, "FOTAV2"), &key_);
  ExpectRefused(Install(other, pkg), FailReason::kWrongSource, 7);
}

TEST_F(PackageInstall, UnknownCriticalField_RefusedUnsupported) {
  auto pkg = MakePackage(Full(v2_, "FOTAV2"), &key_);
  pkg = Resign(WithExtraTlv(pkg, 0x80F0, {1, 2, 3}), key_);
  ExpectRefused(Install(v1_, pkg), FailReason::kUnsupported, 8);
}

TEST_F(PackageInstall, UnknownInformationalField_Skipped) {
  auto pkg = MakePackage(Full(v2_, "FOTAV2"), &key_);
  pkg = Resign(WithExtraTlv(pkg, 0x00F0, {1, 2, 3}), key_);
  ExpectInstalled(Install(v1_, pkg), v2_);
}

TEST_F(PackageInstall, UnknownCodec_RefusedUnsupported) {
  auto pkg = MakePackage(Full(v2_, "FOTAV2"), &key_);
  pkg[TlvValue(pkg, kTlvCodec)] = 9;
  ExpectRefused(Install(v1_, Resign(pkg, key_)), FailReason::kUnsupported, 8);
}

TEST_F(PackageInstall, TargetLargerThanSlot_RefusedTooLarge) {
  auto pkg = MakePackage(Full(v2_, "FOTAV2"), &key_);
  StoreLe32(&pkg[TlvValue(pkg, kTlvTargetSize)], kBoard.partition(PartitionId::kRunning).size + 1);
  ExpectRefused(Install(v1_, Resign(pkg, key_)), FailReason::kTooLarge, 5);
}

// A signed package whose codec stream makes other bytes than the manifest promises: the
// loader finds out only after writing, and must put the old image back.
TEST_F(PackageInstall, TargetHashMismatchAfterApply_RecoversOldImage) {
  auto v2x = v2_;
  v2x[20000] ^= 0xFF;
  v2x = Restamp(v2x, "FOTAV2");
  const auto honest = MakePackage(Diff(v1_, "FOTAV1", v2_, "FOTAV2"), &key_);
  const auto other = MakePackage(Diff(v1_, "FOTAV1", v2x, "FOTAV2"), nullptr);
  PackageError e;
  const Result<PackageManifest> mh = ParseManifest(ConstByteSpan(honest.data(), 600), &e);
  const Result<PackageManifest> mo = ParseManifest(ConstByteSpan(other.data(), 600), &e);
  ASSERT_TRUE(mh.ok() && mo.ok());
  // The honest header and manifest, the other payload.
  std::vector<uint8_t> forged(honest.begin(), honest.begin() + mh->payload_offset());
  StoreLe32(&forged[8], mo->payload_size);
  forged.insert(forged.end(), other.begin() + mo->payload_offset(),
                other.begin() + mo->payload_offset() + mo->payload_size);
  forged.resize(forged.size() + kSignatureBlockSize);
  forged = Resign(forged, key_);
  ExpectRefused(Install(v1_, forged), FailReason::kTargetMismatch, 10);
  EXPECT_TRUE(board_.RunningHolds(v1_));
}

// ---- Images the loader could not start (docs/spec/image.md, "Vector table") ----

class BadVectorTable : public PackageInstall {
 protected:
  // A signed full package of `image` made without `ota pack`'s checks (which refuse it): the
  // manifest of an honest package of v2 (same size and version), the target's SHA-256 and a
  // payload of `image` itself.
  std::vector<uint8_t> ForgedFull(const std::vector<uint8_t>& image, CodecId codec) {
    host::PackageSpec spec = Full(v2_, "FOTAV2");
    spec.codec = codec;
    const auto honest = MakePackage(spec, nullptr);
    PackageError e;
    const Result<PackageManifest> m = ParseManifest(ConstByteSpan(honest.data(), 600), &e);
    EXPECT_TRUE(m.ok());
    if (!m.ok()) return {};
    const std::vector<uint8_t> payload =
        codec == CodecId::kStored ? image : host::EncodeDelta({}, image);
    std::vector<uint8_t> forged(honest.begin(), honest.begin() + m->payload_offset());
    StoreLe32(&forged[8], static_cast<uint32_t>(payload.size()));
    Sha256 sha;
    Sha256Digest digest;
    EXPECT_TRUE(sha.Update(ConstByteSpan(image.data(), image.size())).ok() &&
                sha.Finish(digest).ok());
    std::copy(digest, digest + kSha256Size, forged.begin() + TlvValue(forged, kTlvTargetSha256));
    forged.insert(forged.end(), payload.begin(), payload.end());
    forged.resize(forged.size() + kSignatureBlockSize);
    return Resign(forged, key_);
  }

  host::ApplyOptions Options() const {
    host::ApplyOptions options;
    options.keys = {key_.trusted()};
    options.profile = &kBoard;
    return options;
  }

  std::vector<uint8_t> bad_ = WithVectors(v2_, 0, LoadAddress() + 0x401);  // initial SP 0
};

TEST_F(BadVectorTable, PackRefusesTheImage) {
  const host::PackResult r = host::BuildPackage(Full(bad_, "FOTAV2"));
  EXPECT_TRUE(r.package.empty());
  EXPECT_NE(r.error.find("initial SP 0x00000000"), std::string::npos) << r.error;
  host::PackResult d = host::BuildPackage(Diff(bad_, "FOTAV2", v2_, "FOTAV2"));
  EXPECT_NE(d.error.find("old image: vector table"), std::string::npos) << d.error;
}

TEST_F(BadVectorTable, VerifyDecodesAFullPackageAndRefusesItsTarget) {
  for (const CodecId codec : {CodecId::kDelta, CodecId::kStored}) {
    SCOPED_TRACE(codec == CodecId::kDelta ? "delta" : "stored");
    const auto pkg = ForgedFull(bad_, codec);
    // The package itself is sound: signed, fits, hashes to what its manifest says.
    EXPECT_TRUE(host::VerifyPackage(pkg, Options()).valid);
    const host::TargetCheck t = host::CheckPackageTarget(pkg, Options());
    EXPECT_TRUE(t.checked);
    EXPECT_FALSE(t.bootable);
    EXPECT_NE(t.error.find("initial SP 0x00000000"), std::string::npos) << t.error;
  }
  const auto reset =
      ForgedFull(WithVectors(v2_, 0x20030000, LoadAddress() + 0x400), CodecId::kDelta);
  const host::TargetCheck t = host::CheckPackageTarget(reset, Options());
  EXPECT_FALSE(t.bootable);
  EXPECT_NE(t.error.find("reset vector"), std::string::npos) << t.error;
}

TEST_F(BadVectorTable, VerifyChecksAGoodFullTargetNotADiffs) {
  const host::TargetCheck full =
      host::CheckPackageTarget(ForgedFull(v2_, CodecId::kDelta), Options());
  EXPECT_TRUE(full.checked);
  EXPECT_TRUE(full.bootable) << full.error;
  const auto diff = MakePackage(Diff(v1_, "FOTAV1", v2_, "FOTAV2"), &key_);
  const host::TargetCheck d = host::CheckPackageTarget(diff, Options());
  EXPECT_FALSE(d.checked);
  EXPECT_TRUE(d.error.empty());
}

// What `ota verify` predicts: the loader installs the image, ValidateImage refuses it at the
// verify step, and the backup goes back.
TEST_F(BadVectorTable, LoaderInstallsThenRestoresTheOldImage) {
  const BootRecord r = Install(v1_, ForgedFull(bad_, CodecId::kDelta));
  EXPECT_EQ(r.status, UpgradeStatus::kUpgradedFailed);
  EXPECT_EQ(FailReasonName(r.reason), std::string(FailReasonName(FailReason::kTargetMismatch)));
  EXPECT_TRUE(board_.RunningHolds(v1_));
}

}  // namespace
}  // namespace ota::testing
