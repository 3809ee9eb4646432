// Endpoint parsing and formatting. Addresses are numeric only: no name
// resolution happens here (that is I/O, and belongs to the runtime).
//
// Note: Debian's Abseil is built with its own absl::string_view (not
// std::string_view), so std::string_view values are copied into std::string
// before they reach absl::StrCat.
#include <arpa/inet.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "peter/pastry/node_handle.h"

namespace peter::pastry {
namespace {

// Bytes 0..11 of an IPv4-mapped IPv6 address (::ffff:0:0/96).
constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0,    0,
                                         0, 0, 0, 0, 0xff, 0xff};

absl::Status BadEndpoint(std::string_view text, std::string_view why) {
  constexpr size_t kMaxShown = 64;
  std::string shown(text.substr(0, kMaxShown));
  return absl::InvalidArgumentError(absl::StrCat(
      "bad endpoint \"", absl::CHexEscape(shown),
      text.size() > kMaxShown ? "...\": " : "\": ", std::string(why)));
}

// Parses a decimal port in [0, 65535]. Port 0 means "pick one".
absl::StatusOr<uint16_t> ParsePort(std::string_view text,
                                   std::string_view port) {
  if (port.empty()) return BadEndpoint(text, "missing port");
  uint32_t value = 0;
  const char* end = port.data() + port.size();
  auto [ptr, ec] = std::from_chars(port.data(), end, value);
  if (ec == std::errc::invalid_argument || ptr != end) {
    return BadEndpoint(text, "port is not a decimal number");
  }
  if (ec == std::errc::result_out_of_range || value > 65535) {
    return BadEndpoint(text, "port out of range (0-65535)");
  }
  return static_cast<uint16_t>(value);
}

}  // namespace

Endpoint Endpoint::FromIpv4(uint32_t host_order_addr, uint16_t port) {
  Endpoint e;
  std::memcpy(e.ip.data(), kV4MappedPrefix, sizeof(kV4MappedPrefix));
  e.ip[12] = static_cast<uint8_t>(host_order_addr >> 24);
  e.ip[13] = static_cast<uint8_t>(host_order_addr >> 16);
  e.ip[14] = static_cast<uint8_t>(host_order_addr >> 8);
  e.ip[15] = static_cast<uint8_t>(host_order_addr);
  e.port = port;
  return e;
}

absl::StatusOr<Endpoint> Endpoint::Parse(std::string_view text) {
  Endpoint e;
  std::string host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return BadEndpoint(text, "missing ']' after IPv6 address");
    }
    host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return BadEndpoint(text, "missing port");
    if (rest.front() != ':') {
      return BadEndpoint(text, "expected ':' after ']'");
    }
    port = rest.substr(1);
    if (inet_pton(AF_INET6, host.c_str(), e.ip.data()) != 1) {
      return BadEndpoint(text, "not a numeric IPv6 address");
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return BadEndpoint(text, "missing port");
    }
    host = std::string(text.substr(0, colon));
    if (host.find(':') != std::string::npos) {
      return BadEndpoint(text, "IPv6 addresses must be written as [addr]:port");
    }
    port = text.substr(colon + 1);
    uint8_t v4[4];
    if (inet_pton(AF_INET, host.c_str(), v4) != 1) {
      return BadEndpoint(text, "not a numeric IPv4 address");
    }
    std::memcpy(e.ip.data(), kV4MappedPrefix, sizeof(kV4MappedPrefix));
    std::memcpy(e.ip.data() + 12, v4, sizeof(v4));
  }
  absl::StatusOr<uint16_t> parsed_port = ParsePort(text, port);
  if (!parsed_port.ok()) return parsed_port.status();
  e.port = *parsed_port;
  return e;
}

bool Endpoint::is_v4() const {
  return std::memcmp(ip.data(), kV4MappedPrefix, sizeof(kV4MappedPrefix)) == 0;
}

std::string Endpoint::HostString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, ip.data() + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, ip.data(), buf, sizeof(buf));
  }
  return buf;
}

std::string Endpoint::ToString() const {
  if (is_v4()) return absl::StrCat(HostString(), ":", port);
  return absl::StrCat("[", HostString(), "]:", port);
}

}  // namespace peter::pastry
