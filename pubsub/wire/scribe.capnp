# Scribe's wire format: the payload of an overlay RouteMsg whose app is
# Scribe's (kScribeAppId). One payload is one Cap'n Proto message in standard
# stream framing whose root is a ScribeMsg. Only pubsub/wire/codec.cc reads
# or writes these types; Scribe sees the plain structs of pubsub/messages.h.
#
# Evolution rules are those of pastry/wire/pastry.capnp: fields and union
# members are only appended; `version` is raised when a meaning changes, and
# frames below kMinScribeVersion are dropped.
@0x82fbbe2ed815b906;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("peter::pubsub::wire::schema");

struct Id128 {
  hi @0 :UInt64;
  lo @1 :UInt64;
}

struct Handle {
  id @0 :Id128;
  ip @1 :Data;      # exactly 16 bytes
  port @2 :UInt16;
  incarnation @3 :UInt64;  # the node's run (NodeHandle::incarnation); 0: unknown
}

struct Join {
  topic @0 :Id128;
  joiner @1 :Handle;
  reliable @2 :Bool;
  frontier @3 :UInt64;
}

struct JoinAck {
  topic @0 :Id128;
  path @1 :List(Id128);
  nextSeq @2 :UInt64;
}

struct TopicOnly {
  topic @0 :Id128;
}

struct Heartbeat {
  topics @0 :List(Id128);
  rttMicros @1 :UInt64;   # the child's last measured round trip; 0 unknown
}

struct TopicStatus {
  topic @0 :Id128;
  accepted @1 :Bool;
  path @2 :List(Id128);
  nextSeq @3 :UInt64;
}

struct HeartbeatReply {
  topics @0 :List(TopicStatus);
}

struct Publish {
  topic @0 :Id128;
  payload @1 :Data;
  publisher @2 :Handle;   # set only with request != 0
  request @3 :UInt64;     # 0: no acknowledgement wanted, no de-duplication
  noAck @4 :Bool;         # request set for de-duplication only (best effort)
  # The publisher's previous request to this topic, unacknowledged when this
  # one was sent: the root numbers it first (0: none, as from older nodes).
  after @5 :UInt64;
  # Passed on to the topic's root by a node the route ended at that is not
  # the closest to the topic: the receiver numbers it, it is not routed again.
  passedOn @6 :Bool;
}

struct PublishAck {
  topic @0 :Id128;
  request @1 :UInt64;
  seq @2 :UInt64;
}

struct Anycast {
  topic @0 :Id128;
  request @1 :UInt64;
  requester @2 :Handle;
  payload @3 :Data;
  visited @4 :List(Id128);
  hops @5 :UInt32;
  pending @6 :List(Handle);  # children still to visit, the next one last
  up @7 :Handle;             # the ancestor to climb to; absent: none
  topReached @8 :Bool;
}

struct AnycastReply {
  topic @0 :Id128;
  request @1 :UInt64;
  outcome @2 :UInt8;      # 0 accepted, 1 none accepted, 2 lost, 3 too far
  acceptedBy @3 :Handle;  # set only when accepted
}

struct PushDown {
  topic @0 :Id128;
  newParent @1 :Handle;
}

struct Multicast {
  topic @0 :Id128;
  seq @1 :UInt64;
  payload @2 :Data;
}

struct RepairRequest {
  topic @0 :Id128;
  from @1 :UInt64;
  to @2 :UInt64;
  requester @3 :Handle;
}

struct Skip {
  topic @0 :Id128;
  upTo @1 :UInt64;
}

struct Stored {
  seq @0 :UInt64;
  payload @1 :Data;
  publisher @2 :Id128;    # of a publish with an origin; absent otherwise
  request @3 :UInt64;     # 0: no origin
  # The root term it was numbered under (docs/scribe.md, "Entry terms");
  # 0 (an older sender): older than any term.
  term @4 :UInt64;
}

