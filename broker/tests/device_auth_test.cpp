// The IoTDA login rules and topic confinement, and the sealed credential store.
#include <gtest/gtest.h>

#include <filesystem>

#include "ota/broker/credential_store.hpp"
#include "ota/broker/device_auth.hpp"
#include "ota/broker/secret_box.hpp"
#include "temp_dir.hpp"

namespace ota::broker {
namespace {

std::time_t Utc(int y, int mo, int d, int h, int mi = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return timegm(&tm);
}

TEST(DeviceAuth, Password_PublishedCheckValue) {
  EXPECT_EQ(IotdaPassword("12345678", "2025041401"),
            "c75150e6cb841417396819e4d2ee4358a416344a03a083e3a8567074ddec820a");
}

// Huawei's C and Java SDKs offer HMAC-SM3 as sig type 2 (check value: `openssl dgst -sm3
// -hmac 2025041401` of "12345678").
TEST(DeviceAuth, Password_Sm3CheckValue) {
  EXPECT_EQ(IotdaPassword("12345678", "2025041401", 2),
            "a110c9e1536980a2ca572e7d5b82542a20a04e144937385f224d587fa1d0e862");
  EXPECT_EQ(IotdaPassword("12345678", "2025041401", 1), IotdaPassword("12345678", "2025041401"));
}

// The C SDK adds 1 to the whole stamp while the HMAC has a 0x00 byte: at 23h UTC that gives
// hour 24 (the next day's 00h), in both the client ID and the password.
TEST(DeviceAuth, ClientId_HourPast23_IsTheNextDay) {
  const auto id = ParseClientId("p_dev_0_1_2025041824");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->timestamp, "2025041824");
  EXPECT_TRUE(TimestampWithin("2025041824", Utc(2025, 4, 19, 0, 10), 0));
  EXPECT_FALSE(TimestampWithin("2025041824", Utc(2025, 4, 18, 0, 10), 1));
  EXPECT_TRUE(TimestampWithin("2025041825", Utc(2025, 4, 19, 0, 30), 1));
  EXPECT_FALSE(ParseClientId("p_dev_0_1_2025043124").has_value()) << "31 April is no date";
}

TEST(DeviceAuth, ClientId_ParsesDeviceIdWithUnderscores) {
  const auto id = ParseClientId("prod1_node_7_0_1_2025041401");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->device_id, "prod1_node_7");
  EXPECT_EQ(id->sig_type, 1);
  EXPECT_EQ(id->timestamp, "2025041401");
}

TEST(DeviceAuth, ClientId_MalformedRejected) {
  for (const char* bad : {"", "dev_0_0_202504140", "dev_1_0_2025041401", "dev_0_3_2025041401",
                          "dev_0_0_2025023101", "de/v_0_0_2025041401", "de+v_0_0_2025041401",
                          "_0_0_2025041401", "dev_0_0_20250414O1", "dev-0-0-2025041401"}) {
    EXPECT_FALSE(ParseClientId(bad).has_value()) << bad;
  }
}

TEST(DeviceAuth, Connect_Verdicts) {
  const std::string ts = "2025041401";
  const std::string pw = IotdaPassword("s3cret", ts);
  const std::time_t now = Utc(2025, 4, 14, 1, 30);
  auto known = [](const std::string& id) -> std::optional<DeviceCredential> {
    if (id == "p_dev") return DeviceCredential{"s3cret", true};
    if (id == "p_off") return DeviceCredential{"s3cret", false};
    return std::nullopt;
  };
  EXPECT_EQ(CheckDeviceConnect("p_dev_0_0_" + ts, "p_dev", pw, now, 1, known),
            ConnectVerdict::kAccepted);
  EXPECT_EQ(CheckDeviceConnect("p_dev_0_1_" + ts, "p_dev", pw, now, 1, known),
            ConnectVerdict::kAccepted);
  EXPECT_EQ(
      CheckDeviceConnect("p_dev_0_0_" + ts, "p_dev", IotdaPassword("wrong", ts), now, 1, known),
      ConnectVerdict::kBadPassword);
  EXPECT_EQ(CheckDeviceConnect("p_dev_0_0_" + ts, "p_other", pw, now, 1, known),
            ConnectVerdict::kBadPassword);
  EXPECT_EQ(CheckDeviceConnect("p_dev_x_" + ts, "p_dev", pw, now, 1, known),
            ConnectVerdict::kBadClientId);
  EXPECT_EQ(CheckDeviceConnect("p_nobody_0_0_" + ts, "p_nobody", pw, now, 1, known),
            ConnectVerdict::kUnknownDevice);
  EXPECT_EQ(CheckDeviceConnect("p_off_0_0_" + ts, "p_off", pw, now, 1, known),
            ConnectVerdict::kDisabled);
  // sig 2: HMAC-SM3 (a SHA-256 password is wrong for it), time checked as for sig 1.
  const std::string sm3 = IotdaPassword("s3cret", ts, 2);
  EXPECT_EQ(CheckDeviceConnect("p_dev_0_2_" + ts, "p_dev", sm3, now, 1, known),
            ConnectVerdict::kAccepted);
  EXPECT_EQ(CheckDeviceConnect("p_dev_0_2_" + ts, "p_dev", pw, now, 1, known),
            ConnectVerdict::kBadPassword);
  EXPECT_EQ(CheckDeviceConnect("p_dev_0_2_" + ts, "p_dev", sm3, Utc(2025, 4, 14, 4), 1, known),
            ConnectVerdict::kStaleTimestamp);
  // The C SDK's bumped stamp, at 23h UTC: hour 24, with the password computed from it.
  const std::string bumped = "2025041324";
  EXPECT_EQ(CheckDeviceConnect("p_dev_0_1_" + bumped, "p_dev", IotdaPassword("s3cret", bumped),
                               Utc(2025, 4, 13, 23, 50), 1, known),
            ConnectVerdict::kAccepted);
  // sig 1: three hours later is outside a one-hour window; sig 0 does not look at the time.
  const std::time_t later = Utc(2025, 4, 14, 4);
  EXPECT_EQ(CheckDeviceConnect("p_dev_0_1_" + ts, "p_dev", pw, later, 1, known),
            ConnectVerdict::kStaleTimestamp);
  EXPECT_EQ(CheckDeviceConnect("p_dev_0_0_" + ts, "p_dev", pw, later, 1, known),
            ConnectVerdict::kAccepted);
}

