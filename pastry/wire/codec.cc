#include "pastry/wire/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <exception>
#include <memory>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "pastry/wire/pastry.capnp.h"

namespace peter::pastry::wire {
namespace {

namespace s = ::peter::pastry::wire::schema;
using Body = s::Envelope::Body;

// ---------------------------------------------------------------------------
// Encoding

// Words of a NodeHandle: NodeId struct (2) + Endpoint struct (2) + ip (2)
// + its own incarnation (1) and two pointers (2), whether inline in a list
// or on its own.
constexpr size_t kHandleWords = 9;

size_t EstimateBodyWords(const RouteMsg& m) {
  return 16 + kHandleWords * (1 + m.join_rows.size()) + 2 * m.path.size() +
         m.payload.size() / 8 + 1;
}
size_t EstimateBodyWords(const JoinReply& m) {
  return 4 + kHandleWords * (m.rows.size() + m.leaf_set.size());
}
size_t EstimateBodyWords(const ProbeReply& m) {
  return 8 + kHandleWords * m.leaf_set.size();
}
size_t EstimateBodyWords(const RowReply& m) {
  return 4 + kHandleWords * m.entries.size();
}
size_t EstimateBodyWords(const RouteAck& m) {
  return 4 + m.ids.size();
}
size_t EstimateBodyWords(const LookupReply& m) {
  return 12 + 2 * m.path.size();
}
template <typename T>
size_t EstimateBodyWords(const T&) {
  return 8;
}

// An upper bound on the single-segment size of `e`, so the builder never
// needs a second segment.
size_t EstimateWords(const Envelope& e) {
  return 8 + kHandleWords +
         std::visit([](const auto& m) { return EstimateBodyWords(m); },
                    e.body);
}

void SetId(s::NodeId::Builder b, const NodeId& id) {
  b.setHi(id.hi());
  b.setLo(id.lo());
}

void SetHandle(s::NodeHandle::Builder b, const NodeHandle& h) {
  SetId(b.initId(), h.id);
  s::Endpoint::Builder e = b.initEndpoint();
  e.setIp(kj::arrayPtr(h.endpoint.ip.data(), h.endpoint.ip.size()));
  e.setPort(h.endpoint.port);
  b.setIncarnation(h.incarnation);
}

void SetHandles(capnp::List<s::NodeHandle>::Builder list,
                const std::vector<NodeHandle>& handles) {
  for (size_t i = 0; i < handles.size(); ++i) SetHandle(list[i], handles[i]);
}

void SetIds(capnp::List<s::NodeId>::Builder list,
            const std::vector<NodeId>& ids) {
  for (size_t i = 0; i < ids.size(); ++i) SetId(list[i], ids[i]);
}

void SetBody(Body::Builder body, const RouteMsg& m) {
  s::RouteMsg::Builder r = body.initRoute();
  r.setId(m.id);
  r.setKind(static_cast<s::RouteKind>(m.kind));
  r.setRequestId(m.request_id);
  r.setApp(m.app);
  if (m.key.has_value()) SetId(r.initKey(), *m.key);
  SetHandle(r.initSource(), m.source);
  r.setHops(m.hops);
  r.setTrace(m.trace);
  if (!m.path.empty()) SetIds(r.initPath(m.path.size()), m.path);
  if (!m.payload.empty()) {
    r.setPayload(kj::arrayPtr(
        reinterpret_cast<const kj::byte*>(m.payload.data()), m.payload.size()));
  }
  if (!m.join_rows.empty()) {
    SetHandles(r.initJoinRows(m.join_rows.size()), m.join_rows);
  }
}

// The first id goes in `id`, so a lone acknowledgement is the frame version
// 1 wrote; the rest in `ids`.
void SetBody(Body::Builder body, const RouteAck& m) {
  s::RouteAck::Builder r = body.initRouteAck();
  if (m.ids.empty()) return;
  r.setId(m.ids.front());
  if (m.ids.size() == 1) return;
  capnp::List<uint64_t>::Builder rest = r.initIds(m.ids.size() - 1);
  for (size_t i = 1; i < m.ids.size(); ++i) rest.set(i - 1, m.ids[i]);
}

void SetBody(Body::Builder body, const JoinReply& m) {
  s::JoinReply::Builder r = body.initJoinReply();
  SetHandles(r.initRows(m.rows.size()), m.rows);
  SetHandles(r.initLeafSet(m.leaf_set.size()), m.leaf_set);
}

void SetBody(Body::Builder body, const Probe& m) {
  s::Probe::Builder r = body.initProbe();
  r.setNonce(m.nonce);
  r.setJoining(m.joining);
  r.setWantLeafSet(m.want_leaf_set);
  r.setKnownLeafVersion(m.known_leaf_version);
  r.setLeafVersion(m.leaf_version);
}

void SetBody(Body::Builder body, const ProbeReply& m) {
  s::ProbeReply::Builder r = body.initProbeReply();
  r.setNonce(m.nonce);
  r.setActive(m.active);
  r.setLeafVersion(m.leaf_version);
  r.setHasLeafSet(m.has_leaf_set);
  if (!m.leaf_set.empty()) {
    SetHandles(r.initLeafSet(m.leaf_set.size()), m.leaf_set);
  }
}

void SetBody(Body::Builder body, const RowRequest& m) {
  body.initRowRequest().setRow(m.row);
}

void SetBody(Body::Builder body, const RowReply& m) {
  s::RowReply::Builder r = body.initRowReply();
  r.setRow(m.row);
  SetHandles(r.initEntries(m.entries.size()), m.entries);
}

void SetBody(Body::Builder body, const Leave&) { body.initLeave(); }

void SetBody(Body::Builder body, const LookupReply& m) {
  s::LookupReply::Builder r = body.initLookupReply();
  r.setRequestId(m.request_id);
  SetId(r.initKey(), m.key);
  r.setHops(m.hops);
  if (!m.path.empty()) SetIds(r.initPath(m.path.size()), m.path);
}

void StoreLittleEndian32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

// Writes the builder's segments in stream framing: one copy, into the
// string that is returned.
std::string Flatten(capnp::MessageBuilder& builder) {
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments =
      builder.getSegmentsForOutput();
  const size_t table_bytes = (4 + 4 * segments.size() + 7) / 8 * 8;
  size_t total = table_bytes;
  for (const auto& segment : segments) total += segment.size() * 8;
  std::string out(total, '\0');
  StoreLittleEndian32(out.data(), static_cast<uint32_t>(segments.size() - 1));
  char* p = out.data() + table_bytes;
  for (size_t i = 0; i < segments.size(); ++i) {
    StoreLittleEndian32(out.data() + 4 + 4 * i,
                        static_cast<uint32_t>(segments[i].size()));
    std::memcpy(p, segments[i].begin(), segments[i].size() * 8);
    p += segments[i].size() * 8;
  }
  return out;
}

void Build(capnp::MessageBuilder& builder, const Envelope& e) {
  s::Envelope::Builder root = builder.initRoot<s::Envelope>();
  root.setVersion(e.version);
  SetHandle(root.initSender(), e.sender);
  Body::Builder body = root.initBody();
  std::visit([&body](const auto& m) { SetBody(body, m); }, e.body);
}

// A zeroed first segment reused by every Encode on this thread; saves an
// allocation and its zeroing per message. MallocMessageBuilder re-zeroes
// what it used when it is destroyed.
constexpr size_t kScratchWords = 8192;  // 64 KiB

kj::ArrayPtr<capnp::word> ScratchSegment() {
  thread_local std::unique_ptr<capnp::word[]> scratch(
      new capnp::word[kScratchWords]());
  return kj::arrayPtr(scratch.get(), kScratchWords);
}

// ---------------------------------------------------------------------------
// Decoding

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed frame: ", what));
}

absl::Status CheckSize(absl::string_view what, size_t size, size_t max) {
  if (size <= max) return absl::OkStatus();
  return Invalid(absl::StrCat(what, " has ", size, " entries; at most ", max,
                              " allowed"));
}

NodeId ReadId(s::NodeId::Reader r) { return NodeId(r.getHi(), r.getLo()); }

absl::Status ReadHandle(s::NodeHandle::Reader r, NodeHandle& out) {
  out.id = ReadId(r.getId());
  s::Endpoint::Reader e = r.getEndpoint();
  capnp::Data::Reader ip = e.getIp();
  if (ip.size() != out.endpoint.ip.size()) {
    return Invalid(absl::StrCat("endpoint ip has ", ip.size(),
                                " bytes; expected 16"));
  }
  std::memcpy(out.endpoint.ip.data(), ip.begin(), ip.size());
  out.endpoint.port = e.getPort();
  out.incarnation = r.getIncarnation();
  return absl::OkStatus();
}

class Reader {
 public:
  explicit Reader(const DecodeLimits& limits) : limits_(limits) {}

