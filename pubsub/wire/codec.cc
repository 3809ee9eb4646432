#include "pubsub/wire/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "pubsub/wire/scribe.capnp.h"

namespace peter::pubsub::wire {
namespace {

namespace s = ::peter::pubsub::wire::schema;
using Body = s::ScribeMsg::Body;

// ---------------------------------------------------------------------------
// Encoding

kj::ArrayPtr<const kj::byte> Bytes(std::string_view str) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(str.data()),
                      str.size());
}

void SetId(s::Id128::Builder b, const NodeId& id) {
  b.setHi(id.hi());
  b.setLo(id.lo());
}

void SetHandle(s::Handle::Builder b, const NodeHandle& h) {
  SetId(b.initId(), h.id);
  b.setIp(kj::arrayPtr(h.endpoint.ip.data(), h.endpoint.ip.size()));
  b.setPort(h.endpoint.port);
  b.setIncarnation(h.incarnation);
}

void SetIds(capnp::List<s::Id128>::Builder list,
            const std::vector<NodeId>& ids) {
  for (size_t i = 0; i < ids.size(); ++i) SetId(list[i], ids[i]);
}

void SetBody(Body::Builder b, const JoinMsg& m) {
  s::Join::Builder r = b.initJoin();
  SetId(r.initTopic(), m.topic);
  SetHandle(r.initJoiner(), m.joiner);
  r.setReliable(m.reliable);
  r.setFrontier(m.frontier);
}

void SetBody(Body::Builder b, const JoinAckMsg& m) {
  s::JoinAck::Builder r = b.initJoinAck();
  SetId(r.initTopic(), m.topic);
  SetIds(r.initPath(m.path.size()), m.path);
  r.setNextSeq(m.next_seq);
}

void SetBody(Body::Builder b, const JoinNackMsg& m) {
  SetId(b.initJoinNack().initTopic(), m.topic);
}

void SetBody(Body::Builder b, const LeaveMsg& m) {
  SetId(b.initLeave().initTopic(), m.topic);
}

void SetBody(Body::Builder b, const HeartbeatMsg& m) {
  s::Heartbeat::Builder r = b.initHeartbeat();
  SetIds(r.initTopics(m.topics.size()), m.topics);
  r.setRttMicros(m.rtt_micros);
}

void SetBody(Body::Builder b, const HeartbeatReplyMsg& m) {
  auto list = b.initHeartbeatReply().initTopics(m.topics.size());
  for (size_t i = 0; i < m.topics.size(); ++i) {
    const TopicStatus& t = m.topics[i];
    SetId(list[i].initTopic(), t.topic);
    list[i].setAccepted(t.accepted);
    SetIds(list[i].initPath(t.path.size()), t.path);
    list[i].setNextSeq(t.next_seq);
  }
}

void Fill(s::Publish::Builder r, const PublishMsg& m) {
  SetId(r.initTopic(), m.topic);
  r.setPayload(Bytes(m.payload));
  r.setRequest(m.request);
  if (m.request != 0) {
    SetHandle(r.initPublisher(), m.publisher);
    r.setNoAck(!m.want_ack);
    r.setAfter(m.after);
  }
  r.setPassedOn(m.passed_on);
}

void SetBody(Body::Builder b, const PublishMsg& m) { Fill(b.initPublish(), m); }

void Fill(s::PublishAck::Builder r, const PublishAckMsg& m) {
  SetId(r.initTopic(), m.topic);
  r.setRequest(m.request);
  r.setSeq(m.seq);
}

void SetBody(Body::Builder b, const PublishAckMsg& m) { Fill(b.initPublishAck(), m); }

void SetBody(Body::Builder b, const AnycastMsg& m) {
  s::Anycast::Builder r = b.initAnycast();
  SetId(r.initTopic(), m.topic);
  r.setRequest(m.request);
  SetHandle(r.initRequester(), m.requester);
  r.setPayload(Bytes(m.payload));
  SetIds(r.initVisited(m.visited.size()), m.visited);
  r.setHops(m.hops);
  auto pending = r.initPending(m.pending.size());
  for (size_t i = 0; i < m.pending.size(); ++i) SetHandle(pending[i], m.pending[i]);
  if (m.up.has_value()) SetHandle(r.initUp(), *m.up);
  r.setTopReached(m.top_reached);
}

void SetBody(Body::Builder b, const AnycastReplyMsg& m) {
  s::AnycastReply::Builder r = b.initAnycastReply();
  SetId(r.initTopic(), m.topic);
  r.setRequest(m.request);
  r.setOutcome(static_cast<uint8_t>(m.outcome));
  if (m.outcome == AnycastOutcome::kAccepted) {
    SetHandle(r.initAcceptedBy(), m.accepted_by);
  }
}