TEST(DeviceAuth, Topics_OnlyOwnTree) {
  const std::string own = "$oc/devices/p_dev/sys/properties/report";
  EXPECT_TRUE(DeviceTopicAllowed("p_dev", own, TopicAccess::kPublish));
  EXPECT_TRUE(
      DeviceTopicAllowed("p_dev", "$oc/devices/p_dev/sys/commands/#", TopicAccess::kSubscribe));
  EXPECT_FALSE(
      DeviceTopicAllowed("p_dev", "$oc/devices/p_dev/sys/commands/#", TopicAccess::kPublish));
  EXPECT_FALSE(DeviceTopicAllowed("p_dev", "$oc/devices/p_other/sys/messages/down",
                                  TopicAccess::kSubscribe));
  EXPECT_FALSE(
      DeviceTopicAllowed("p_dev", "$oc/devices/+/sys/messages/down", TopicAccess::kSubscribe));
  EXPECT_FALSE(DeviceTopicAllowed("p_dev", "$oc/devices/#", TopicAccess::kSubscribe));
  EXPECT_FALSE(DeviceTopicAllowed("p_dev", "#", TopicAccess::kSubscribe));
  // A device whose id is a prefix of another's cannot reach the other's tree.
  EXPECT_FALSE(DeviceTopicAllowed("p_d", "$oc/devices/p_dev/sys/x", TopicAccess::kPublish));
  EXPECT_FALSE(DeviceTopicAllowed("p_dev", "$oc/devices/p_dev", TopicAccess::kPublish));
  EXPECT_FALSE(DeviceTopicAllowed("p_dev", "$oc/devices/p_dev/", TopicAccess::kPublish));
}

class Store : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(SecretBox::CreateKeyFile(dir_ / "key", &error)) << error;
  }
  testing::TempDir dir_{"ota-broker-test"};
};

TEST_F(Store, SealedSecrets_RoundTripAndResistTampering) {
  std::string error;
  const auto box = SecretBox::FromKeyFile(dir_ / "key", &error);
  ASSERT_TRUE(box.has_value()) << error;
  auto sealed = box->Seal("hunter2");
  EXPECT_EQ(box->Open(sealed).value_or(""), "hunter2");
  EXPECT_EQ(std::string(sealed.begin(), sealed.end()).find("hunter2"), std::string::npos);
  sealed[5] ^= 1;
  EXPECT_FALSE(box->Open(sealed).has_value());
  ASSERT_TRUE(SecretBox::CreateKeyFile(dir_ / "key2", &error));
  const auto other = SecretBox::FromKeyFile(dir_ / "key2", &error);
  EXPECT_FALSE(other->Open(box->Seal("x")).has_value());
  EXPECT_FALSE(SecretBox::CreateKeyFile(dir_ / "key", &error)) << "overwrote a key";
}

TEST_F(Store, Lookup_ReadOnlyViewSeesWriterChanges) {
  std::string error;
  const auto box = SecretBox::FromKeyFile(dir_ / "key", &error);
  auto writer = CredentialStore::Open(dir_ / "reg.db", true, *box, &error);
  ASSERT_TRUE(writer) << error;
  ASSERT_TRUE(writer->Put("p_dev", "s3cret", true, &error)) << error;
  auto reader = CredentialStore::Open(dir_ / "reg.db", false, *box, &error);
  ASSERT_TRUE(reader) << error;
  auto cred = reader->Lookup("p_dev");
  ASSERT_TRUE(cred.has_value());
  EXPECT_EQ(cred->secret, "s3cret");
  EXPECT_TRUE(cred->enabled);
  ASSERT_TRUE(writer->SetEnabled("p_dev", false, &error));
  EXPECT_FALSE(reader->Lookup("p_dev")->enabled);
  EXPECT_FALSE(reader->Lookup("p_nobody").has_value());
  EXPECT_FALSE(reader->Put("p_x", "y", true, &error)) << "a read-only store wrote";
  EXPECT_FALSE(writer->Put("bad/id", "y", true, &error));
}

TEST_F(Store, Open_RefusesAnUnrelatedDatabase) {
  std::string error;
  const auto box = SecretBox::FromKeyFile(dir_ / "key", &error);
  EXPECT_FALSE(CredentialStore::Open(dir_ / "missing.db", false, *box, &error));
  EXPECT_NE(error.find("missing.db"), std::string::npos);
}

}  // namespace
}  // namespace ota::broker
