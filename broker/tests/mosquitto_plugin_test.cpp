// The auth plugin inside a real Mosquitto on a free loopback port: who may connect, and that a
// device can neither publish to nor subscribe on another device's topics.
#include <gtest/gtest.h>

#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>

#include "mosquitto_process.hpp"
#include "mqtt_test_client.hpp"
#include "ota/broker/credential_store.hpp"
#include "ota/broker/device_auth.hpp"
#include "temp_dir.hpp"

namespace ota::broker {
namespace {

using testing::MosquittoProcess;
using testing::MqttTestClient;

constexpr int kNotAuthorized = 5;  // Mosquitto answers every plugin refusal with this (3.1.1)

class PluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(SecretBox::CreateKeyFile(dir_ / "key", &error)) << error;
    const auto box = SecretBox::FromKeyFile(dir_ / "key", &error);
    store_ = CredentialStore::Open(dir_ / "registry.db", true, *box, &error);
    ASSERT_TRUE(store_) << error;
    ASSERT_TRUE(store_->Put("prod_a", "secret-a", true, &error));
    ASSERT_TRUE(store_->Put("prod_b", "secret-b", true, &error));
    ASSERT_TRUE(store_->Put("prod_off", "secret-off", false, &error));
    std::ofstream(dir_ / "platform.pw") << "platform-pw\n";
    broker_ = std::make_unique<MosquittoProcess>(
        dir_.path(), std::vector<std::string>{
                         std::string("plugin ") + OTA_AUTH_PLUGIN,
                         "plugin_opt_registry " + (dir_ / "registry.db").string(),
                         "plugin_opt_secret_key " + (dir_ / "key").string(),
                         "plugin_opt_platform_password_file " + (dir_ / "platform.pw").string(),
                     });
    ASSERT_TRUE(broker_->running()) << "mosquitto did not start";
  }
  void TearDown() override { broker_.reset(); }

  // Connects as `device` with the password `secret` gives for `hour` (the client's own
  // client ID carries the sig type).
  int ConnectDevice(MqttTestClient& c, const std::string& device, const std::string& secret,
                    const std::string& hour = testing::UtcHour()) {
    return c.Connect(broker_->port(), device, IotdaPassword(secret, hour));
  }
  static std::string ClientIdOf(const std::string& device, int sig = 0,
                                const std::string& hour = testing::UtcHour()) {
    return device + "_0_" + std::to_string(sig) + "_" + hour;
  }

  testing::TempDir dir_{"ota-plugin"};
  std::unique_ptr<CredentialStore> store_;
  std::unique_ptr<MosquittoProcess> broker_;
};

TEST_F(PluginTest, GoodPassword_BothSigTypes_Accepted) {
  MqttTestClient a0(ClientIdOf("prod_a", 0));
  EXPECT_EQ(ConnectDevice(a0, "prod_a", "secret-a"), 0);
  MqttTestClient a1(ClientIdOf("prod_a", 1));
  EXPECT_EQ(ConnectDevice(a1, "prod_a", "secret-a"), 0);
}