  absl::Status Handles(absl::string_view what,
                       capnp::List<s::NodeHandle>::Reader list,
                       std::vector<NodeHandle>& out) const {
    absl::Status status = CheckSize(what, list.size(),
                                    limits_.max_list_entries);
    if (!status.ok()) return status;
    out.resize(list.size());
    for (size_t i = 0; i < out.size() && status.ok(); ++i) {
      status = ReadHandle(list[i], out[i]);
    }
    return status;
  }

  absl::Status Path(capnp::List<s::NodeId>::Reader list,
                    std::vector<NodeId>& out) const {
    absl::Status status = CheckSize("path", list.size(),
                                    limits_.max_path_entries);
    if (!status.ok()) return status;
    out.reserve(list.size());
    for (s::NodeId::Reader id : list) out.push_back(ReadId(id));
    return absl::OkStatus();
  }

  absl::Status ReadBody(s::RouteMsg::Reader r, RouteMsg& m) const {
    m.id = r.getId();
    switch (r.getKind()) {
      case s::RouteKind::APP: m.kind = RouteKind::kApp; break;
      case s::RouteKind::JOIN: m.kind = RouteKind::kJoin; break;
      case s::RouteKind::LOOKUP: m.kind = RouteKind::kLookup; break;
      default:
        return absl::UnimplementedError(absl::StrCat(
            "unknown message type: route kind ",
            static_cast<int>(r.getKind())));
    }
    m.request_id = r.getRequestId();
    m.app = r.getApp();
    if (r.hasKey()) m.key = ReadId(r.getKey());
    absl::Status status = ReadHandle(r.getSource(), m.source);
    if (!status.ok()) return status;
    m.hops = r.getHops();
    m.trace = r.getTrace();
    status = Path(r.getPath(), m.path);
    if (!status.ok()) return status;
    capnp::Data::Reader payload = r.getPayload();
    if (payload.size() > limits_.max_payload_bytes) {
      return Invalid(absl::StrCat("payload has ", payload.size(),
                                  " bytes; at most ",
                                  limits_.max_payload_bytes, " allowed"));
    }
    m.payload.assign(reinterpret_cast<const char*>(payload.begin()),
                     payload.size());
    return Handles("join rows", r.getJoinRows(), m.join_rows);
  }

