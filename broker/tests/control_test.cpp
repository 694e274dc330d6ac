// Control messages: which topics are the broker's, and which payloads name a device it may
// disconnect.
#include <gtest/gtest.h>

#include <string>

#include "ota/broker/control.hpp"

namespace ota::broker {
namespace {

TEST(Control, ControlTopics_OnlyUnderOtaControl) {
  EXPECT_TRUE(IsControlTopic(kDisconnectTopic));
  EXPECT_TRUE(IsControlTopic("$ota/control/anything"));
  EXPECT_FALSE(IsControlTopic("$ota/control"));
  EXPECT_FALSE(IsControlTopic("$ota/presence/prod_a"));
  EXPECT_FALSE(IsControlTopic("$oc/devices/prod_a/sys/messages/down"));
  EXPECT_FALSE(IsControlTopic("ota/control/disconnect"));
}

TEST(Control, DisconnectTarget_AValidDeviceIdThatIsNotThePlatform) {
  EXPECT_EQ(DisconnectTarget("prod_a", "ota-server"), "prod_a");
  EXPECT_EQ(DisconnectTarget("a-b_C9", "ota-server"), "a-b_C9");
  for (const char* bad : {"", "ota-server", "prod/a", "prod+", "#", "a b", "prod_a\n"}) {
    EXPECT_FALSE(DisconnectTarget(bad, "ota-server").has_value()) << bad;
  }
  EXPECT_FALSE(DisconnectTarget(std::string(129, 'a'), "ota-server").has_value());
  EXPECT_FALSE(DisconnectTarget(std::string("prod\0a", 6), "ota-server").has_value());
}

}  // namespace
}  // namespace ota::broker