void SetBody(Body::Builder b, const PushDownMsg& m) {
  s::PushDown::Builder r = b.initPushDown();
  SetId(r.initTopic(), m.topic);
  SetHandle(r.initNewParent(), m.new_parent);
}

void Fill(s::Multicast::Builder r, const DataMsg& m) {
  SetId(r.initTopic(), m.topic);
  r.setSeq(m.seq);
  r.setPayload(Bytes(m.payload));
}

void SetBody(Body::Builder b, const DataMsg& m) { Fill(b.initData(), m); }

void SetBody(Body::Builder b, const RepairRequestMsg& m) {
  s::RepairRequest::Builder r = b.initRepairRequest();
  SetId(r.initTopic(), m.topic);
  r.setFrom(m.from);
  r.setTo(m.to);
  SetHandle(r.initRequester(), m.requester);
}

void SetBody(Body::Builder b, const SkipMsg& m) {
  s::Skip::Builder r = b.initSkip();
  SetId(r.initTopic(), m.topic);
  r.setUpTo(m.up_to);
}

void Fill(s::Replicate::Builder r, const ReplicateMsg& m) {
  SetId(r.initTopic(), m.topic);
  r.setNextSeq(m.next_seq);
  r.setHandover(m.handover);
  r.setLease(m.lease);
  r.setCommit(m.commit);
  r.setTerm(m.term);
  if (m.term_root != NodeId()) SetId(r.initTermRoot(), m.term_root);
  auto list = r.initMessages(m.messages.size());
  for (size_t i = 0; i < m.messages.size(); ++i) {
    list[i].setSeq(m.messages[i].seq);
    list[i].setPayload(Bytes(m.messages[i].payload));
    list[i].setTerm(m.messages[i].term);
    if (m.messages[i].request != 0) {
      SetId(list[i].initPublisher(), m.messages[i].publisher);
      list[i].setRequest(m.messages[i].request);
    }
  }
}

void SetBody(Body::Builder b, const ReplicateMsg& m) { Fill(b.initReplicate(), m); }

void Fill(s::ReplicaAck::Builder r, const ReplicaAckMsg& m) {
  SetId(r.initTopic(), m.topic);
  r.setLease(m.lease);
  r.setFirst(m.first);
  r.setLast(m.last);
}

void SetBody(Body::Builder b, const ReplicaAckMsg& m) { Fill(b.initReplicaAck(), m); }

// Payload bytes dominate; the rest is a few words per id.
template <typename T>
size_t EstimateWords(const T& m) {
  size_t bytes = 256;
  if constexpr (std::is_same_v<T, PublishMsg> ||
                std::is_same_v<T, DataMsg>) {
    bytes += m.payload.size();
  } else if constexpr (std::is_same_v<T, AnycastMsg>) {
    bytes += 24 * m.visited.size() + 64 * m.pending.size();
    bytes += m.payload.size();
  } else if constexpr (std::is_same_v<T, ReplicateMsg>) {
    for (const auto& s : m.messages) bytes += s.payload.size() + 56;
  } else if constexpr (std::is_same_v<T, HeartbeatReplyMsg>) {
    for (const auto& t : m.topics) bytes += 64 + 24 * t.path.size();
  } else if constexpr (std::is_same_v<T, HeartbeatMsg>) {
    bytes += 24 * m.topics.size();
  }
  return bytes / 8 + 1;
}

// ---------------------------------------------------------------------------
// Decoding

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed scribe message: ",
                                                 what));
}

NodeId ReadId(s::Id128::Reader r) { return NodeId(r.getHi(), r.getLo()); }

template <typename Result, typename Read>
absl::StatusOr<Result> DecodeBytes(std::string_view bytes, const DecodeLimits& limits,
                                   Read read);

class Reader {
 public:
  explicit Reader(const DecodeLimits& limits) : limits_(limits) {}

  absl::Status Handle(s::Handle::Reader r, NodeHandle& out) const {
    out.id = ReadId(r.getId());
    capnp::Data::Reader ip = r.getIp();
    if (ip.size() != out.endpoint.ip.size()) return Invalid("ip not 16 bytes");
    std::memcpy(out.endpoint.ip.data(), ip.begin(), ip.size());
    out.endpoint.port = r.getPort();
    out.incarnation = r.getIncarnation();
    return absl::OkStatus();
  }

  absl::Status Ids(capnp::List<s::Id128>::Reader list, size_t max,
                   std::vector<NodeId>& out) const {
    if (list.size() > max) return Invalid("id list too long");
    out.reserve(list.size());
    for (s::Id128::Reader id : list) out.push_back(ReadId(id));
    return absl::OkStatus();
  }

