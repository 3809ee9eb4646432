#include "tools/admin/node_config.h"

#include <netdb.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <charconv>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "peter/pastry/node_id.h"
#include "peter/pastry/security.h"

namespace peter::tools::admin {
namespace {

absl::Status Bad(std::string_view flag, std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      std::string(flag), " \"", std::string(text), "\": ", std::string(why)));
}

// The numeric form of `host` (v4 preferred), or an error.
absl::StatusOr<std::string> Resolve(std::string_view flag, const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    return Bad(flag, host, absl::StrCat("cannot resolve host: ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, freeaddrinfo);
  const addrinfo* pick = found;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) { pick = a; break; }
  }
  char text[INET6_ADDRSTRLEN] = {};
  const void* addr =
      pick->ai_family == AF_INET
          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(pick->ai_addr)->sin_addr)
          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(pick->ai_addr)->sin6_addr);
  inet_ntop(pick->ai_family, addr, text, sizeof(text));
  return pick->ai_family == AF_INET ? std::string(text) : absl::StrCat("[", text, "]");
}

bool IsUnspecified(const pastry::Endpoint& e) {
  pastry::Endpoint any4 = pastry::Endpoint::FromIpv4(0, e.port);
  pastry::Endpoint any6;
  any6.port = e.port;
  return e == any4 || e == any6;
}

// Files of the TLS and cluster-key flags. Files are read (the key) or only
// checked for presence (TLS); the runtime loads the TLS files itself.
absl::Status SecurityConfig(const NodeFlags& flags, pastry::SecurityOptions* out) {
  const bool any_tls = !flags.tls_cert.empty() || !flags.tls_key.empty() || !flags.tls_ca.empty();
  if (any_tls && (flags.tls_cert.empty() || flags.tls_key.empty() || flags.tls_ca.empty())) {
    return absl::InvalidArgumentError("--tls-cert, --tls-key and --tls-ca go together");
  }
  if (any_tls && !flags.id.empty()) {
    return Bad("--id", flags.id,
               "cannot be used with TLS: the node id derives from the certificate's key");
  }
  out->tls_cert_file = flags.tls_cert;
  out->tls_key_file = flags.tls_key;
  out->tls_ca_file = flags.tls_ca;
  if (flags.cluster_key_file.empty()) return absl::OkStatus();
  std::ifstream in(flags.cluster_key_file, std::ios::binary);
  if (!in) return Bad("--cluster-key-file", flags.cluster_key_file, "cannot read it");
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.size() < pastry::kMinClusterKeyBytes) {
    return Bad("--cluster-key-file", flags.cluster_key_file,
               absl::StrCat("the key must have at least ", pastry::kMinClusterKeyBytes,
                            " bytes (e.g. openssl rand -hex 32 > FILE)"));
  }
  out->cluster_key = std::move(key);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AdminAddress> SplitHostPort(std::string_view flag, std::string_view text) {
  AdminAddress out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() ||
        text[close + 1] != ':') {
      return Bad(flag, text, "want [IPv6]:PORT");
    }
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Bad(flag, text, "want HOST:PORT");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      return Bad(flag, text, "an IPv6 address needs brackets: [addr]:PORT");
    }
    port = text.substr(colon + 1);
  }
  if (out.host.empty()) return Bad(flag, text, "missing host");
  const char* end = port.data() + port.size();
  auto [ptr, ec] = std::from_chars(port.data(), end, out.port);
  if (port.empty() || ec != std::errc() || ptr != end || out.port < 0 ||
      out.port > 65535) {
    return Bad(flag, text, "port must be a number from 0 to 65535");
  }
  return out;
}

absl::StatusOr<pastry::Endpoint> ResolveEndpoint(std::string_view flag,
                                                 std::string_view text) {
  absl::StatusOr<AdminAddress> split = SplitHostPort(flag, text);
  if (!split.ok()) return split.status();
  std::string literal = split->host.find(':') != std::string::npos
                            ? absl::StrCat("[", split->host, "]")
                            : split->host;
  absl::StatusOr<pastry::Endpoint> e =
      pastry::Endpoint::Parse(absl::StrCat(literal, ":", split->port));
  if (e.ok()) return e;
  absl::StatusOr<std::string> numeric = Resolve(flag, split->host);
  if (!numeric.ok()) return numeric.status();
  e = pastry::Endpoint::Parse(absl::StrCat(*numeric, ":", split->port));
  if (!e.ok()) return Bad(flag, text, std::string(e.status().message()));
  return e;
}

absl::StatusOr<NodeConfig> MakeNodeConfig(const NodeFlags& flags) {
  NodeConfig config;
  absl::StatusOr<pastry::Endpoint> listen = ResolveEndpoint("--listen", flags.listen);
  if (!listen.ok()) return listen.status();
  config.runtime.listen = listen->ToString();
  if (!flags.advertise.empty()) {
    absl::StatusOr<pastry::Endpoint> advertise =
        ResolveEndpoint("--advertise", flags.advertise);
    if (!advertise.ok()) return advertise.status();
    if (IsUnspecified(*advertise)) {
      return Bad("--advertise", flags.advertise,
                 "must be an address peers can reach, not a wildcard");
    }
    config.runtime.advertise = advertise->ToString();
  } else if (IsUnspecified(*listen)) {
    return Bad("--listen", flags.listen,
               "listening on every interface needs --advertise HOST:PORT, the "
               "address peers reach this node at");
  }
  for (const std::string& list : flags.join) {
    for (absl::string_view piece : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
      const std::string one(piece);
      absl::StatusOr<pastry::Endpoint> e = ResolveEndpoint("--join", one);
      if (!e.ok()) return e.status();
      if (e->port == 0) return Bad("--join", one, "port must not be 0");
      config.runtime.bootstrap.push_back(e->ToString());
    }
  }
  if (!flags.id.empty()) {
    absl::StatusOr<pastry::NodeId> id = pastry::NodeId::FromHex(flags.id);
    if (!id.ok()) return Bad("--id", flags.id, "want exactly 32 hex digits");
    config.runtime.id = *id;
  }
  if (flags.leaf_set < 2 || flags.leaf_set > 256 || flags.leaf_set % 2 != 0) {
    return Bad("--leaf-set", std::to_string(flags.leaf_set),
               "must be an even number from 2 to 256");
  }
  config.runtime.pastry.leaf_set_size = flags.leaf_set;
  if (!(flags.join_timeout_s > 0)) {
    return Bad("--join-timeout", std::to_string(flags.join_timeout_s),
               "must be a positive number of seconds");
  }
  config.runtime.bootstrap_retry_for = absl::Seconds(flags.join_timeout_s);
  if (absl::Status s = SecurityConfig(flags, &config.runtime.security); !s.ok()) return s;
  if (!flags.admin.empty()) {
    absl::StatusOr<AdminAddress> admin = SplitHostPort("--admin", flags.admin);
    if (!admin.ok()) return admin.status();
    config.admin = *admin;
  }
  return config;
}

}  // namespace peter::tools::admin