struct Replicate {
  topic @0 :Id128;
  nextSeq @1 :UInt64;
  handover @2 :Bool;
  messages @3 :List(Stored);
  lease @4 :UInt64;  # nonzero: asks for a root lease, echoed in ReplicaAck
  # The sender's commit index: it released every number below it that it
  # gave; the numbers from it on are tentative (held back for the
  # replicas). 0 (an older sender): not known, every message tentative.
  commit @5 :UInt64;
  # The sender's root term (docs/scribe.md, "Entry terms"); from a
  # replica, the highest term it has seen. 0 (an older sender): no check.
  term @6 :UInt64;
  # From a replica only: the root that replicated `term` to it.
  termRoot @7 :Id128;
}

struct ReplicaAck {
  topic @0 :Id128;
  lease @1 :UInt64;  # 0: no lease granted by this ack
  # The replica holds the messages numbered first..last that the root sent
  # it in one Replicate (0, 0: none).
  first @2 :UInt64;
  last @3 :UInt64;
}

# Version 5 (kRunVersion): a run of consecutive publishes of one publisher
# to one topic, as one `listed` entry. Read as the publishes one by one:
# the i-th (from 0) has request firstRequest + i, wants an acknowledgement,
# and names as its predecessor (`after`) `after` for the first, the one
# before it for the others; none is passed on.
struct PublishRun {
  topic @0 :Id128;
  publisher @1 :Handle;
  firstRequest @2 :UInt64;   # nonzero
  after @3 :UInt64;          # the first publish's predecessor (0: none)
  payloads @4 :List(Data);   # at least one
}

# Version 5: consecutive publish acknowledgements of one topic, the i-th
# (from 0) request firstRequest + i numbered firstSeq + i.
struct PublishAckRun {
  topic @0 :Id128;
  firstRequest @1 :UInt64;   # nonzero
  firstSeq @2 :UInt64;
  count @3 :UInt32;          # at least one
}

# Version 5: consecutive data of one topic, the i-th (from 0) numbered
# firstSeq + i.
struct DataRun {
  topic @0 :Id128;
  firstSeq @1 :UInt64;
  payloads @2 :List(Data);   # at least one
}

# One entry of a `listed` list: a message sent to one node per publish, or
# (version 5, sent only to a node heard from at version >= 5) a run of them
# of one topic (docs/scribe.md, "Runs").
struct Listed {
  union {
    publish @0 :Publish;        # to a cached root (or passed on)
    data @1 :Multicast;
    publishAck @2 :PublishAck;
    publishRun @3 :PublishRun;
    publishAckRun @4 :PublishAckRun;
    dataRun @5 :DataRun;
  }
}

struct ScribeMsg {
  version @0 :UInt16;
  body :union {
    join @1 :Join;
    joinAck @2 :JoinAck;
    joinNack @3 :TopicOnly;
    leave @4 :TopicOnly;
    heartbeat @5 :Heartbeat;
    heartbeatReply @6 :HeartbeatReply;
    publish @7 :Publish;
    data @8 :Multicast;
    repairRequest @9 :RepairRequest;
    skip @10 :Skip;
    replicate @11 :Replicate;
    publishAck @12 :PublishAck;
    anycast @13 :Anycast;
    anycastReply @14 :AnycastReply;
    pushDown @15 :PushDown;
    replicaAck @16 :ReplicaAck;
    # Version 2 (kBundleVersion): several messages for one node, sent in one
    # batch of work, in the order sent, each an encoded ScribeMsg in stream
    # framing (as one payload would be), none of them a bundle. Sent only to
    # a node heard from at version >= 2 (docs/scribe.md, "Bundles").
    bundle @17 :List(Data);
    # Version 3 (kBatchVersion): the Replicates (ReplicaAcks) for one node
    # of one batch of work, several topics' in one message, in the order
    # sent; read as if each had come alone. Sent only to a node heard from
    # at version >= 3 (docs/scribe.md, "Replicate and ReplicaAck lists").
    replicates @18 :List(Replicate);
    replicaAcks @19 :List(ReplicaAck);
    # Version 4 (kListedVersion): the publishes, data (Multicast) and
    # publish acknowledgements for one node of one batch of work, any
    # topics', mixed, in the order sent, in one message; read as if each had
    # come alone. Sent only to a node heard from at version >= 4
    # (docs/scribe.md, "Publish, data and PublishAck lists").
    listed @20 :List(Listed);
    # Append new message types here (@21, ...).
  }
}
