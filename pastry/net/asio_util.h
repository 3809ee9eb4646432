// Private to pastry/net: conversions between Peter's Endpoint and Asio's, and
// parsing of "host:port" text given by users. Includes Asio; never include
// this from a public header.
#ifndef PETER_PASTRY_NET_ASIO_UTIL_H_
#define PETER_PASTRY_NET_ASIO_UTIL_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <chrono>
#include <string_view>

#include <asio.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "peter/pastry/node_handle.h"

namespace peter::pastry::net {

asio::ip::tcp::endpoint ToAsio(const Endpoint& endpoint);
// IPv4 (and IPv4-mapped IPv6) addresses become Endpoint's IPv4-mapped form,
// so a peer reached over either family has one Endpoint.
Endpoint FromAsio(const asio::ip::tcp::endpoint& endpoint);

// True for 0.0.0.0 and :: (listen on every interface).
bool IsUnspecified(const Endpoint& endpoint);
Endpoint LoopbackLike(const Endpoint& endpoint);  // 127.0.0.1 or ::1, same port

// Parses "a.b.c.d:port", "[v6]:port" or "name:port". "localhost" is
// 127.0.0.1 without a lookup; other names are resolved once, now (a blocking
// lookup: call it before the event loop runs), preferring IPv4.
absl::StatusOr<Endpoint> ResolveEndpoint(std::string_view text);

inline std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_ASIO_UTIL_H_
