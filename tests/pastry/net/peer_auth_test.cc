// The connection handshake of secured nodes (peer_auth.h) without sockets:
// two AuthHandshakes fed each other's bytes, plus the attacks it must stop
// (a wrong key, a replayed or reflected proof, a plain peer).
#include "pastry/net/peer_auth.h"

#include <optional>
#include <string>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gtest/gtest.h"

namespace peter::pastry::net {
namespace {

const NodeId kA(0x1111, 0x2222);
const NodeId kB(0x3333, 0x4444);
constexpr char kKey[] = "0123456789abcdef-cluster";

AuthHandshake::Nonce NonceOf(uint8_t fill) {
  AuthHandshake::Nonce n;
  n.fill(fill);
  return n;
}

struct Outcome {
  bool done = false;
  std::optional<AuthFailure> failure;
};

// Runs both ends to completion, each reading what the other wrote, in
// pieces of `chunk` bytes. Returns each end's outcome.
std::pair<Outcome, Outcome> Exchange(AuthHandshake& a, AuthHandshake& b, size_t chunk = 1 << 20) {
  std::string to_b = a.Hello(), to_a = b.Hello();
  Outcome oa, ob;
  for (int round = 0; round < 1000 && (!to_a.empty() || !to_b.empty()); ++round) {
    auto feed = [&](AuthHandshake& h, std::string& in, std::string& out, Outcome& o) {
      if (in.empty() || o.failure.has_value()) {
        in.clear();
        return;
      }
      const std::string piece = in.substr(0, chunk);
      in.erase(0, piece.size());
      AuthHandshake::Step s = h.Feed(piece);
      out += s.send;
      o.done = o.done || s.done;
      if (s.failure) o.failure = s.failure;
    };
    feed(a, to_a, to_b, oa);
    feed(b, to_b, to_a, ob);
  }
  return {oa, ob};
}

TEST(AuthHandshakeTest, SameKeyAuthenticatesBothEndsAndTheirIds) {
  AuthHandshake a(kA, kKey, true, AuthHandshake::FreshNonce());
  AuthHandshake b(kB, kKey, false, AuthHandshake::FreshNonce());
  auto [oa, ob] = Exchange(a, b);
  EXPECT_TRUE(oa.done && ob.done);
  EXPECT_FALSE(oa.failure || ob.failure);
  EXPECT_EQ(a.peer_id(), kB);
  EXPECT_EQ(b.peer_id(), kA);
}

TEST(AuthHandshakeTest, ByteByByteWorksAndFramesAfterwardAreLeftOver) {
  AuthHandshake a(kA, kKey, true, NonceOf(1));
  AuthHandshake b(kB, kKey, false, NonceOf(2));
  // a's hello, then a's proof for b's hello, then a frame, fed one byte at a time.
  AuthHandshake::Step first = a.Feed(b.Hello());
  ASSERT_FALSE(first.failure);
  const std::string stream = a.Hello() + first.send + "FRAME";
  std::string proof_for_a;
  for (char c : stream) {
    AuthHandshake::Step s = b.Feed(std::string(1, c));
    ASSERT_FALSE(s.failure) << s.detail;
    proof_for_a += s.send;
  }
  EXPECT_TRUE(b.done());
  EXPECT_EQ(b.TakeLeftover(), "FRAME");
  EXPECT_TRUE(a.Feed(proof_for_a).done);
}

TEST(AuthHandshakeTest, WrongKeyIsRefusedByBothEnds) {
  AuthHandshake a(kA, kKey, true, AuthHandshake::FreshNonce());
  AuthHandshake b(kB, "another key of 16+ bytes", false, AuthHandshake::FreshNonce());
  auto [oa, ob] = Exchange(a, b, 7);
  EXPECT_EQ(oa.failure, AuthFailure::kKey);
  EXPECT_EQ(ob.failure, AuthFailure::kKey);
  EXPECT_FALSE(oa.done || ob.done);
}

// The peer's hello and (wrong) proof in one read: the step still carries
// our proof, which the connection writes before closing, so that the peer
// too sees a wrong key rather than a dropped connection.
TEST(AuthHandshakeTest, AFailingStepStillCarriesOurProof) {
  AuthHandshake a(kA, kKey, true, AuthHandshake::FreshNonce());
  AuthHandshake b(kB, "another key of 16+ bytes", false, AuthHandshake::FreshNonce());
  const std::string b_proof = b.Feed(a.Hello()).send;
  AuthHandshake::Step s = a.Feed(b.Hello() + b_proof);
  EXPECT_EQ(s.failure, AuthFailure::kKey);
  EXPECT_EQ(s.send.size(), AuthHandshake::kProofBytes);
  EXPECT_EQ(b.Feed(s.send).failure, AuthFailure::kKey);
}

TEST(AuthHandshakeTest, KeyAgainstNoKeyIsAModeMismatch) {
  AuthHandshake a(kA, kKey, true, AuthHandshake::FreshNonce());
  AuthHandshake b(kB, "", false, AuthHandshake::FreshNonce());
  auto [oa, ob] = Exchange(a, b);
  EXPECT_EQ(oa.failure, AuthFailure::kMode);
  EXPECT_EQ(ob.failure, AuthFailure::kMode);
}

TEST(AuthHandshakeTest, APlainPeerIsRefusedAtItsFirstByte) {
  AuthHandshake b(kB, kKey, false, AuthHandshake::FreshNonce());
  // A Cap'n Proto frame starts with its segment count, not the magic.
  AuthHandshake::Step s = b.Feed(std::string("\0\0\0\0", 4));
  EXPECT_EQ(s.failure, AuthFailure::kHello);
}

// A proof recorded on one connection is useless on the next: the verifier's
// nonce is fresh.
TEST(AuthHandshakeTest, ARecordedProofDoesNotReplay) {
  AuthHandshake a1(kA, kKey, true, NonceOf(1));
  AuthHandshake b1(kB, kKey, false, NonceOf(2));
  const std::string a_hello = a1.Hello();
  const std::string a_proof = a1.Feed(b1.Hello()).send;
  ASSERT_TRUE(b1.Feed(a_hello + a_proof).done);  // the genuine run
  // The attacker replays a's bytes to b, which picked a new nonce.
  AuthHandshake b2(kB, kKey, false, NonceOf(3));
  AuthHandshake::Step s = b2.Feed(a_hello + a_proof);
  EXPECT_EQ(s.failure, AuthFailure::kKey);
}

// An attacker without the key connects to b and hands b's own proof back:
// the role byte (and b's nonce in the prover's place) make it wrong.
TEST(AuthHandshakeTest, AReflectedProofIsRefused) {
  AuthHandshake b(kB, kKey, false, NonceOf(2));
  AuthHandshake mirror(kA, kKey, true, NonceOf(9));  // only to shape a hello
  AuthHandshake::Step step = b.Feed(mirror.Hello());
  ASSERT_EQ(step.send.size(), AuthHandshake::kProofBytes);
  EXPECT_EQ(b.Feed(step.send).failure, AuthFailure::kKey);
}

TEST(AuthHandshakeTest, AnEchoedNonceIsRefused) {
  AuthHandshake b(kB, kKey, false, NonceOf(2));
  AuthHandshake echo(kA, kKey, true, NonceOf(2));
  EXPECT_EQ(b.Feed(echo.Hello()).failure, AuthFailure::kHello);
}

TEST(AuthHandshakeTest, WithoutKeyTheHelloCarriesTheId) {
  AuthHandshake a(kA, "", true, AuthHandshake::FreshNonce());
  AuthHandshake b(kB, "", false, AuthHandshake::FreshNonce());
  auto [oa, ob] = Exchange(a, b);
  EXPECT_TRUE(oa.done && ob.done);
  EXPECT_EQ(b.peer_id(), kA);
}

TEST(AuthHandshakeTest, FreshNoncesDiffer) {
  EXPECT_NE(AuthHandshake::FreshNonce(), AuthHandshake::FreshNonce());
}

}  // namespace
}  // namespace peter::pastry::net

