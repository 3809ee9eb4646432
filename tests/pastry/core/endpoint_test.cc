#include <array>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "peter/pastry/node_handle.h"

namespace peter::pastry {
namespace {

Endpoint MustParse(const std::string& text) {
  absl::StatusOr<Endpoint> e = Endpoint::Parse(text);
  EXPECT_TRUE(e.ok()) << text << ": " << e.status();
  return e.value_or(Endpoint());
}

// Expects Parse(text) to fail with InvalidArgument whose message mentions
// `fragment`.
void ExpectParseError(const std::string& text, const std::string& fragment) {
  absl::StatusOr<Endpoint> e = Endpoint::Parse(text);
  ASSERT_FALSE(e.ok()) << "parsed \"" << text << "\" as " << e->ToString();
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << text;
  EXPECT_NE(e.status().message().find(fragment), std::string::npos)
      << "\"" << text << "\": " << e.status();
}

// ---------------------------------------------------------------- FromIpv4

TEST(EndpointTest, FromIpv4IsV4Mapped) {
  Endpoint e = Endpoint::FromIpv4(0x0A000102, 4000);  // 10.0.1.2
  const std::array<uint8_t, 16> expected = {0, 0, 0,    0,    0,  0, 0, 0,
                                            0, 0, 0xff, 0xff, 10, 0, 1, 2};
  EXPECT_EQ(e.ip, expected);
  EXPECT_EQ(e.port, 4000);
  EXPECT_TRUE(e.is_v4());
  EXPECT_EQ(e.HostString(), "10.0.1.2");
  EXPECT_EQ(e.ToString(), "10.0.1.2:4000");
}

TEST(EndpointTest, FromIpv4Extremes) {
  EXPECT_EQ(Endpoint::FromIpv4(0, 0).ToString(), "0.0.0.0:0");
  EXPECT_EQ(Endpoint::FromIpv4(0xFFFFFFFF, 65535).ToString(),
            "255.255.255.255:65535");
}

TEST(EndpointTest, DefaultIsUnspecifiedV6) {
  Endpoint e;
  EXPECT_FALSE(e.is_v4());
  EXPECT_EQ(e.ToString(), "[::]:0");
}

// ------------------------------------------------------------- parse IPv4

TEST(EndpointTest, ParsesIpv4) {
  Endpoint e = MustParse("127.0.0.1:4242");
  EXPECT_EQ(e, Endpoint::FromIpv4(0x7F000001, 4242));
  EXPECT_TRUE(e.is_v4());
  EXPECT_EQ(e.HostString(), "127.0.0.1");
}

TEST(EndpointTest, Ipv4RoundTrips) {
  for (const char* text : {"127.0.0.1:4242", "0.0.0.0:0", "10.1.2.3:65535",
                           "255.255.255.255:1", "192.168.0.10:80"}) {
    EXPECT_EQ(MustParse(text).ToString(), text);
  }
}

TEST(EndpointTest, PortZeroMeansPickOne) {
  Endpoint e = MustParse("127.0.0.1:0");
  EXPECT_EQ(e.port, 0);
}

TEST(EndpointTest, PortBoundaries) {
  EXPECT_EQ(MustParse("1.2.3.4:65535").port, 65535);
  ExpectParseError("1.2.3.4:65536", "out of range");
  ExpectParseError("1.2.3.4:99999999999999999999", "out of range");
  ExpectParseError("[::1]:70000", "out of range");
}

TEST(EndpointTest, RejectsMissingPort) {
  ExpectParseError("127.0.0.1", "missing port");
  ExpectParseError("127.0.0.1:", "missing port");
  ExpectParseError("[::1]", "missing port");
  ExpectParseError("[::1]:", "missing port");
  ExpectParseError("", "missing port");
}

TEST(EndpointTest, RejectsNonNumericPort) {
  ExpectParseError("1.2.3.4:http", "not a decimal");
  ExpectParseError("1.2.3.4:-1", "not a decimal");
  ExpectParseError("1.2.3.4:+80", "not a decimal");
  ExpectParseError("1.2.3.4: 80", "not a decimal");
  ExpectParseError("1.2.3.4:80 ", "not a decimal");
  ExpectParseError("1.2.3.4:8x0", "not a decimal");
}

TEST(EndpointTest, RejectsBadIpv4Address) {
  ExpectParseError("256.0.0.1:80", "IPv4");
  ExpectParseError("1.2.3:80", "IPv4");
  ExpectParseError("1.2.3.4.5:80", "IPv4");
  ExpectParseError(":80", "IPv4");
  ExpectParseError("a.b.c.d:80", "IPv4");
  ExpectParseError(" 1.2.3.4:80", "IPv4");
}

TEST(EndpointTest, RejectsHostNames) {
  ExpectParseError("localhost:80", "IPv4");
  ExpectParseError("example.com:80", "IPv4");
}

// ------------------------------------------------------------- parse IPv6

TEST(EndpointTest, ParsesIpv6Loopback) {
  Endpoint e = MustParse("[::1]:9000");
  std::array<uint8_t, 16> expected{};
  expected[15] = 1;
  EXPECT_EQ(e.ip, expected);
  EXPECT_EQ(e.port, 9000);
  EXPECT_FALSE(e.is_v4());
  EXPECT_EQ(e.HostString(), "::1");
  EXPECT_EQ(e.ToString(), "[::1]:9000");
}

TEST(EndpointTest, Ipv6RoundTrips) {
  for (const char* text :
       {"[::1]:9000", "[::]:0", "[2001:db8::1]:443", "[fe80::1:2:3:4]:1",
        "[2001:db8:0:1:2:3:4:5]:65535"}) {
    EXPECT_EQ(MustParse(text).ToString(), text);
  }
}

TEST(EndpointTest, Ipv6IsNormalisedToCanonicalForm) {
  EXPECT_EQ(
      MustParse("[2001:0DB8:0000:0000:0000:0000:0000:0001]:80").ToString(),
      "[2001:db8::1]:80");
}

TEST(EndpointTest, V4MappedV6IsV4) {
  Endpoint e = MustParse("[::ffff:10.0.0.1]:7");
  EXPECT_TRUE(e.is_v4());
  EXPECT_EQ(e, MustParse("10.0.0.1:7"));
  EXPECT_EQ(e.ToString(), "10.0.0.1:7");
}

TEST(EndpointTest, V4CompatibleLookalikesAreNotV4) {
  // ::ffff:0:0/96 only; ::a.b.c.d (deprecated "compatible") is plain IPv6.
  EXPECT_FALSE(MustParse("[::1.2.3.4]:7").is_v4());
  EXPECT_FALSE(MustParse("[::fffe:1.2.3.4]:7").is_v4());
}

TEST(EndpointTest, RejectsBadIpv6) {
  ExpectParseError("[::1:9000", "missing ']'");
  ExpectParseError("[::1]9000", "expected ':'");
  ExpectParseError("[::g]:80", "IPv6");
  ExpectParseError("[1.2.3.4]:80", "IPv6");
  ExpectParseError("[]:80", "IPv6");
  ExpectParseError("[1:2:3:4:5:6:7:8:9]:80", "IPv6");
  ExpectParseError("[fe80::1%eth0]:80", "IPv6");
}

TEST(EndpointTest, RejectsUnbracketedIpv6) {
  ExpectParseError("::1:80", "[addr]:port");
  ExpectParseError("2001:db8::1:443", "[addr]:port");
}

// ------------------------------------------------------- values and handles

TEST(EndpointTest, EqualityAndOrder) {
  Endpoint a = MustParse("1.2.3.4:80");
  Endpoint b = MustParse("1.2.3.4:81");
  Endpoint c = MustParse("1.2.3.5:80");
  EXPECT_EQ(a, MustParse("1.2.3.4:80"));
  EXPECT_NE(a, b);
  EXPECT_LT(a, b);
  EXPECT_LT(a, c);
}

TEST(EndpointTest, UsableInHashContainers) {
  absl::flat_hash_set<Endpoint> set = {MustParse("1.2.3.4:80"),
                                       MustParse("[::1]:80"),
                                       MustParse("[::ffff:1.2.3.4]:80")};
  EXPECT_EQ(set.size(), 2u);
}

TEST(NodeHandleTest, ValidNeedsAPort) {
  NodeHandle handle;
  EXPECT_FALSE(handle.valid());
  handle.endpoint = Endpoint::FromIpv4(0x7F000001, 4000);
  EXPECT_TRUE(handle.valid());
  handle.endpoint.port = 0;
  EXPECT_FALSE(handle.valid());
}

}  // namespace
}  // namespace peter::pastry
