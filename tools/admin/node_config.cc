#include "tools/admin/node_config.h"

#include <netdb.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "peter/pastry/node_id.h"
#include "peter/pastry/security.h"

namespace peter::tools::admin {
namespace {

// Bytes a frame needs besides its payload (topic name, ids, envelope).
constexpr size_t kFrameHeadroom = 64 << 10;

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

// The bounds' flags that must agree with each other (the runtime checks them
// too, but without the flags' names).
absl::Status CheckLimits(const NodeOptions& o) {
  if (o.max_frame_bytes < o.pubsub.max_payload_bytes + kFrameHeadroom) {
    return Bad("--max-frame-bytes", std::to_string(o.max_frame_bytes),
               absl::StrCat("must hold a largest payload (", o.pubsub.max_payload_bytes,
                            " bytes) plus ", kFrameHeadroom, " bytes of headers"));
  }
  if (o.max_total_send_queue_bytes < o.max_send_queue_bytes) {
    return Bad("--max-total-send-queue-bytes", std::to_string(o.max_total_send_queue_bytes),
               absl::StrCat("must be at least --max-send-queue-bytes (",
                            o.max_send_queue_bytes, ")"));
  }
  if (o.max_total_receive_bytes < o.max_frame_bytes) {
    return Bad("--max-total-receive-bytes", std::to_string(o.max_total_receive_bytes),
               absl::StrCat("must be at least --max-frame-bytes (", o.max_frame_bytes, ")"));
  }
  return absl::OkStatus();
}

// "HARD SOFT SECONDS" (Redis's client-output-buffer-limit pubsub class:
// "32mb 8mb 60") into `options`.
absl::Status SetOutputBufferLimit(const std::string& text, resp::GatewayOptions* options) {
  constexpr std::string_view kFlag = "--resp-client-output-buffer-limit";
  std::vector<std::string> parts = absl::StrSplit(text, ' ', absl::SkipWhitespace());
  if (parts.size() != 3) return Bad(kFlag, text, "want \"HARD SOFT SECONDS\", e.g. \"32mb 8mb 60\"");
  size_t sizes[2] = {};
  CLI::AsSizeValue as_size(false);
  for (int i = 0; i < 2; ++i) {
    std::string value = parts[i];
    if (!as_size(value).empty() || !absl::SimpleAtoi(value, &sizes[i]) || sizes[i] == 0) {
      return Bad(kFlag, text, absl::StrCat("\"", parts[i], "\" is not a positive size"));
    }
  }
  int seconds = 0;
  if (!absl::SimpleAtoi(parts[2], &seconds) || seconds < 0 || seconds > 86400) {
    return Bad(kFlag, text, "SECONDS must be a number from 0 to 86400");
  }
  if (sizes[1] > sizes[0]) return Bad(kFlag, text, "the soft limit must not pass the hard one");
  options->output_hard_limit = sizes[0];
  options->output_soft_limit = sizes[1];
  options->output_soft_limit_time = absl::Seconds(seconds);
  return absl::OkStatus();
}

// The Redis gateway's options from --resp, --requirepass-file,
// --resp-own-thread and the --resp-* bounds; nullopt without --resp.
absl::StatusOr<std::optional<resp::GatewayOptions>> GatewayConfig(const NodeFlags& flags,
                                                                  const NodeOptions& node) {
  if (flags.resp.empty()) {
    if (!flags.requirepass_file.empty()) {
      return absl::InvalidArgumentError("--requirepass-file needs --resp");
    }
    if (flags.gateway.own_thread) {
      return absl::InvalidArgumentError("--resp-own-thread needs --resp");
    }
    return std::nullopt;
  }
  resp::GatewayOptions options = flags.gateway;
  if (absl::Status s = resp::SetListenAddress(flags.resp, &options); !s.ok()) {
    return Bad("--resp", flags.resp, std::string(s.message()));
  }
  if (!flags.requirepass_file.empty()) {
    std::ifstream in(flags.requirepass_file);
    if (!in || !std::getline(in, options.requirepass) || options.requirepass.empty()) {
      return Bad("--requirepass-file", flags.requirepass_file,
                 "cannot read a password from its first line");
    }
  }
  if (!flags.resp_output_buffer_limit.empty()) {
    absl::Status s = SetOutputBufferLimit(flags.resp_output_buffer_limit, &options);
    if (!s.ok()) return s;
  }
  if (options.max_publishes_in_flight > node.pubsub.max_pending_publishes) {
    return Bad("--resp-max-publishes-in-flight", std::to_string(options.max_publishes_in_flight),
               absl::StrCat("must not pass the node's own bound on publishes in flight (",
                            node.pubsub.max_pending_publishes, ")"));
  }
  if (options.max_total_input_bytes < options.parser.max_request_bytes) {
    return Bad("--resp-max-total-input-bytes", std::to_string(options.max_total_input_bytes),
               absl::StrCat("must be at least --resp-max-request-bytes (",
                            options.parser.max_request_bytes, ")"));
  }
  if (options.max_total_output_bytes < options.output_hard_limit) {
    return Bad("--resp-max-total-output-bytes", std::to_string(options.max_total_output_bytes),
               absl::StrCat("must be at least the hard output limit of one client (",
                            options.output_hard_limit,
                            ", --resp-client-output-buffer-limit)"));
  }
  if (options.output_pause_bytes > options.output_hard_limit) {
    return Bad("--resp-output-pause-bytes", std::to_string(options.output_pause_bytes),
               absl::StrCat("must not pass the hard output limit of one client (",
                            options.output_hard_limit,
                            ", --resp-client-output-buffer-limit)"));
  }
  if (options.max_pattern_ttl <= options.pattern_ttl) {
    return Bad("--resp-max-pattern-ttl", absl::FormatDuration(options.max_pattern_ttl),
               absl::StrCat("must be above the ttl nodes announce (",
                            absl::FormatDuration(options.pattern_ttl), ")"));
  }
  // The per-client bound cannot usefully pass the gateway-wide one.
  options.max_client_publishes_in_flight =
      std::min(options.max_client_publishes_in_flight, options.max_publishes_in_flight);
  return options;
}

// `bytes` in the largest power-of-1024 unit that divides it ("4mb").
std::string SizeText(size_t bytes) {
  const char* units[] = {"b", "kb", "mb", "gb", "tb"};
  int unit = 0;
  while (unit < 4 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return absl::StrCat(bytes, units[unit]);
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
  config.node = flags.node;
  if (absl::Status s = CheckLimits(config.node); !s.ok()) return s;
  if (flags.reserved_outgoing_given &&
      config.node.reserved_outgoing_connections > config.node.max_connections / 2) {
    return Bad("--reserved-outgoing-connections",
               std::to_string(config.node.reserved_outgoing_connections),
               absl::StrCat("must be at most half of --max-connections (",
                            config.node.max_connections, ")"));
  }
  absl::StatusOr<pastry::Endpoint> listen = ResolveEndpoint("--listen", flags.listen);
  if (!listen.ok()) return listen.status();
  config.node.listen = listen->ToString();
  if (!flags.advertise.empty()) {
    absl::StatusOr<pastry::Endpoint> advertise =
        ResolveEndpoint("--advertise", flags.advertise);
    if (!advertise.ok()) return advertise.status();
    if (IsUnspecified(*advertise)) {
      return Bad("--advertise", flags.advertise,
                 "must be an address peers can reach, not a wildcard");
    }
    config.node.advertise = advertise->ToString();
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
      config.node.bootstrap.push_back(e->ToString());
    }
  }
  if (!flags.id.empty()) {
    absl::StatusOr<pastry::NodeId> id = pastry::NodeId::FromHex(flags.id);
    if (!id.ok()) return Bad("--id", flags.id, "want exactly 32 hex digits");
    config.node.id = *id;
  }
  config.node.incarnation_file = flags.incarnation_file;
  if (flags.leaf_set < 2 || flags.leaf_set > 256 || flags.leaf_set % 2 != 0) {
    return Bad("--leaf-set", std::to_string(flags.leaf_set),
               "must be an even number from 2 to 256");
  }
  config.node.overlay.leaf_set_size = flags.leaf_set;
  if (config.node.pubsub.replicas < 0 || config.node.pubsub.replicas > flags.leaf_set) {
    return Bad("--replicas", std::to_string(config.node.pubsub.replicas),
               absl::StrCat("must be from 0 to --leaf-set (", flags.leaf_set,
                            "): a root's replicas are drawn from its leaf set"));
  }
  if (!(flags.join_timeout_s > 0)) {
    return Bad("--join-timeout", std::to_string(flags.join_timeout_s),
               "must be a positive number of seconds");
  }
  config.node.bootstrap_retry_for = absl::Seconds(flags.join_timeout_s);
  if (absl::Status s = SecurityConfig(flags, &config.node.security); !s.ok()) return s;
  if (!flags.admin.empty()) {
    absl::StatusOr<AdminAddress> admin = SplitHostPort("--admin", flags.admin);
    if (!admin.ok()) return admin.status();
    config.admin = *admin;
  }
  absl::StatusOr<std::optional<resp::GatewayOptions>> gateway = GatewayConfig(flags, config.node);
  if (!gateway.ok()) return gateway.status();
  config.gateway = std::move(*gateway);
  return config;
}

void AddLimitFlags(CLI::App& command, NodeFlags* flags) {
  NodeOptions& n = flags->node;
  resp::GatewayOptions& g = flags->gateway;
  constexpr size_t kKiB = 1024;
  constexpr size_t kMiB = kKiB * kKiB;
  constexpr size_t kGiB = kKiB * kMiB;
  constexpr size_t kTiB = kKiB * kGiB;
  // A count (1 to `max`) or a size in bytes (`min` to `max`, with units).
  // The help shows the range; CLI11's own validator descriptions are long.
  auto count = [&](const std::string& name, size_t* field, size_t max, const std::string& help) {
    command.add_option(name, *field, absl::StrCat(help, " [1 to ", max, "]"))
        ->check(CLI::Range(size_t{1}, max).description(""))
        ->type_name("N")
        ->capture_default_str()
        ->group("Limits");
  };
  auto bytes = [&](const std::string& name, size_t* field, size_t min, size_t max,
                   const std::string& help) {
    command.add_option(name, *field,
                       absl::StrCat(help, " [", SizeText(min), " to ", SizeText(max), "]"))
        ->transform(CLI::AsSizeValue(false).description(""))
        ->check(CLI::Range(min, max).description(""))
        ->type_name("SIZE")
        ->default_str(SizeText(*field))
        ->group("Limits");
  };
  // A duration in seconds (`min` to `max`), into an absl::Duration field.
  auto seconds = [&](const std::string& name, absl::Duration* field, double min, double max,
                     const std::string& help) {
    command.add_option_function<double>(
               name, [field](double s) { *field = absl::Seconds(s); },
               absl::StrCat(help, " [", min, " to ", max, "]"))
        ->check(CLI::Range(min, max).description(""))
        ->type_name("SECONDS")
        ->default_str(absl::StrCat(absl::ToDoubleSeconds(*field)))
        ->group("Limits");
  };
  // Network: what peers can make this node hold.
  count("--max-connections", &n.max_connections, 1'000'000,
        "Peer connections open at once, incoming and outgoing together; an incoming one "
        "beyond it is closed, an outgoing one first closes the least recently used idle one");
  command
      .add_option("--reserved-outgoing-connections", n.reserved_outgoing_connections,
                  "Of --max-connections, slots only outgoing connections may take (incoming "
                  "ones beyond the rest are closed); at most half of it [0 to 500000]")
      ->check(CLI::Range(size_t{0}, size_t{500'000}).description(""))
      ->type_name("N")
      ->capture_default_str()
      ->group("Limits")
      ->each([flags](const std::string&) { flags->reserved_outgoing_given = true; });
  bytes("--max-frame-bytes", &n.max_frame_bytes, 64 * kKiB, 1 * kGiB,
        "Largest frame accepted from a peer; a larger one closes the connection");
  bytes("--max-send-queue-bytes", &n.max_send_queue_bytes, 64 * kKiB, kTiB,
        "Bytes queued for one peer; beyond it new messages to that peer are dropped");
  bytes("--max-total-send-queue-bytes", &n.max_total_send_queue_bytes, 64 * kKiB, kTiB,
        "Bytes queued for all peers together; beyond it new messages are dropped");
  bytes("--max-total-receive-bytes", &n.max_total_receive_bytes, 64 * kKiB, kTiB,
        "Bytes of frames still arriving on all connections together; the connection "
        "whose read passes it is closed");
  seconds("--idle-timeout", &n.idle_timeout, 1, 86400,
          "Seconds a peer connection may stay idle (nothing sent or received) before it is "
          "closed");
  seconds("--send-stall-timeout", &n.send_stall_timeout, 1, 86400,
          "Seconds a peer may take none of the frames queued for it before its connection is "
          "closed and the frames dropped");
  count("--max-pending-incoming", &n.max_pending_incoming, 1'000'000,
        "Incoming peer connections that have sent nothing yet; beyond it the oldest is "
        "closed for the new one");
  seconds("--pending-timeout", &n.pending_timeout, 0.1, 3600,
          "Seconds an incoming peer connection may take to send its first frame before it is "
          "closed");
  // Overlay core: the two bounds that grow with the load (peers heard of,
  // routed traffic), then those that guard against hostile peers.
  count("--max-tracked-peers", &n.overlay.max_tracked_peers, 10'000'000,
        "Peers with liveness state; a candidate heard of second-hand beyond it is not probed");
  count("--max-pending-acks", &n.overlay.max_pending_acks, 100'000'000,
        "Routed messages awaiting a hop acknowledgement; at it the one with the earliest deadline "
        "times out early and is rerouted (untracked), so the new one is tracked");
  count("--max-hops-in-flight-per-peer", &n.overlay.max_hops_in_flight_per_peer, 100'000'000,
        "Routed messages awaiting a hop acknowledgement from one peer; at it the one sent "
        "first to that peer times out early and is rerouted");
  count("--max-join-buffer", &n.overlay.max_join_buffer, 10'000'000,
        "Messages held while this node joins; beyond it they are dropped");
  count("--max-dead-nodes", &n.overlay.max_dead_nodes, 100'000'000,
        "Nodes remembered as dead (for 30 s each); beyond it one is removed but not "
        "remembered");
  // Scribe.
  count("--max-topics", &n.pubsub.max_topics, 100'000'000,
        "Topics this node keeps tree state for, and topics it replicates; a join beyond it "
        "passes through without state");
  count("--max-children", &n.pubsub.max_children, 1'000'000,
        "Children per topic; beyond it the farthest child is pushed down under a sibling");
  command
      .add_option("--max-moving-children", n.pubsub.max_moving_children,
                  "Children per topic being pushed down under a sibling; at it the joiner "
                  "itself is pushed down instead [0 to 1000000]")
      ->check(CLI::Range(size_t{0}, size_t{1'000'000}).description(""))
      ->type_name("N")
      ->capture_default_str()
      ->group("Limits");
  count("--max-reorder", &n.pubsub.max_reorder, 10'000'000,
        "Out-of-order messages held per topic, and publishes a fresh root holds; beyond it "
        "a gap is skipped (best effort) or the publish dropped");
  count("--max-lease-grants", &n.pubsub.max_lease_grants, 1'000,
        "Root leases a replica grants per topic at once; beyond it a root gets none");
  count("--max-pending-publishes", &n.pubsub.max_pending_publishes, 100'000'000,
        "This node's acknowledged publishes in flight; beyond it a publish fails");
  count("--max-pending-anycasts", &n.pubsub.max_pending_anycasts, 100'000'000,
        "This node's anycasts in flight; beyond it an anycast fails");
  count("--max-anycast-visits", &n.pubsub.max_anycast_visits, 1'000'000,
        "Nodes one anycast may visit before it fails");
  count("--root-cache-size", &n.pubsub.root_cache_size, 100'000'000,
        "Topic roots' addresses remembered; beyond it the least recently used is forgotten");
  count("--max-topic-name-bytes", &n.pubsub.max_topic_name_bytes, 65'536,
        "Longest topic name; a longer one is refused");
  bytes("--max-payload-bytes", &n.pubsub.max_payload_bytes, 1 * kKiB, 1 * kGiB,
        "Largest message payload; a larger publish is refused (must fit --max-frame-bytes "
        "with 64kb of headers)");
  count("--replay-capacity", &n.pubsub.replay_capacity, 10'000'000,
        "Messages kept per topic for gap repair and reliable subscribers' replays");
  seconds("--replay-max-age", &n.pubsub.replay_max_age, 0.1, 86400,
          "Seconds a message is kept for gap repair (with --replay-capacity, whichever "
          "bites first)");
  seconds("--topic-idle-timeout", &n.pubsub.topic_idle_timeout, 10, 86400,
          "Seconds after which a topic's root forgets a topic with no subscriber and no "
          "publish (its replicas follow); a channel published once does not hold state "
          "for good");
  bytes("--max-replay-bytes", &n.pubsub.max_replay_bytes, 1 * kMiB, kTiB,
        "Message bytes kept for gap repair and failover by all topics together (replay "
        "buffers and replicas' copies); past it the topic storing drops its own oldest "
        "released messages first");
  count("--max-pending-messages", &n.max_pending_messages, 100'000'000,
        "Messages waiting for one local subscription's handler (the Redis gateway's "
        "included); beyond it new ones are dropped");
  // Redis gateway (with --resp).
  count("--resp-max-clients", &g.max_clients, 1'000'000,
        "Redis clients at once (Redis's maxclients); more are refused with an error");
  count("--resp-max-subscriptions-per-client", &g.max_subscriptions_per_client, 100'000'000,
        "Channels, patterns and shard channels one Redis client may hold together");
  bytes("--resp-max-request-bytes", &g.parser.max_request_bytes, 64 * kKiB, 4 * kGiB,
        "Largest Redis request as sent (arguments and protocol); a larger one closes the client");
  bytes("--resp-max-total-input-bytes", &g.max_total_input_bytes, 64 * kKiB, kTiB,
        "Request bytes buffered for all Redis clients together; at it, clients are not read "
        "from (TCP pushes back) until it drops");
  command.add_option("--resp-client-output-buffer-limit", flags->resp_output_buffer_limit,
                     "Redis's client-output-buffer-limit pubsub: a Redis client is disconnected when its unsent output passes HARD, or "
                     "stays above SOFT for SECONDS")
      ->type_name("\"HARD SOFT SECONDS\"")
      ->default_str(absl::StrCat(SizeText(g.output_hard_limit), " ",
                                 SizeText(g.output_soft_limit), " ",
                                 absl::ToInt64Seconds(g.output_soft_limit_time)))
      ->group("Limits");
  count("--resp-max-publishes-in-flight", &g.max_publishes_in_flight, 1'000'000,
        "Node publishes of all Redis clients (a PUBLISH: one, plus one per matching pattern) "
        "waiting for their topic's root; at it, clients' commands wait");
  count("--resp-max-client-publishes-in-flight", &g.max_client_publishes_in_flight, 1'000'000,
        "Node publishes of one Redis client waiting for their topic's root; at it, the "
        "client's commands wait");
  bytes("--resp-max-total-output-bytes", &g.max_total_output_bytes, 64 * kKiB, kTiB,
        "Unsent output of all Redis clients together (Redis's maxmemory-clients, output "
        "only); past it the clients holding most are disconnected, largest first");
  bytes("--resp-output-pause-bytes", &g.output_pause_bytes, 1 * kKiB, 1 * kGiB,
        "Unsent output of one Redis client at which its commands are no longer read");
  bytes("--resp-max-queued-message-bytes", &g.max_queued_message_bytes, 64 * kKiB, kTiB,
        "Payload bytes of messages waiting for the Redis gateway's loop; beyond it new "
        "ones are dropped");
  count("--resp-max-cluster-patterns", &g.max_cluster_patterns, 100'000'000,
        "Patterns (with their nodes) believed held in the cluster; an announcement beyond "
        "it is ignored");
  seconds("--resp-max-pattern-ttl", &g.max_pattern_ttl, 1, 86400,
          "Longest time another node's pattern announcement is believed without a refresh");
  bytes("--resp-max-bulk-len", &g.parser.max_bulk_len, 1 * kKiB, 4 * kGiB,
        "Largest argument of a Redis request (Redis's proto-max-bulk-len); a larger one "
        "closes the client");
  count("--resp-max-args", &g.parser.max_args, 100'000'000,
        "Most arguments of one Redis command; more close the client");
  bytes("--resp-max-inline-len", &g.parser.max_inline_len, 1 * kKiB, 1 * kGiB,
        "Longest inline request or count line; a longer one closes the client");
}

void AddScribeFlags(CLI::App& command, NodeFlags* flags) {
  pubsub::ScribeOptions& p = flags->node.pubsub;
  command
      .add_option("--replicas", p.replicas,
                  "Nodes a topic's root copies each message and its numbering to, and waits "
                  "for, before it delivers the message: the nodes that take the topic over if "
                  "the root fails. 0: no replication and no root leases, so a root's failure "
                  "or a cut loses or renumbers the messages it had not delivered "
                  "(docs/operations.md) [0 to 256, at most --leaf-set]")
      ->check(CLI::Range(0, 256).description(""))
      ->type_name("N")
      ->capture_default_str()
      ->group("Scribe");
  command
      .add_flag_function(
          "--no-bundle-messages", [&p](int64_t) { p.bundle_messages = false; },
          "Send each Scribe message to another node in a payload of its own, as version 1 "
          "did, instead of bundling those of one batch of work per node: a fallback, slower")
      ->group("Scribe");
}

}  // namespace peter::tools::admin