  // Ids 0 are dropped: no hop is tracked under 0.
  absl::Status ReadBody(s::RouteAck::Reader r, RouteAck& m) const {
    capnp::List<uint64_t>::Reader rest = r.getIds();
    absl::Status status = CheckSize("acknowledged ids", rest.size(),
                                    limits_.max_list_entries);
    if (!status.ok()) return status;
    m.ids.reserve(1 + rest.size());
    if (r.getId() != 0) m.ids.push_back(r.getId());
    for (uint64_t id : rest) {
      if (id != 0) m.ids.push_back(id);
    }
    return absl::OkStatus();
  }

  absl::Status ReadBody(s::JoinReply::Reader r, JoinReply& m) const {
    absl::Status status = Handles("rows", r.getRows(), m.rows);
    if (!status.ok()) return status;
    return Handles("leaf set", r.getLeafSet(), m.leaf_set);
  }

  absl::Status ReadBody(s::Probe::Reader r, Probe& m) const {
    m.nonce = r.getNonce();
    m.joining = r.getJoining();
    m.want_leaf_set = r.getWantLeafSet();
    m.known_leaf_version = r.getKnownLeafVersion();
    m.leaf_version = r.getLeafVersion();
    return absl::OkStatus();
  }

  absl::Status ReadBody(s::ProbeReply::Reader r, ProbeReply& m) const {
    m.nonce = r.getNonce();
    m.active = r.getActive();
    m.leaf_version = r.getLeafVersion();
    m.has_leaf_set = r.getHasLeafSet();
    return Handles("leaf set", r.getLeafSet(), m.leaf_set);
  }

  absl::Status ReadBody(s::RowRequest::Reader r, RowRequest& m) const {
    m.row = r.getRow();
    return absl::OkStatus();
  }

  absl::Status ReadBody(s::RowReply::Reader r, RowReply& m) const {
    m.row = r.getRow();
    return Handles("row entries", r.getEntries(), m.entries);
  }

  absl::Status ReadBody(s::Leave::Reader, Leave&) const {
    return absl::OkStatus();
  }

  absl::Status ReadBody(s::LookupReply::Reader r, LookupReply& m) const {
    m.request_id = r.getRequestId();
    m.key = ReadId(r.getKey());
    m.hops = r.getHops();
    return Path(r.getPath(), m.path);
  }