  // Into a new block (pubsub::Payload) or, for an anycast, a string.
  template <typename Out>
  absl::Status ReadPayload(capnp::Data::Reader data, Out& out) const {
    if (data.size() > limits_.max_payload_bytes) return Invalid("payload");
    out = std::string_view(reinterpret_cast<const char*>(data.begin()), data.size());
    return absl::OkStatus();
  }

  absl::Status Read(s::Join::Reader r, JoinMsg& m) const {
    m.topic = ReadId(r.getTopic());
    m.reliable = r.getReliable();
    m.frontier = r.getFrontier();
    return Handle(r.getJoiner(), m.joiner);
  }
  absl::Status Read(s::JoinAck::Reader r, JoinAckMsg& m) const {
    m.topic = ReadId(r.getTopic());
    m.next_seq = r.getNextSeq();
    return Ids(r.getPath(), limits_.max_path, m.path);
  }
  absl::Status Read(s::TopicOnly::Reader r, JoinNackMsg& m) const {
    m.topic = ReadId(r.getTopic());
    return absl::OkStatus();
  }
  absl::Status Read(s::TopicOnly::Reader r, LeaveMsg& m) const {
    m.topic = ReadId(r.getTopic());
    return absl::OkStatus();
  }
  absl::Status Read(s::Heartbeat::Reader r, HeartbeatMsg& m) const {
    m.rtt_micros = r.getRttMicros();
    return Ids(r.getTopics(), limits_.max_list, m.topics);
  }
  absl::Status Read(s::HeartbeatReply::Reader r, HeartbeatReplyMsg& m) const {
    auto list = r.getTopics();
    if (list.size() > limits_.max_list) return Invalid("too many topics");
    m.topics.resize(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      TopicStatus& t = m.topics[i];
      t.topic = ReadId(list[i].getTopic());
      t.accepted = list[i].getAccepted();
      t.next_seq = list[i].getNextSeq();
      absl::Status status = Ids(list[i].getPath(), limits_.max_path, t.path);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }
  absl::Status Read(s::Publish::Reader r, PublishMsg& m) const {
    m.topic = ReadId(r.getTopic());
    m.request = r.getRequest();
    if (m.request != 0) {
      if (!r.hasPublisher()) return Invalid("acknowledged publish without publisher");
      absl::Status status = Handle(r.getPublisher(), m.publisher);
      if (!status.ok()) return status;
      m.want_ack = !r.getNoAck();
      m.after = r.getAfter();
    }
    m.passed_on = r.getPassedOn();
    return ReadPayload(r.getPayload(), m.payload);
  }
  absl::Status Read(s::PublishAck::Reader r, PublishAckMsg& m) const {
    m.topic = ReadId(r.getTopic());
    m.request = r.getRequest();
    m.seq = r.getSeq();
    // A root acknowledges only a publish with a request, and numbers from 1.
    if (m.request == 0) return Invalid("publish acknowledgement without request");
    if (m.seq == 0) return Invalid("publish acknowledgement without number");
    return absl::OkStatus();
  }
  absl::Status Read(s::Anycast::Reader r, AnycastMsg& m) const {
    m.topic = ReadId(r.getTopic());
    m.request = r.getRequest();
    m.hops = r.getHops();
    absl::Status status = Handle(r.getRequester(), m.requester);
    if (!status.ok()) return status;
    status = Ids(r.getVisited(), limits_.max_list, m.visited);
    if (!status.ok()) return status;
    auto pending = r.getPending();
    if (pending.size() > limits_.max_list) return Invalid("anycast stack too deep");
    m.pending.resize(pending.size());
    for (size_t i = 0; i < pending.size(); ++i) {
      status = Handle(pending[i], m.pending[i]);
      if (!status.ok()) return status;
    }
    if (r.hasUp()) {
      m.up.emplace();
      status = Handle(r.getUp(), *m.up);
      if (!status.ok()) return status;
    }
    m.top_reached = r.getTopReached();
    return ReadPayload(r.getPayload(), m.payload);
  }
  absl::Status Read(s::AnycastReply::Reader r, AnycastReplyMsg& m) const {
    m.topic = ReadId(r.getTopic());
    m.request = r.getRequest();
    const uint8_t outcome = r.getOutcome();
    if (outcome > static_cast<uint8_t>(AnycastOutcome::kTooFar)) {
      return Invalid("unknown anycast outcome");
    }
    m.outcome = static_cast<AnycastOutcome>(outcome);
    if (m.outcome != AnycastOutcome::kAccepted) return absl::OkStatus();
    if (!r.hasAcceptedBy()) return Invalid("accepted anycast without acceptor");
    return Handle(r.getAcceptedBy(), m.accepted_by);
  }
  absl::Status Read(s::PushDown::Reader r, PushDownMsg& m) const {
    m.topic = ReadId(r.getTopic());
    return Handle(r.getNewParent(), m.new_parent);
  }
  absl::Status Read(s::Multicast::Reader r, DataMsg& m) const {
    m.topic = ReadId(r.getTopic());
    m.seq = r.getSeq();
    // A root numbers from 1: 0 names no message (IsNew took it for a
    // duplicate).
    if (m.seq == 0) return Invalid("data without number");
    return ReadPayload(r.getPayload(), m.payload);
  }
  absl::Status Read(s::RepairRequest::Reader r, RepairRequestMsg& m) const {
    m.topic = ReadId(r.getTopic());
    m.from = r.getFrom();
    m.to = r.getTo();
    return Handle(r.getRequester(), m.requester);
  }
  absl::Status Read(s::Skip::Reader r, SkipMsg& m) const {
    m.topic = ReadId(r.getTopic());
    m.up_to = r.getUpTo();
    return absl::OkStatus();
  }
  absl::Status Read(s::Replicate::Reader r, ReplicateMsg& m) const {
    m.topic = ReadId(r.getTopic());
    m.next_seq = r.getNextSeq();
    m.handover = r.getHandover();
    m.lease = r.getLease();
    m.commit = r.getCommit();
    m.term = r.getTerm();
    if (r.hasTermRoot()) m.term_root = ReadId(r.getTermRoot());
    auto list = r.getMessages();
    if (list.size() > limits_.max_list) return Invalid("too many messages");
    m.messages.resize(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      m.messages[i].seq = list[i].getSeq();
      // A replica stored it under 0 and a new root moved it into its
      // replay buffer (TakeReplica).
      if (m.messages[i].seq == 0) return Invalid("replicated message without number");
      m.messages[i].term = list[i].getTerm();
      m.messages[i].request = list[i].getRequest();
      if (m.messages[i].request != 0) {
        m.messages[i].publisher = ReadId(list[i].getPublisher());
      }
      absl::Status status = ReadPayload(list[i].getPayload(), m.messages[i].payload);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }
  absl::Status Read(s::ReplicaAck::Reader r, ReplicaAckMsg& m) const {
    m.topic = ReadId(r.getTopic());
    m.lease = r.getLease();
    m.first = r.getFirst();
    m.last = r.getLast();
    // `last` 0: no messages held. Else first..last, numbered from 1: a first
    // of 0 confirmed every waiting number up to `last` (OnReplicaAck).
    if (m.last != 0 && (m.first == 0 || m.first > m.last)) {
      return Invalid("replica acknowledgement of no range");
    }
    return absl::OkStatus();
  }

  template <typename T, typename R>
  absl::StatusOr<ScribeMessage> As(R r) const {
    T m;
    absl::Status status = Read(r, m);
    if (!status.ok()) return status;
    return ScribeMessage(std::move(m));
  }

  absl::StatusOr<ScribeMessage> Message(s::ScribeMsg::Reader r) const {
    if (r.getVersion() < kMinScribeVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("scribe version ", r.getVersion(), " too old"));
    }
    Body::Reader b = r.getBody();
    switch (b.which()) {
      case Body::JOIN: return As<JoinMsg>(b.getJoin());
      case Body::JOIN_ACK: return As<JoinAckMsg>(b.getJoinAck());
      case Body::JOIN_NACK: return As<JoinNackMsg>(b.getJoinNack());
      case Body::LEAVE: return As<LeaveMsg>(b.getLeave());
      case Body::HEARTBEAT: return As<HeartbeatMsg>(b.getHeartbeat());
      case Body::HEARTBEAT_REPLY:
        return As<HeartbeatReplyMsg>(b.getHeartbeatReply());
      case Body::PUBLISH: return As<PublishMsg>(b.getPublish());
      case Body::DATA: return As<DataMsg>(b.getData());
      case Body::REPAIR_REQUEST:
        return As<RepairRequestMsg>(b.getRepairRequest());
      case Body::SKIP: return As<SkipMsg>(b.getSkip());
      case Body::REPLICATE: return As<ReplicateMsg>(b.getReplicate());
      case Body::PUBLISH_ACK: return As<PublishAckMsg>(b.getPublishAck());
      case Body::ANYCAST: return As<AnycastMsg>(b.getAnycast());
      case Body::ANYCAST_REPLY:
        return As<AnycastReplyMsg>(b.getAnycastReply());
      case Body::PUSH_DOWN: return As<PushDownMsg>(b.getPushDown());
      case Body::REPLICA_ACK: return As<ReplicaAckMsg>(b.getReplicaAck());
      case Body::BUNDLE:
        return absl::UnimplementedError("a bundle where one message was expected");
      case Body::REPLICATES:
      case Body::REPLICA_ACKS:
      case Body::LISTED:
        return absl::UnimplementedError("a list where one message was expected");
    }
    return absl::UnimplementedError(absl::StrCat(
        "unknown scribe message type ", static_cast<int>(b.which())));
  }

  // One message, or each of a bundle's (a bundle inside one is refused),
  // a list of Replicates or ReplicaAcks read as its messages one by one.
  absl::StatusOr<Received> Many(s::ScribeMsg::Reader r) const {
    Received out;
    out.version = r.getVersion();
    if (r.getBody().which() != Body::BUNDLE) {
      absl::Status status = Append(r, out);
      if (!status.ok()) return status;
      return out;
    }
    if (out.version < kMinScribeVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("scribe version ", out.version, " too old"));
    }
    capnp::List<capnp::Data>::Reader list = r.getBody().getBundle();
    if (list.size() == 0 || list.size() > limits_.max_list) {
      return Invalid("bundle size");
    }
    out.reader_version = std::max(out.reader_version, kBundleVersion);
    out.messages.reserve(list.size());
    for (capnp::Data::Reader bytes : list) {
      absl::StatusOr<bool> one = DecodeBytes<bool>(
          std::string_view(reinterpret_cast<const char*>(bytes.begin()), bytes.size()),
          limits_, [&out](const Reader& reader, s::ScribeMsg::Reader m) -> absl::StatusOr<bool> {
            absl::Status status = reader.Append(m, out);
            if (!status.ok()) return status;
            return true;
          });
      if (!one.ok()) return one.status();
    }
    return out;
  }

