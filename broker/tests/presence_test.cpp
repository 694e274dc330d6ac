// Presence bookkeeping: the seq of each connection, the takeover order, and the message format.
#include <gtest/gtest.h>

#include <string>

#include "ota/broker/device_auth.hpp"
#include "ota/broker/presence.hpp"

namespace ota::broker {
namespace {

constexpr int64_t kT0 = 1'750'000'000'000'000;  // Unix microseconds

// Stand-ins for the broker's client pointers.
char g_clients[3];
void* const kConn1 = &g_clients[0];
void* const kConn2 = &g_clients[1];
void* const kConn3 = &g_clients[2];

TEST(Presence, TopicAndPayload_ExactFormat) {
  EXPECT_EQ(PresenceTopic("prod_a-1"), "$ota/presence/prod_a-1");
  EXPECT_EQ(PresencePayload({"prod_a-1", PresenceKind::kConnected, 42, 1750000000123}),
            R"({"device_id":"prod_a-1","event":"connected","seq":42,"at_ms":1750000000123})");
  EXPECT_EQ(PresencePayload({"d", PresenceKind::kDisconnected, 7, 9}),
            R"({"device_id":"d","event":"disconnected","seq":7,"at_ms":9})");
}

TEST(Presence, Disconnect_CarriesTheSeqOfItsLogin) {
  PresenceTracker t;
  const PresenceEvent c = t.Connected(kConn1, "dev", kT0);
  EXPECT_EQ(c.kind, PresenceKind::kConnected);
  EXPECT_EQ(c.device_id, "dev");
  EXPECT_EQ(c.seq, static_cast<uint64_t>(kT0));
  EXPECT_EQ(c.at_ms, kT0 / 1000);
  const auto d = t.Disconnected(kConn1, kT0 + 5'000'000);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->kind, PresenceKind::kDisconnected);
  EXPECT_EQ(d->device_id, "dev");
  EXPECT_EQ(d->seq, c.seq);
  EXPECT_EQ(d->at_ms, (kT0 + 5'000'000) / 1000);
  EXPECT_EQ(t.size(), 0u) << "the entry is dropped at disconnect";
  EXPECT_FALSE(t.Disconnected(kConn1, kT0 + 6'000'000).has_value())
      << "a second disconnect of the same client (a persistent session taken over) is silent";
}

TEST(Presence, UnknownClients_ProduceNothing) {
  PresenceTracker t;
  EXPECT_FALSE(t.Disconnected(kConn1, kT0).has_value());
  EXPECT_EQ(t.size(), 0u);
}

TEST(Presence, Seq_StrictlyIncreasingEvenWhenTheClockStallsOrStepsBack) {
  PresenceTracker t;
  const uint64_t a = t.Connected(kConn1, "dev", kT0).seq;
  const uint64_t b = t.Connected(kConn2, "dev", kT0).seq;         // same microsecond
  const uint64_t c = t.Connected(kConn3, "dev", kT0 - 1000).seq;  // clock stepped back
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(t.Connected(kConn1, "dev", kT0 + 10).seq, static_cast<uint64_t>(kT0 + 10))
      << "follows the clock again once it is ahead";
  // A broker restarted later starts above everything the previous process issued.
  PresenceTracker restarted;
  EXPECT_GT(restarted.Connected(kConn1, "dev", kT0 + 1'000'000).seq, t.last_seq());
}

// Mosquitto authenticates the new connection of a client ID before it closes the old one: the
// platform sees connected(new), then disconnected(old), and its rule (ignore a disconnect whose
// seq is below the device's last connected seq) keeps the device online.
TEST(Presence, Takeover_StaleDisconnectHasTheLowerSeq) {
  PresenceTracker t;
  const PresenceEvent first = t.Connected(kConn1, "dev", kT0);
  const PresenceEvent second = t.Connected(kConn2, "dev", kT0 + 100);
  const auto old_gone = t.Disconnected(kConn1, kT0 + 101);
  ASSERT_TRUE(old_gone.has_value());
  EXPECT_EQ(old_gone->seq, first.seq);
  EXPECT_LT(old_gone->seq, second.seq);
  EXPECT_EQ(t.size(), 1u);
  const auto new_gone = t.Disconnected(kConn2, kT0 + 200);
  ASSERT_TRUE(new_gone.has_value());
  EXPECT_EQ(new_gone->seq, second.seq);
}

TEST(Presence, ManyConnections_LeaveNoEntries) {
  PresenceTracker t;
  for (int i = 0; i < 100000; ++i) {
    t.Connected(kConn1, "dev", kT0 + i);
    ASSERT_TRUE(t.Disconnected(kConn1, kT0 + i).has_value());
  }
  EXPECT_EQ(t.size(), 0u);
}

TEST(Presence, DevicesCannotUsePresenceTopics) {
  for (const TopicAccess access :
       {TopicAccess::kPublish, TopicAccess::kSubscribe, TopicAccess::kReceive}) {
    for (const char* topic : {"$ota/presence/p_dev", "$ota/presence/p_other", "$ota/presence/#",
                              "$ota/presence/+", "$ota/#", "#", "+/presence/p_dev"}) {
      EXPECT_FALSE(DeviceTopicAllowed("p_dev", topic, access)) << topic;
    }
  }
}

}  // namespace
}  // namespace ota::broker