  // Decodes `r` as a T and stores it in `e.body`.
  template <typename T, typename R>
  absl::Status Into(R r, Envelope& e) const {
    T m;
    absl::Status status = ReadBody(r, m);
    if (status.ok()) e.body = std::move(m);
    return status;
  }

  absl::Status ReadEnvelope(s::Envelope::Reader r, Envelope& e) const {
    e.version = r.getVersion();
    if (e.version < kMinProtocolVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("protocol version ", e.version, " is below ",
                       kMinProtocolVersion));
    }
    absl::Status status = ReadHandle(r.getSender(), e.sender);
    if (!status.ok()) return status;
    Body::Reader b = r.getBody();
    switch (b.which()) {
      case Body::ROUTE: return Into<RouteMsg>(b.getRoute(), e);
      case Body::ROUTE_ACK: return Into<RouteAck>(b.getRouteAck(), e);
      case Body::JOIN_REPLY: return Into<JoinReply>(b.getJoinReply(), e);
      case Body::PROBE: return Into<Probe>(b.getProbe(), e);
      case Body::PROBE_REPLY: return Into<ProbeReply>(b.getProbeReply(), e);
      case Body::ROW_REQUEST: return Into<RowRequest>(b.getRowRequest(), e);
      case Body::ROW_REPLY: return Into<RowReply>(b.getRowReply(), e);
      case Body::LEAVE: return Into<Leave>(b.getLeave(), e);
      case Body::LOOKUP_REPLY:
        return Into<LookupReply>(b.getLookupReply(), e);
    }
    return absl::UnimplementedError(absl::StrCat(
        "unknown message type ", static_cast<int>(b.which())));
  }

 private:
  const DecodeLimits& limits_;
};

// Checks the frame's header against the limits and its length.
absl::Status CheckFrame(std::string_view frame, const DecodeLimits& limits) {
  if (frame.size() > limits.max_frame_bytes) {
    return Invalid(absl::StrCat("frame has ", frame.size(), " bytes; at most ",
                                limits.max_frame_bytes, " allowed"));
  }
  absl::StatusOr<std::optional<size_t>> size = ExpectedFrameSize(
      frame, FrameLimits{limits.max_frame_bytes, limits.max_segments});
  if (!size.ok()) return size.status();
  if (!size->has_value()) return Invalid("truncated segment table");
  if (**size != frame.size()) {
    return Invalid(absl::StrCat("frame has ", frame.size(),
                                " bytes; its header declares ", **size));
  }
  return absl::OkStatus();
}

absl::Status DecodeWords(kj::ArrayPtr<const capnp::word> words,
                         const DecodeLimits& limits, Envelope& out) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.traversal_factor * words.size() + 64;
  options.nestingLimit = limits.nesting_limit;
  try {
    capnp::FlatArrayMessageReader message(words, options);
    return Reader(limits).ReadEnvelope(message.getRoot<s::Envelope>(), out);
  } catch (const kj::Exception& e) {
    return Invalid(e.getDescription().cStr());
  } catch (const std::exception& e) {
    return Invalid(e.what());
  } catch (...) {
    return Invalid("unknown error");
  }
}

}  // namespace

std::string Encode(const Envelope& envelope) {
  const size_t estimate = EstimateWords(envelope);
  if (estimate <= kScratchWords) {
    capnp::MallocMessageBuilder builder(ScratchSegment());
    Build(builder, envelope);
    return Flatten(builder);
  }
  capnp::MallocMessageBuilder builder(static_cast<unsigned>(estimate));
  Build(builder, envelope);
  return Flatten(builder);
}

absl::StatusOr<Envelope> Decode(std::string_view frame,
                                const DecodeLimits& limits) {
  absl::Status status = CheckFrame(frame, limits);
  if (!status.ok()) return status;
  const size_t word_count = frame.size() / sizeof(capnp::word);
  const auto* words = reinterpret_cast<const capnp::word*>(frame.data());
  // capnp reads words in place; an unaligned frame is copied first.
  std::unique_ptr<capnp::word[]> aligned;
  if (reinterpret_cast<uintptr_t>(frame.data()) % alignof(uint64_t) != 0) {
    aligned.reset(new capnp::word[word_count]);
    std::memcpy(aligned.get(), frame.data(), frame.size());
    words = aligned.get();
  }
  Envelope envelope;
  status = DecodeWords(kj::arrayPtr(words, word_count), limits, envelope);
  if (!status.ok()) return status;
  return envelope;
}

}  // namespace peter::pastry::wire