  // The message `r` holds, or each of its list, appended to `out`: at most
  // max_list messages in all (a bundle of lists is bounded as a bundle of
  // messages is).
  absl::Status Append(s::ScribeMsg::Reader r, Received& out) const {
    if (r.getVersion() < kMinScribeVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("scribe version ", r.getVersion(), " too old"));
    }
    Body::Reader b = r.getBody();
    if (b.which() == Body::REPLICATES) return AppendList<ReplicateMsg>(b.getReplicates(), out);
    if (b.which() == Body::REPLICA_ACKS) return AppendList<ReplicaAckMsg>(b.getReplicaAcks(), out);
    if (b.which() == Body::LISTED) {
      return AppendList<ListedMsg>(b.getListed(), out, kListedVersion);
    }
    if (out.messages.size() >= limits_.max_list) return Invalid("too many messages");
    absl::StatusOr<ScribeMessage> one = Message(r);
    if (!one.ok()) return one.status();
    out.messages.push_back(std::move(*one));
    return absl::OkStatus();
  }

  // One entry of a `listed` list, appended to `out`: a message, or a run's
  // messages one by one (version 5). An entry of a kind this build does not
  // know (a newer sender's), or a run that is empty, would take `out` past
  // max_list, numbers past the last or names request or number 0, fails the
  // payload.
  absl::Status Read(s::Listed::Reader r, Received& out) const {
    switch (r.which()) {
      case s::Listed::PUBLISH:
        return ReadOne<PublishMsg>(r.getPublish(), out);
      case s::Listed::DATA:
        return ReadOne<DataMsg>(r.getData(), out);
      case s::Listed::PUBLISH_ACK:
        return ReadOne<PublishAckMsg>(r.getPublishAck(), out);
      case s::Listed::PUBLISH_RUN:
        return ReadRun(r.getPublishRun(), out);
      case s::Listed::PUBLISH_ACK_RUN:
        return ReadRun(r.getPublishAckRun(), out);
      case s::Listed::DATA_RUN:
        return ReadRun(r.getDataRun(), out);
    }
    return Invalid("unknown entry in a list");
  }

  // One message of a list, appended to `out` if it stays within max_list.
  template <typename T, typename EntryReader>
  absl::Status ReadOne(EntryReader r, Received& out) const {
    if (out.messages.size() >= limits_.max_list) return Invalid("list size");
    return Read(r, out.messages.emplace_back().template emplace<T>());
  }

  // A run of `count` from number `first` (a request or a sequence number)
  // fits in `out` and ends at or before the last number; `out` then holds a
  // run (kRunVersion).
  absl::Status RunFits(uint64_t count, uint64_t first, Received& out) const {
    if (count == 0) return Invalid("empty run");
    if (count > limits_.max_list - out.messages.size()) return Invalid("run size");
    if (first > std::numeric_limits<uint64_t>::max() - (count - 1)) {
      return Invalid("run past the last number");
    }
    out.reader_version = std::max(out.reader_version, kRunVersion);
    return absl::OkStatus();
  }

  absl::Status ReadRun(s::PublishRun::Reader r, Received& out) const {
    capnp::List<capnp::Data>::Reader payloads = r.getPayloads();
    const uint64_t first = r.getFirstRequest();
    if (first == 0) return Invalid("publish run without request");
    absl::Status status = RunFits(payloads.size(), first, out);
    if (!status.ok()) return status;
    if (!r.hasPublisher()) return Invalid("publish run without publisher");
    NodeHandle publisher;
    status = Handle(r.getPublisher(), publisher);
    if (!status.ok()) return status;
    const TopicId topic = ReadId(r.getTopic());
    uint64_t after = r.getAfter();
    for (unsigned i = 0; i < payloads.size(); ++i) {
      PublishMsg& m = out.messages.emplace_back().emplace<PublishMsg>();
      m.topic = topic;
      m.publisher = publisher;
      m.request = first + i;
      m.after = after;
      after = m.request;
      status = ReadPayload(payloads[i], m.payload);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  absl::Status ReadRun(s::PublishAckRun::Reader r, Received& out) const {
    const uint64_t first = r.getFirstRequest();
    const uint64_t seq = r.getFirstSeq();
    const uint64_t count = r.getCount();
    if (first == 0) return Invalid("publish acknowledgement run without request");
    if (seq == 0) return Invalid("publish acknowledgement run without number");
    absl::Status status = RunFits(count, std::max(first, seq), out);
    if (!status.ok()) return status;
    const TopicId topic = ReadId(r.getTopic());
    for (uint64_t i = 0; i < count; ++i) {
      out.messages.emplace_back(PublishAckMsg{topic, first + i, seq + i});
    }
    return absl::OkStatus();
  }

  absl::Status ReadRun(s::DataRun::Reader r, Received& out) const {
    capnp::List<capnp::Data>::Reader payloads = r.getPayloads();
    const uint64_t seq = r.getFirstSeq();
    if (seq == 0) return Invalid("data run without number");
    absl::Status status = RunFits(payloads.size(), seq, out);
    if (!status.ok()) return status;
    const TopicId topic = ReadId(r.getTopic());
    for (unsigned i = 0; i < payloads.size(); ++i) {
      DataMsg& m = out.messages.emplace_back().emplace<DataMsg>();
      m.topic = topic;
      m.seq = seq + i;
      status = ReadPayload(payloads[i], m.payload);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  // Each entry of `list` read as a message of type T (for ListedMsg: the
  // entry's kind), in place in `out`.
  template <typename T, typename List>
  absl::Status AppendList(List list, Received& out,
                          uint16_t reader_version = kBatchVersion) const {
    if (list.size() == 0 || list.size() > limits_.max_list - out.messages.size()) {
      return Invalid("list size");
    }
    out.reader_version = std::max(out.reader_version, reader_version);
    out.messages.reserve(out.messages.size() + list.size());
    for (auto entry : list) {
      absl::Status status;
      if constexpr (std::is_same_v<T, ListedMsg>) {
        status = Read(entry, out);
      } else {
        status = Read(entry, out.messages.emplace_back().template emplace<T>());
      }
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

 private:
  const DecodeLimits& limits_;
};

// `read(Reader, root)` on the message in `words`, Cap'n Proto's exceptions
// turned into errors.
template <typename Result, typename Read>
absl::StatusOr<Result> DecodeWords(kj::ArrayPtr<const capnp::word> words,
                                   const DecodeLimits& limits, Read read) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 2 * words.size() + 64;
  options.nestingLimit = limits.nesting_limit;
  try {
    capnp::FlatArrayMessageReader message(words, options);
    if (message.getEnd() != words.end()) return Invalid("trailing bytes");
    return read(Reader(limits), message.getRoot<s::ScribeMsg>());
  } catch (const kj::Exception& e) {
    return Invalid(e.getDescription().cStr());
  } catch (const std::exception& e) {
    return Invalid(e.what());
  } catch (...) {
    return Invalid("unknown error");
  }
}

// Checks `bytes` and hands DecodeWords aligned words.
template <typename Result, typename Read>
absl::StatusOr<Result> DecodeBytes(std::string_view bytes, const DecodeLimits& limits,
                                   Read read) {
  if (bytes.size() > limits.max_bytes) return Invalid("too large");
  if (bytes.size() % sizeof(capnp::word) != 0 || bytes.empty()) {
    return Invalid("not a whole number of words");
  }
  const size_t count = bytes.size() / sizeof(capnp::word);
  // capnp reads words in place; an unaligned buffer is copied first.
  std::unique_ptr<capnp::word[]> aligned;
  const auto* words = reinterpret_cast<const capnp::word*>(bytes.data());
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(uint64_t) != 0) {
    aligned.reset(new capnp::word[count]);
    std::memcpy(aligned.get(), bytes.data(), bytes.size());
    words = aligned.get();
  }
  return DecodeWords<Result>(kj::arrayPtr(words, count), limits, read);
}

// A message of about `words` words whose body `fill` sets, in stream
// framing. Most messages fit this thread's scratch first segment (zeroed,
// and zeroed again by the builder where it was used), and are written
// straight into the string returned: one allocation per message where a
// builder of its own took three (its segment, calloc'd; the flat array;
// the string). Larger ones get a first segment of their own.
template <typename Fill>
std::string Build(size_t words, Fill fill) {
  constexpr size_t kScratchWords = 8192;  // 64 KiB: a bundle of small messages
  thread_local const std::unique_ptr<capnp::word[]> scratch(new capnp::word[kScratchWords]());
  std::optional<capnp::MallocMessageBuilder> builder;
  if (words <= kScratchWords) {
    builder.emplace(kj::arrayPtr(scratch.get(), kScratchWords));
  } else {
    builder.emplace(static_cast<unsigned>(words));
  }
  s::ScribeMsg::Builder root = builder->initRoot<s::ScribeMsg>();
  root.setVersion(kScribeVersion);
  fill(root.initBody());
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments = builder->getSegmentsForOutput();
  std::string out(capnp::computeSerializedSizeInWords(segments) * sizeof(capnp::word), '\0');
  kj::ArrayOutputStream stream(
      kj::arrayPtr(reinterpret_cast<kj::byte*>(out.data()), out.size()));
  capnp::writeMessage(stream, segments);
  return out;
}

// One message of type T (of ScribeMessage), encoded from where it is.
template <typename T>
std::string EncodeOne(const T& msg) {
  return Build(EstimateWords(msg), [&msg](Body::Builder body) { SetBody(body, msg); });
}

}  // namespace

std::string Encode(const ScribeMessage& msg) {
  return std::visit([](const auto& m) { return EncodeOne(m); }, msg);
}

std::string Encode(const DataMsg& msg) { return EncodeOne(msg); }

std::string Encode(const PublishAckMsg& msg) { return EncodeOne(msg); }

std::string Encode(const PublishMsg& msg) { return EncodeOne(msg); }

std::string Encode(const ReplicateMsg& msg) { return EncodeOne(msg); }

absl::StatusOr<ScribeMessage> Decode(std::string_view bytes,
                                     const DecodeLimits& limits) {
  return DecodeBytes<ScribeMessage>(
      bytes, limits, [](const Reader& r, s::ScribeMsg::Reader m) { return r.Message(m); });
}

std::string EncodeBundle(absl::Span<const std::string> encoded) {
  size_t words = 8;
  for (const std::string& m : encoded) words += m.size() / 8 + 2;
  return Build(words, [&encoded](Body::Builder body) {
    capnp::List<capnp::Data>::Builder list =
        body.initBundle(static_cast<unsigned>(encoded.size()));
    for (size_t i = 0; i < encoded.size(); ++i) {
      list.set(static_cast<unsigned>(i), Bytes(encoded[i]));
    }
  });
}

std::string EncodeReplicates(absl::Span<const ReplicateMsg* const> msgs) {
  size_t words = 8;
  for (const ReplicateMsg* m : msgs) words += EstimateWords(*m);
  return Build(words, [&msgs](Body::Builder body) {
    auto list = body.initReplicates(static_cast<unsigned>(msgs.size()));
    for (size_t i = 0; i < msgs.size(); ++i) Fill(list[static_cast<unsigned>(i)], *msgs[i]);
  });
}

std::string EncodeReplicaAcks(absl::Span<const ReplicaAckMsg> acks) {
  return Build(8 + 8 * acks.size(), [&acks](Body::Builder body) {
    auto list = body.initReplicaAcks(static_cast<unsigned>(acks.size()));
    for (size_t i = 0; i < acks.size(); ++i) Fill(list[static_cast<unsigned>(i)], acks[i]);
  });
}

namespace {

// Whether `next`, sent right after `prev`, continues a run `prev` is in
// (version 5): the same kind and topic, the next request and number (none
// past the last), a publish naming `prev` as its predecessor.
bool Continues(const ListedMsg& prev, const ListedMsg& next) {
  if (prev.index() != next.index()) return false;
  if (const auto* p = std::get_if<PublishMsg>(&prev)) {
    const PublishMsg& q = std::get<PublishMsg>(next);
    return q.topic == p->topic && p->request != 0 && q.request == p->request + 1 &&
           q.request != 0 && q.after == p->request && p->want_ack && q.want_ack &&
           !p->passed_on && !q.passed_on && q.publisher == p->publisher;
  }
  if (const auto* p = std::get_if<DataMsg>(&prev)) {
    const DataMsg& q = std::get<DataMsg>(next);
    return q.topic == p->topic && q.seq == p->seq + 1 && q.seq != 0;
  }
  const PublishAckMsg& p = std::get<PublishAckMsg>(prev);
  const PublishAckMsg& q = std::get<PublishAckMsg>(next);
  return q.topic == p.topic && p.request != 0 && q.request == p.request + 1 && q.request != 0 &&
         q.seq == p.seq + 1 && q.seq != 0;
}

void FillRun(s::Listed::Builder entry, absl::Span<const ListedMsg> run) {
  const auto count = static_cast<unsigned>(run.size());
  if (const auto* first = std::get_if<PublishMsg>(&run.front())) {
    s::PublishRun::Builder r = entry.initPublishRun();
    SetId(r.initTopic(), first->topic);
    SetHandle(r.initPublisher(), first->publisher);
    r.setFirstRequest(first->request);
    r.setAfter(first->after);
    capnp::List<capnp::Data>::Builder payloads = r.initPayloads(count);
    for (unsigned i = 0; i < count; ++i) {
      payloads.set(i, Bytes(std::get<PublishMsg>(run[i]).payload));
    }
  } else if (const auto* first = std::get_if<DataMsg>(&run.front())) {
    s::DataRun::Builder r = entry.initDataRun();
    SetId(r.initTopic(), first->topic);
    r.setFirstSeq(first->seq);
    capnp::List<capnp::Data>::Builder payloads = r.initPayloads(count);
    for (unsigned i = 0; i < count; ++i) payloads.set(i, Bytes(std::get<DataMsg>(run[i]).payload));
  } else {
    const PublishAckMsg& ack = std::get<PublishAckMsg>(run.front());
    s::PublishAckRun::Builder r = entry.initPublishAckRun();
    SetId(r.initTopic(), ack.topic);
    r.setFirstRequest(ack.request);
    r.setFirstSeq(ack.seq);
    r.setCount(count);
  }
}

}  // namespace

std::string EncodeListed(absl::Span<const ListedMsg> msgs, bool runs, ListedRuns* counted) {
  // An entry (2 words), its message (3), its topic (2), its payload; a
  // publish more (its publisher).
  size_t words = 8;
  for (const ListedMsg& m : msgs) {
    if (const auto* data = std::get_if<DataMsg>(&m)) {
      words += 8 + data->payload.size() / 8 + 1;
    } else if (const auto* publish = std::get_if<PublishMsg>(&m)) {
      words += 20 + publish->payload.size() / 8 + 1;
    } else {
      words += 8;
    }
  }
  // The entries: each a message, or (with runs) a run of two or more.
  absl::InlinedVector<absl::Span<const ListedMsg>, 8> entries;
  for (size_t i = 0; i < msgs.size();) {
    size_t end = i + 1;
    while (runs && end < msgs.size() && Continues(msgs[end - 1], msgs[end])) ++end;
    entries.push_back(msgs.subspan(i, end - i));
    if (counted != nullptr && end - i > 1) {
      ++counted->runs;
      counted->messages += end - i;
    }
    i = end;
  }
  return Build(words, [&entries](Body::Builder body) {
    auto list = body.initListed(static_cast<unsigned>(entries.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
      s::Listed::Builder entry = list[static_cast<unsigned>(i)];
      const absl::Span<const ListedMsg> run = entries[i];
      if (run.size() > 1) {
        FillRun(entry, run);
      } else if (const auto* data = std::get_if<DataMsg>(&run.front())) {
        Fill(entry.initData(), *data);
      } else if (const auto* ack = std::get_if<PublishAckMsg>(&run.front())) {
        Fill(entry.initPublishAck(), *ack);
      } else {
        Fill(entry.initPublish(), std::get<PublishMsg>(run.front()));
      }
    }
  });
}

absl::StatusOr<Received> DecodeReceived(std::string_view bytes,
                                        const DecodeLimits& limits) {
  return DecodeBytes<Received>(
      bytes, limits, [](const Reader& r, s::ScribeMsg::Reader m) { return r.Many(m); });
}

}  // namespace peter::pubsub::wire
