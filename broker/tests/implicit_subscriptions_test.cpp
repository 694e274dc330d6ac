// Implicit subscriptions: which topics they cover, whose messages are redirected, and which
// connection of a device is its current one through takeovers and disconnects.
#include <gtest/gtest.h>

#include <string>

#include "ota/broker/implicit_subscriptions.hpp"

namespace ota::broker {
namespace {

// Stand-ins for the broker's client pointers.
char g_clients[3];
void* const kConn1 = &g_clients[0];
void* const kConn2 = &g_clients[1];
void* const kConn3 = &g_clients[2];

TEST(ImplicitSubscriptions, DownTopics_TheSixIotdaFilters) {
  for (const char* t : {
           "$oc/devices/prod_a/sys/messages/down",
           "$oc/devices/prod_a/sys/events/down",
           "$oc/devices/prod_a/sys/commands/request_id=42",
           "$oc/devices/prod_a/sys/commands",  // `commands/#` matches its parent level too
           "$oc/devices/prod_a/sys/properties/set/request_id=1",
           "$oc/devices/prod_a/sys/properties/get/request_id=1",
           "$oc/devices/prod_a/sys/shadow/get/response/request_id=1",
           "$oc/devices/prod_a/sys/shadow/get/response",
       }) {
    const auto device = ImplicitDownDevice(t);
    ASSERT_TRUE(device.has_value()) << t;
    EXPECT_EQ(*device, "prod_a") << t;
  }
}

TEST(ImplicitSubscriptions, OtherTopics_NotCovered) {
  for (const char* t : {
           "$oc/devices/prod_a/sys/properties/report",  // up topics
           "$oc/devices/prod_a/sys/events/up",
           "$oc/devices/prod_a/sys/messages/up",
           "$oc/devices/prod_a/sys/messages/down/x",  // exact filters, not subtrees
           "$oc/devices/prod_a/sys/events/down/x",
           "$oc/devices/prod_a/sys/commandsx",  // a level is matched whole
           "$oc/devices/prod_a/sys/properties/setx/y",
           "$oc/devices/prod_a/sys/shadow/get",
           "$oc/devices/prod_a/sys/bootstrap/down",  // not one of IoTDA's six
           "$oc/devices/prod_a/user/messages/down",
           "$oc/devices/prod_a/messages/down",
           "$oc/devices/prod_a/sys",
           "$oc/devices/prod_a",
           "$oc/devices//sys/messages/down",   // no device
           "$oc/devices/+/sys/messages/down",  // not a device ID
           "$oc/devices/a b/sys/messages/down",
           "oc/devices/prod_a/sys/messages/down",
           "/$oc/devices/prod_a/sys/messages/down",
           "$ota/presence/prod_a",
           "",
       }) {
    EXPECT_FALSE(ImplicitDownDevice(t).has_value()) << t;
  }
  const std::string long_id(129, 'a');
  EXPECT_FALSE(ImplicitDownDevice("$oc/devices/" + long_id + "/sys/events/down").has_value());
  EXPECT_FALSE(ImplicitDownDevice(std::string("$oc/devices/a\0b/sys/events/down", 31)).has_value());
}

TEST(ImplicitSubscriptions, Route_OnlyThePlatformsNonRetainedMessagesToAnOnlineDevice) {
  ImplicitSubscriptions s;
  const std::string topic = "$oc/devices/prod_a/sys/commands/request_id=1";
  EXPECT_FALSE(s.Route(true, topic, false).has_value()) << "offline: normal routing";
  s.Connected(kConn1, "prod_a", "prod_a_0_0_2025041801");
  const auto r = s.Route(true, topic, false);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->client_id, "prod_a_0_0_2025041801");
  EXPECT_FALSE(s.Route(false, topic, false).has_value())
      << "a device's own publish is ordinary MQTT";
  EXPECT_FALSE(s.Route(true, topic, true).has_value()) << "retained: normal routing";
  EXPECT_FALSE(s.Route(true, "$oc/devices/prod_a/sys/properties/report", false).has_value());
  EXPECT_FALSE(s.Route(true, "$oc/devices/prod_b/sys/commands/request_id=1", false).has_value())
      << "another device, offline";
  EXPECT_FALSE(s.Route(true, "$oc/devices/prod_a_0/sys/events/down", false).has_value())
      << "a device ID that merely starts like an online one";
}

TEST(ImplicitSubscriptions, Takeover_NewestConnectionWins_FallsBackWhenItEnds) {
  ImplicitSubscriptions s;
  s.Connected(kConn1, "prod_a", "prod_a_0_0_2025041801");
  s.Connected(kConn2, "prod_a", "prod_a_0_1_2025041802");
  EXPECT_EQ(s.CurrentClientId("prod_a"), "prod_a_0_1_2025041802");
  EXPECT_EQ(s.size(), 2u);

  // The old connection's end (Mosquitto closes it after accepting the new one) changes nothing.
  s.Disconnected(kConn1);
  EXPECT_EQ(s.CurrentClientId("prod_a"), "prod_a_0_1_2025041802");
  s.Disconnected(kConn1);  // reported twice (a resumed persistent session): still nothing
  EXPECT_EQ(s.CurrentClientId("prod_a"), "prod_a_0_1_2025041802");
  s.Disconnected(kConn2);
  EXPECT_FALSE(s.CurrentClientId("prod_a").has_value());
  EXPECT_EQ(s.size(), 0u);

  // Two open connections with different client IDs: when the newer ends, the older one, still
  // open, is current again.
  s.Connected(kConn1, "prod_a", "old");
  s.Connected(kConn2, "prod_a", "new");
  s.Disconnected(kConn2);
  EXPECT_EQ(s.CurrentClientId("prod_a"), "old");
}

TEST(ImplicitSubscriptions, SameClientIdTakeover_AndReusedKeys) {
  ImplicitSubscriptions s;
  // Same client ID on a new connection: the new key is current; the old key's end is harmless.
  s.Connected(kConn1, "prod_a", "prod_a_0_0_2025041801");
  s.Connected(kConn2, "prod_a", "prod_a_0_0_2025041801");
  s.Disconnected(kConn1);
  EXPECT_EQ(s.CurrentClientId("prod_a"), "prod_a_0_0_2025041801");

  // A key re-used for another device (the broker freed a client and reused its memory)
  // replaces the old entry.
  s.Connected(kConn3, "prod_b", "prod_b_0_0_2025041801");
  s.Connected(kConn3, "prod_c", "prod_c_0_0_2025041801");
  EXPECT_FALSE(s.CurrentClientId("prod_b").has_value());
  EXPECT_EQ(s.CurrentClientId("prod_c"), "prod_c_0_0_2025041801");
  EXPECT_EQ(s.size(), 2u);
  s.Disconnected(kConn2);
  s.Disconnected(kConn3);
  EXPECT_EQ(s.size(), 0u);
  EXPECT_FALSE(s.CurrentClientId("prod_a").has_value());
  EXPECT_FALSE(s.CurrentClientId("prod_c").has_value());
}

TEST(ImplicitSubscriptions, UnknownKeyDisconnect_IsANoOp) {
  ImplicitSubscriptions s;
  s.Disconnected(kConn1);  // the platform, a refused login
  s.Connected(kConn2, "prod_a", "a");
  s.Disconnected(kConn1);
  EXPECT_EQ(s.CurrentClientId("prod_a"), "a");
}

}  // namespace
}  // namespace ota::broker
