# Test fixture: pastry.capnp as a later protocol version might extend it,
# following the evolution rules in pastry/wire/pastry.capnp (a new route
# kind, a field appended to Probe, a new message type). codec_test.cc encodes
# with it and decodes with the current codec. Keep the rest identical to
# pastry.capnp, except NodeHandle, kept as protocol version 1 had it (no
# `incarnation`), so the tests also read a handle from an older node.
@0x97fa6872de938530;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("peter::pastry::wire::future");

# A 128-bit ring id: the most significant 64 bits in `hi`.
struct NodeId {
  hi @0 :UInt64;
  lo @1 :UInt64;
}

# An IPv6 address (IPv4 stored IPv4-mapped) and a port.
struct Endpoint {
  ip @0 :Data;      # exactly 16 bytes, network order
  port @1 :UInt16;
}

struct NodeHandle {
  id @0 :NodeId;
  endpoint @1 :Endpoint;
}

enum RouteKind {
  app @0;
  join @1;
  lookup @2;
  multicast @3;
}

struct RouteMsg {
  id @0 :UInt64;
  kind @1 :RouteKind;
  requestId @2 :UInt64;
  app @3 :UInt32;
  key @4 :NodeId;   # null pointer: no key (sent straight to a node)
  source @5 :NodeHandle;
  hops @6 :UInt16;
  trace @7 :Bool;
  path @8 :List(NodeId);
  payload @9 :Data;
  joinRows @10 :List(NodeHandle);
}

struct RouteAck {
  id @0 :UInt64;
}

struct JoinReply {
  rows @0 :List(NodeHandle);
  leafSet @1 :List(NodeHandle);
}

struct Probe {
  nonce @0 :UInt64;
  joining @1 :Bool;
  wantLeafSet @2 :Bool;
  knownLeafVersion @3 :UInt64;
  note @4 :Text;
}

struct ProbeReply {
  nonce @0 :UInt64;
  active @1 :Bool;
  leafVersion @2 :UInt64;
  hasLeafSet @3 :Bool;
  leafSet @4 :List(NodeHandle);
}

struct RowRequest {
  row @0 :UInt8;
}

struct RowReply {
  row @0 :UInt8;
  entries @1 :List(NodeHandle);
}

struct Leave {}

struct LookupReply {
  requestId @0 :UInt64;
  key @1 :NodeId;
  hops @2 :UInt16;
  path @3 :List(NodeId);
}

struct Gossip {
  note @0 :Text;
}

struct Envelope {
  version @0 :UInt16;
  sender @1 :NodeHandle;
  body :union {
    route @2 :RouteMsg;
    routeAck @3 :RouteAck;
    joinReply @4 :JoinReply;
    probe @5 :Probe;
    probeReply @6 :ProbeReply;
    rowRequest @7 :RowRequest;
    rowReply @8 :RowReply;
    leave @9 :Leave;
    lookupReply @10 :LookupReply;
    gossip @11 :Gossip;
  }
}
