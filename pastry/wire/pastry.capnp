# The Pastry overlay's wire format. One frame on a TCP stream is one Cap'n
# Proto message in standard stream framing (segment table + segments) whose
# root is an Envelope. Only pastry/wire/codec.cc reads or writes these types;
# the core sees the plain structs of pastry/core/messages.h.
#
# Evolution rules (every change must keep old frames readable, and new frames
# readable by old nodes):
#   - Fields are only ever appended, with the next free ordinal. Never
#     renumber, retype, reorder or remove a field; retire one by leaving it
#     unset and renaming it `obsoleteFoo`.
#   - New message types are new members appended to Envelope.body. A node
#     that does not know a member decodes the frame as the error "unknown
#     message type" (absl::StatusCode::kUnimplemented), drops it and counts it.
#   - New RouteKind values are appended likewise; an unknown one is also an
#     "unknown message type".
#   - Envelope.version is raised when the meaning of existing fields changes
#     or a peer must be able to tell what the sender understands. Receivers
#     drop frames whose version is below kMinProtocolVersion
#     (pastry/core/messages.h); a higher version is read as far as the
#     receiver's schema goes (unknown fields are ignored).
#   - Every NodeHandle on the wire carries an endpoint whose `ip` is exactly
#     16 bytes; a frame that breaks this is malformed.
@0x96408e7a5d19dc10;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("peter::pastry::wire::schema");

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
  # Which run of the node: chosen at start, larger for a later run of the
  # same id; 0 (absent, from older nodes): unknown. See NodeHandle in
  # include/peter/pastry/node_handle.h.
  incarnation @2 :UInt64;
}

enum RouteKind {
  app @0;
  join @1;
  lookup @2;
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

# Acknowledges route messages received from the acknowledging node's peer:
# `id` (unless 0) and every entry of `ids` (0 entries ignored). A node
# writes a lone id in `id` (as version 1 did) and a batch as its first id
# in `id` and the rest in `ids`. A version-1 node reads only `id`, so a
# node sends batches only to peers whose own frames carry version >= 2
# (kBatchedAckVersion in pastry/core/messages.h).
struct RouteAck {
  id @0 :UInt64;
  ids @1 :List(UInt64);  # version 2; at most max_list_entries on decode
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
  leafVersion @4 :UInt64;  # the prober's own leaf-set version; 0: unknown
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
    # Append new message types here (@11, ...).
  }
}
