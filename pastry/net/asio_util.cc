#include "pastry/net/asio_util.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace peter::pastry::net {

asio::ip::tcp::endpoint ToAsio(const Endpoint& endpoint) {
  if (endpoint.is_v4()) {
    asio::ip::address_v4::bytes_type b;
    std::memcpy(b.data(), endpoint.ip.data() + 12, 4);
    return {asio::ip::address_v4(b), endpoint.port};
  }
  asio::ip::address_v6::bytes_type b;
  std::memcpy(b.data(), endpoint.ip.data(), 16);
  return {asio::ip::address_v6(b), endpoint.port};
}

Endpoint FromAsio(const asio::ip::tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  if (address.is_v4()) {
    return Endpoint::FromIpv4(address.to_v4().to_uint(), endpoint.port());
  }
  Endpoint e;
  const auto b = address.to_v6().to_bytes();
  std::memcpy(e.ip.data(), b.data(), 16);
  e.port = endpoint.port();
  return e;
}

bool IsUnspecified(const Endpoint& endpoint) {
  return ToAsio(endpoint).address().is_unspecified();
}

Endpoint LoopbackLike(const Endpoint& endpoint) {
  if (endpoint.is_v4()) return Endpoint::FromIpv4(0x7f000001, endpoint.port);
  Endpoint e;
  e.ip[15] = 1;
  e.port = endpoint.port;
  return e;
}

absl::StatusOr<Endpoint> ResolveEndpoint(std::string_view text) {
  absl::StatusOr<Endpoint> numeric = Endpoint::Parse(text);
  if (numeric.ok()) return numeric;
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || text.front() == '[') {
    return numeric.status();
  }
  const std::string host(text.substr(0, colon));
  const std::string port(text.substr(colon + 1));
  if (host.find(':') != std::string::npos) return numeric.status();
  if (host == "localhost") return Endpoint::Parse(absl::StrCat("127.0.0.1:", port));
  // Validate the port with the numeric parser before any lookup.
  absl::StatusOr<Endpoint> port_check = Endpoint::Parse(absl::StrCat("0.0.0.0:", port));
  if (!port_check.ok()) return port_check.status();
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  std::error_code ec;
  auto results = resolver.resolve(host, port, asio::ip::resolver_base::numeric_service, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot resolve \"", host, "\": ", ec ? ec.message() : "no address"));
  }
  for (const auto& entry : results) {
    if (entry.endpoint().address().is_v4()) return FromAsio(entry.endpoint());
  }
  return FromAsio(results.begin()->endpoint());
}

}  // namespace peter::pastry::net
