// Login statistics bookkeeping: the payload's exact format, and when a publish is due.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "ota/broker/login_stats.hpp"

namespace ota::broker {
namespace {

TEST(LoginStats, Payload_ExactFormat_EveryReason) {
  LoginCounts c{};
  c[static_cast<size_t>(ConnectVerdict::kAccepted)] = 3;
  c[static_cast<size_t>(ConnectVerdict::kStaleTimestamp)] = 1;
  EXPECT_EQ(LoginStatsPayload("0a1b", 1750000000, c),
            R"({"broker":"0a1b","started_at":1750000000,"logins":{"accepted":3,)"
            R"("malformed_client_id":0,"unknown_device":0,"disabled":0,"bad_password":0,)"
            R"("stale_timestamp":1}})");
}

TEST(LoginStats, Reasons_MatchTheVerdictOrder) {
  EXPECT_STREQ(ConnectVerdictReason(ConnectVerdict::kAccepted), "accepted");
  EXPECT_STREQ(ConnectVerdictReason(ConnectVerdict::kBadClientId), "malformed_client_id");
  EXPECT_STREQ(ConnectVerdictReason(ConnectVerdict::kUnknownDevice), "unknown_device");
  EXPECT_STREQ(ConnectVerdictReason(ConnectVerdict::kDisabled), "disabled");
  EXPECT_STREQ(ConnectVerdictReason(ConnectVerdict::kBadPassword), "bad_password");
  EXPECT_STREQ(ConnectVerdictReason(ConnectVerdict::kStaleTimestamp), "stale_timestamp");
  EXPECT_EQ(static_cast<size_t>(ConnectVerdict::kStaleTimestamp) + 1, kConnectVerdictCount);
}

TEST(LoginStats, Due_OnlyWhenChanged_AtMostOncePerInterval) {
  LoginStats s("id", 100);
  EXPECT_FALSE(s.Due(100, 10)) << "nothing counted";
  s.Count(ConnectVerdict::kBadPassword);
  ASSERT_TRUE(s.Due(101, 10)) << "the first change goes out at once";
  s.Published(101);
  EXPECT_FALSE(s.Due(200, 10)) << "unchanged since";
  s.Count(ConnectVerdict::kAccepted);
  EXPECT_FALSE(s.Due(110, 10)) << "within the interval";
  const std::optional<std::string> p = s.Due(111, 10);
  ASSERT_TRUE(p);
  EXPECT_NE(p->find(R"("accepted":1,)"), std::string::npos) << *p;
  EXPECT_NE(p->find(R"("bad_password":1,)"), std::string::npos) << *p;
  // Not taken by the broker: still due at the next tick.
  EXPECT_TRUE(s.Due(112, 10));
}

TEST(LoginStats, InstanceIds_RandomHex) {
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    const std::string id = NewBrokerInstanceId();
    ASSERT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 50u);
}

}  // namespace
}  // namespace ota::broker