namespace peter::pastry::net {
namespace {

// Both ends of a finished key handshake: the frame keys they derived.
struct FrameKeys {
  std::string a_send, a_recv, b_send, b_recv;
};
FrameKeys KeysAfterHandshake() {
  AuthHandshake a(kA, kKey, true, AuthHandshake::FreshNonce());
  AuthHandshake b(kB, kKey, false, AuthHandshake::FreshNonce());
  const std::string b_proof = b.Feed(a.Hello()).send;
  const std::string a_proof = a.Feed(b.Hello() + b_proof).send;
  EXPECT_TRUE(b.Feed(a_proof).done);
  EXPECT_TRUE(a.done());
  return {a.FrameKey(true), a.FrameKey(false), b.FrameKey(true), b.FrameKey(false)};
}

TEST(FrameMacTest, EachDirectionHasItsOwnKeyBothEndsAgreeOn) {
  FrameKeys k = KeysAfterHandshake();
  EXPECT_EQ(k.a_send, k.b_recv);
  EXPECT_EQ(k.b_send, k.a_recv);
  EXPECT_NE(k.a_send, k.b_send);
  // Another connection (fresh nonces) has other keys.
  EXPECT_NE(KeysAfterHandshake().a_send, k.a_send);
}

TEST(FrameMacTest, TaggedFramesVerifyInOrder) {
  FrameKeys k = KeysAfterHandshake();
  FrameMac sender(k.a_send), receiver(k.b_recv);
  for (const std::string frame : {"one", "two", "three"}) {
    auto tag = sender.Tag(frame);
    EXPECT_TRUE(receiver.Verify(frame, std::string_view(tag.data(), tag.size()))) << frame;
  }
}

TEST(FrameMacTest, AlteredReplayedReorderedOrReflectedFramesFail) {
  FrameKeys k = KeysAfterHandshake();
  {  // altered
    FrameMac sender(k.a_send), receiver(k.b_recv);
    auto tag = sender.Tag("pay 10");
    EXPECT_FALSE(receiver.Verify("pay 99", std::string_view(tag.data(), tag.size())));
  }
  {  // replayed: the same frame and tag a second time
    FrameMac sender(k.a_send), receiver(k.b_recv);
    auto tag = sender.Tag("once");
    const std::string_view t(tag.data(), tag.size());
    EXPECT_TRUE(receiver.Verify("once", t));
    EXPECT_FALSE(receiver.Verify("once", t));
  }
  {  // reordered
    FrameMac sender(k.a_send), receiver(k.b_recv);
    auto first = sender.Tag("first");
    auto second = sender.Tag("second");
    EXPECT_FALSE(receiver.Verify("second", std::string_view(second.data(), second.size())));
    (void)first;
  }
  {  // reflected: a's own frame sent back to a
    FrameMac sender(k.a_send), a_receiver(k.a_recv);
    auto tag = sender.Tag("echo");
    EXPECT_FALSE(a_receiver.Verify("echo", std::string_view(tag.data(), tag.size())));
  }
}

}  // namespace
}  // namespace peter::pastry::net