TEST_F(PluginTest, Refusals_AreLoggedWithDeviceIdNeverTheSecret) {
  MqttTestClient wrong(ClientIdOf("prod_a"));
  EXPECT_EQ(ConnectDevice(wrong, "prod_a", "not-the-secret"), kNotAuthorized);
  const std::string stale_hour = testing::UtcHour(-5 * 3600);
  MqttTestClient stale(ClientIdOf("prod_a", 1, stale_hour));
  EXPECT_EQ(ConnectDevice(stale, "prod_a", "secret-a", stale_hour), kNotAuthorized);
  MqttTestClient stale_sig0(ClientIdOf("prod_a", 0, stale_hour));
  EXPECT_EQ(ConnectDevice(stale_sig0, "prod_a", "secret-a", stale_hour), 0)
      << "sig type 0 does not check the time";
  MqttTestClient malformed("prod_a_9_9_nothour");
  EXPECT_EQ(ConnectDevice(malformed, "prod_a", "secret-a"), kNotAuthorized);
  MqttTestClient disabled(ClientIdOf("prod_off"));
  EXPECT_EQ(ConnectDevice(disabled, "prod_off", "secret-off"), kNotAuthorized);
  MqttTestClient other_user(ClientIdOf("prod_a"));
  EXPECT_EQ(ConnectDevice(other_user, "prod_b", "secret-a"), kNotAuthorized);
  MqttTestClient platform_bad("platform-1");
  EXPECT_EQ(platform_bad.Connect(broker_->port(), "ota-server", "guess"), kNotAuthorized);

  const std::string log = broker_->Log();
  EXPECT_NE(log.find("refused device prod_a from 127.0.0.1: bad username or password"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("refused device prod_a from 127.0.0.1: timestamp outside the window"),
            std::string::npos);
  EXPECT_NE(log.find("refused device (unparsable client id)"), std::string::npos);
  EXPECT_NE(log.find("refused device prod_off from 127.0.0.1: device disabled"), std::string::npos);
  EXPECT_NE(log.find("refused platform login"), std::string::npos);
  for (const char* secret : {"secret-a", "secret-off", "not-the-secret", "platform-pw", "guess"}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "the log holds a secret: " << secret;
  }
  EXPECT_EQ(log.find(IotdaPassword("secret-a", testing::UtcHour())), std::string::npos);
}

TEST_F(PluginTest, DisablingADevice_TakesEffectAtItsNextConnect) {
  std::string error;
  ASSERT_TRUE(store_->SetEnabled("prod_a", false, &error));
  MqttTestClient a(ClientIdOf("prod_a"));
  EXPECT_EQ(ConnectDevice(a, "prod_a", "secret-a"), kNotAuthorized);
}

TEST_F(PluginTest, Acl_DeviceConfinedToItsOwnTopics) {
  MqttTestClient platform("ota-server-1");
  ASSERT_EQ(platform.Connect(broker_->port(), "ota-server", "platform-pw"), 0);
  ASSERT_EQ(platform.Subscribe("$oc/devices/+/sys/#"), 1);
  MqttTestClient a(ClientIdOf("prod_a"));
  ASSERT_EQ(ConnectDevice(a, "prod_a", "secret-a"), 0);
  MqttTestClient b(ClientIdOf("prod_b"));
  ASSERT_EQ(ConnectDevice(b, "prod_b", "secret-b"), 0);

  // Subscriptions: own tree yes; another device's, or a wildcard across devices, refused.
  EXPECT_EQ(a.Subscribe("$oc/devices/prod_a/sys/commands/#"), 1);
  EXPECT_EQ(a.Subscribe("$oc/devices/prod_b/sys/commands/#"), 0x80);
  EXPECT_EQ(a.Subscribe("$oc/devices/+/sys/commands/#"), 0x80);
  EXPECT_EQ(a.Subscribe("#"), 0x80);
  ASSERT_EQ(b.Subscribe("$oc/devices/prod_b/sys/#"), 1);

  // Publishing into another device's tree is dropped: neither B nor the platform sees it.
  EXPECT_TRUE(a.Publish("$oc/devices/prod_b/sys/messages/down", "spoofed"));
  EXPECT_TRUE(a.Publish("$oc/devices/prod_a/sys/properties/report", "{\"services\":[]}"));
  // The platform reaches each device's tree.
  EXPECT_TRUE(platform.Publish("$oc/devices/prod_b/sys/commands/request_id=1", "{}"));

  const auto b_got = b.Receive(std::chrono::milliseconds(300));
  ASSERT_EQ(b_got.size(), 1u);
  EXPECT_EQ(b_got[0].topic, "$oc/devices/prod_b/sys/commands/request_id=1");
  const auto p_got = platform.Receive(std::chrono::milliseconds(300));
  std::vector<std::string> topics;
  for (const auto& m : p_got)
    topics.push_back(m.topic);
  EXPECT_NE(std::find(topics.begin(), topics.end(), "$oc/devices/prod_a/sys/properties/report"),
            topics.end());
  for (const auto& m : p_got)
    EXPECT_NE(m.payload, "spoofed") << m.topic;
  EXPECT_NE(broker_->Log().find("denied device prod_a publish on $oc/devices/prod_b"),
            std::string::npos);
}

}  // namespace
}  // namespace ota::broker
