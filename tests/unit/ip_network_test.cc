#include "common/ip_network.h"

#include <gtest/gtest.h>

#include <string>

namespace wsfleet {
namespace {

IpAddress addr(const char* text) {
  IpAddress a;
  EXPECT_TRUE(parseIpAddress(text, &a)) << text;
  return a;
}

TEST(IpNetworkTest, ParsesBothFamilies) {
  EXPECT_TRUE(addr("127.0.0.1").isV4());
  EXPECT_FALSE(addr("::1").isV4());
  EXPECT_TRUE(addr("::ffff:10.0.0.1").isV4());  // mapped: the same client as 10.0.0.1
  EXPECT_EQ(addr("::ffff:10.0.0.1").bytes, addr("10.0.0.1").bytes);
  EXPECT_EQ(addr("fe80::1%eth0").bytes, addr("fe80::1").bytes);
  IpAddress a;
  for (const char* bad : {"", "localhost", "1.2.3", "1.2.3.4.5", "::g", "1.2.3.4/8"}) {
    EXPECT_FALSE(parseIpAddress(bad, &a)) << bad;
  }
}

TEST(IpNetworkTest, NetworksContainTheirAddresses) {
  IpNetwork n;
  ASSERT_EQ(parseIpNetwork("10.0.0.0/8", &n), "");
  EXPECT_TRUE(n.contains(addr("10.255.1.2")));
  EXPECT_TRUE(n.contains(addr("::ffff:10.0.0.9")));
  EXPECT_FALSE(n.contains(addr("11.0.0.1")));
  EXPECT_FALSE(n.contains(addr("::a00:1")));  // not v4-mapped: another address
  ASSERT_EQ(parseIpNetwork("192.168.1.7", &n), "");
  EXPECT_TRUE(n.contains(addr("192.168.1.7")));
  EXPECT_FALSE(n.contains(addr("192.168.1.8")));
  ASSERT_EQ(parseIpNetwork("2001:db8::/32", &n), "");
  EXPECT_TRUE(n.contains(addr("2001:db8:ffff::1")));
  EXPECT_FALSE(n.contains(addr("2001:db9::1")));
  ASSERT_EQ(parseIpNetwork("0.0.0.0/0", &n), "");
  EXPECT_TRUE(n.contains(addr("8.8.8.8")));
  EXPECT_FALSE(n.contains(addr("::1")));
  ASSERT_EQ(parseIpNetwork("10.0.0.0/9", &n), "");
  EXPECT_TRUE(n.contains(addr("10.127.0.1")));
  EXPECT_FALSE(n.contains(addr("10.128.0.1")));
}

TEST(IpNetworkTest, BadNetworksSayWhy) {
  IpNetwork n;
  EXPECT_NE(parseIpNetwork("10.0.0.1/8", &n).find("bits set"), std::string::npos);
  EXPECT_NE(parseIpNetwork("10.0.0.0/33", &n).find("longer than"), std::string::npos);
  EXPECT_NE(parseIpNetwork("::/129", &n).find("longer than"), std::string::npos);
  EXPECT_NE(parseIpNetwork("10.0.0.0/", &n).find("prefix length"), std::string::npos);
  EXPECT_NE(parseIpNetwork("10.0.0.0/x", &n).find("prefix length"), std::string::npos);
  EXPECT_NE(parseIpNetwork("example.com", &n).find("not an IP"), std::string::npos);
  EXPECT_NE(parseIpNetwork("fe80::%eth0/64", &n).find("not an IP"), std::string::npos);
}

TEST(IpNetworkTest, LimitKeys) {
  EXPECT_EQ(ipLimitKey("10.0.0.1"), ipLimitKey("::ffff:10.0.0.1"));
  EXPECT_NE(ipLimitKey("10.0.0.1"), ipLimitKey("10.0.0.2"));
  // One IPv6 /64 is one client.
  EXPECT_EQ(ipLimitKey("2001:db8:1:2::1"), ipLimitKey("2001:db8:1:2:ffff::9"));
  EXPECT_NE(ipLimitKey("2001:db8:1:2::1"), ipLimitKey("2001:db8:1:3::1"));
  EXPECT_NE(ipLimitKey("weird"), ipLimitKey("10.0.0.1"));
  EXPECT_EQ(ipLimitKey("weird"), ipLimitKey("weird"));
}

}  // namespace
}  // namespace wsfleet