namespace peter::pastry::net {
namespace {

// The tag is what the header says, computed here with OpenSSL's one-shot
// HMAC(): the first 16 bytes of HMAC-SHA256(key, seq (8 bytes BE) | frame).
TEST(FrameMacTest, TagIsTruncatedHmacOfSequenceAndFrame) {
  const std::string key = "0123456789abcdef0123456789abcdef";
  FrameMac mac(key);
  for (uint64_t seq = 0; seq < 3; ++seq) {
    const std::string frame = "frame " + std::to_string(seq);
    std::string input(8, '\0');
    for (int i = 0; i < 8; ++i) input[i] = static_cast<char>(seq >> (56 - 8 * i));
    input += frame;
    unsigned char expected[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), expected, &len);
    const auto tag = mac.Tag(frame);
    EXPECT_EQ(std::string(tag.data(), tag.size()),
              std::string(reinterpret_cast<const char*>(expected), FrameMac::kTagBytes))
        << seq;
  }
}

}  // namespace
}  // namespace peter::pastry::net

namespace peter::pastry::net {
namespace {

std::string Hmac(std::string_view key, std::string_view input) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string Bytes(const AuthHandshake::Nonce& n) {
  return std::string(reinterpret_cast<const char*>(n.data()), n.size());
}

std::string IdBytes(const NodeId& id) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(id.hi() >> shift));
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(id.lo() >> shift));
  return out;
}

// The proof and the frame keys are the formulas in peer_auth.h, computed
// here with OpenSSL directly: a node of another build must agree with them.
TEST(AuthHandshakeTest, ProofAndFrameKeysAreTheDocumentedHmacs) {
  const AuthHandshake::Nonce na = NonceOf(0xa1), nb = NonceOf(0xb2);
  AuthHandshake a(kA, kKey, /*initiator=*/true, na);
  AuthHandshake b(kB, kKey, /*initiator=*/false, nb);
  const std::string b_proof = b.Feed(a.Hello()).send;
  EXPECT_EQ(b_proof, Hmac(kKey, "peter-cluster-key-v1R" + Bytes(nb) + Bytes(na) + IdBytes(kB) +
                                    IdBytes(kA)));
  const std::string a_proof = a.Feed(b.Hello() + b_proof).send;
  EXPECT_EQ(a_proof, Hmac(kKey, "peter-cluster-key-v1I" + Bytes(na) + Bytes(nb) + IdBytes(kA) +
                                    IdBytes(kB)));
  ASSERT_TRUE(b.Feed(a_proof).done);
  ASSERT_TRUE(a.done());
  EXPECT_EQ(a.FrameKey(true), Hmac(kKey, "peter-frame-key-v1I" + Bytes(na) + Bytes(nb)));
  EXPECT_EQ(a.FrameKey(false), Hmac(kKey, "peter-frame-key-v1R" + Bytes(na) + Bytes(nb)));
  EXPECT_EQ(b.FrameKey(true), a.FrameKey(false));
}

}  // namespace
}  // namespace peter::pastry::net
