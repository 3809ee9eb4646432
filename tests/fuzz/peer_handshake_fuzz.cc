// The first bytes a secured node reads from any TCP peer, before it knows
// who the peer is: the connection handshake (pastry/net/peer_auth.h). The
// first input byte picks the mode (cluster key or not, which end connected)
// and how the rest is cut into reads; the rest is what the peer sent.
#include <algorithm>
#include <optional>

#include "pastry/net/peer_auth.h"
#include "tests/fuzz/fuzz_target.h"

namespace peter::fuzz {
namespace {

using pastry::NodeId;
using pastry::net::AuthHandshake;

constexpr char kKey[] = "fuzz-cluster-key-0123456789abcdef";
const NodeId kSelf(0x0123456789abcdefULL, 0xfedcba9876543210ULL);
const NodeId kPeer(0x1111111111111111ULL, 0x2222222222222222ULL);

AuthHandshake::Nonce Fill(uint8_t byte) {
  AuthHandshake::Nonce n;
  n.fill(byte);
  return n;
}

struct Mode {
  bool key;
  bool initiator;
  size_t chunk;  // bytes per read, at least 1
};

Mode ModeOf(uint8_t b) { return Mode{(b & 1) != 0, (b & 2) != 0, size_t{1} + (b >> 2)}; }

uint8_t ByteOf(const Mode& m) {
  return static_cast<uint8_t>((m.key ? 1 : 0) | (m.initiator ? 2 : 0) | ((m.chunk - 1) << 2));
}

}  // namespace

void FuzzOne(std::string_view data) {
  if (data.empty()) return;
  const Mode mode = ModeOf(static_cast<uint8_t>(data[0]));
  data.remove_prefix(1);
  AuthHandshake h(kSelf, mode.key ? kKey : "", mode.initiator, Fill(0xa5));
  if (h.Hello().size() != AuthHandshake::kHelloBytes) Fail("our hello has the wrong size");
  size_t fed = 0;
  bool done = false;
  while (fed < data.size()) {
    const std::string_view piece = data.substr(fed, mode.chunk);
    fed += piece.size();
    AuthHandshake::Step step = h.Feed(piece);
    if (step.failure.has_value()) {
      if (step.detail.empty()) Fail("a refusal without a reason for the log");
      if (step.done) Fail("refused and done at once");
      return;  // the connection is closed here
    }
    if (!step.send.empty() && step.send.size() != AuthHandshake::kProofBytes) {
      Fail("sent something other than a proof");
    }
    if (step.done) {
      done = true;
      break;
    }
  }
  if (done != h.done()) Fail("done() disagrees with the steps");
  if (!done) return;
  // Whatever followed the handshake is handed on to the frame reader whole.
  const size_t used = mode.key ? AuthHandshake::kHelloBytes + AuthHandshake::kProofBytes
                               : AuthHandshake::kHelloBytes;
  if (h.TakeLeftover() != data.substr(used, fed - used)) Fail("leftover bytes lost or invented");
  if (mode.key) {
    // Only a peer that knows the key gets here: its frame keys must differ
    // per direction.
    if (h.FrameKey(true) == h.FrameKey(false)) Fail("one frame key for both directions");
  }
}

// A well-behaved peer's bytes in every mode, with and without frames after.
std::vector<std::string> FuzzSeeds() {
  std::vector<std::string> seeds;
  for (int bits = 0; bits < 4; ++bits) {
    for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}}) {
      const Mode mode{(bits & 1) != 0, (bits & 2) != 0, chunk};
      const std::string key = mode.key ? kKey : "";
      AuthHandshake self(kSelf, key, mode.initiator, Fill(0xa5));
      AuthHandshake peer(kPeer, key, !mode.initiator, Fill(0x5a));
      std::string sent = peer.Hello() + peer.Feed(self.Hello()).send;
      for (const std::string& after : {std::string(), std::string("\0\0\0\x05hello", 9)}) {
        seeds.push_back(std::string(1, static_cast<char>(ByteOf(mode))) + sent + after);
      }
    }
  }
  return seeds;
}

}  // namespace peter::fuzz
