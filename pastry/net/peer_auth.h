// Private to pastry/net: the handshake that opens every connection of a
// secured node (docs/security.md), and node ids certified by TLS.
//
// After TCP connect (and the TLS handshake, with TLS), both ends send a
// hello at once:
//   "PTRAUTH1" | flags (1 byte; bit 0: a cluster key is in use) |
//   nonce (32 random bytes) | node id (16 bytes, big-endian)
// With a cluster key, each end then answers the other's hello with a proof
//   HMAC-SHA256(key, "peter-cluster-key-v1" | role | own nonce |
//               peer's nonce | own id | peer's id)
// where role is 'I' for the end that connected and 'R' for the one that
// accepted. The proof covers both fresh nonces, so a recorded one is useless
// on another connection, and the role byte stops an attacker from reflecting
// a node's proof back to it. Without a key the hellos alone carry each end's
// claimed id; with TLS the transport checks that id against the certificate.
// Frames follow the handshake on the same stream.
//
// AuthHandshake is I/O-free: the connection feeds it bytes and writes what
// it returns. Not thread-safe.
#ifndef PETER_PASTRY_NET_PEER_AUTH_H_
#define PETER_PASTRY_NET_PEER_AUTH_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "peter/pastry/node_id.h"

struct x509_st;
struct evp_mac_ctx_st;

namespace peter::pastry::net {

// Why a peer was refused; counted per reason (TransportStats::auth_failures).
enum class AuthFailure : uint8_t {
  kTls,            // TLS handshake failed: no or untrusted certificate, not TLS 1.3, plain TCP
  kHello,          // the stream did not start with a hello (a peer without credentials)
  kMode,           // the peer does (not) use a cluster key while we do (not)
  kKey,            // wrong proof: the peer does not hold our cluster key
  kCertificateId,  // the id in the hello is not the one its certificate certifies
  kSenderId,       // a frame's sender id is not the connection's authenticated id
  kTimeout,        // no complete handshake within the connect timeout
  kFrameMac,       // a frame's tag is wrong: altered, replayed or injected (key without TLS)
};
inline constexpr size_t kAuthFailureCount = 8;
// Names for counters and logs, by AuthFailure (inline: the admin endpoint
// renders them without linking the runtime).
inline constexpr std::array<const char*, kAuthFailureCount> kAuthFailureNames = {
    "tls", "hello", "mode", "key", "certificate_id", "sender_id", "timeout", "frame_mac"};
inline const char* AuthFailureName(AuthFailure failure) {
  return kAuthFailureNames[static_cast<size_t>(failure)];
}

class AuthHandshake {
 public:
  using Nonce = std::array<uint8_t, 32>;
  static constexpr size_t kHelloBytes = 8 + 1 + 32 + 16;
  static constexpr size_t kProofBytes = 32;

  // `key` empty: no cluster key. `initiator`: this end connected.
  AuthHandshake(const NodeId& self, std::string_view key, bool initiator, const Nonce& nonce);

  static Nonce FreshNonce();  // from OpenSSL's CSPRNG

  // What to send first.
  std::string Hello() const;

  struct Step {
    std::string send;  // bytes to write now (may be empty)
    bool done = false;
    std::optional<AuthFailure> failure;
    std::string detail;  // for logs, with a failure
  };
  // Takes received bytes. Once done, bytes beyond the handshake are in
  // leftover() (the first frames). After a failure, feed nothing more.
  Step Feed(std::string_view bytes);

  bool done() const { return done_; }
  // The id the peer claimed in its hello (authenticated by the key, if any).
  const NodeId& peer_id() const { return peer_id_; }
  // With a cluster key, once done: the key that authenticates the frames
  // we send (`sending`) or receive, distinct per direction and connection:
  //   HMAC-SHA256(key, "peter-frame-key-v1" | sender's role |
  //               initiator's nonce | responder's nonce)
  std::string FrameKey(bool sending) const;
  std::string TakeLeftover() { return std::move(buffer_); }

 private:
  std::string Proof(bool ours) const;

  const NodeId self_;
  const std::string key_;
  const bool initiator_;
  const Nonce nonce_;
  Nonce peer_nonce_{};
  NodeId peer_id_;
  bool have_hello_ = false;
  bool done_ = false;
  std::string buffer_;
};

// Authenticates the frames of one direction of a key-protected connection
// without TLS: each frame is followed by a tag, the first 16 bytes of
//   HMAC-SHA256(frame key, sequence number (8 bytes, big-endian) | frame)
// with the sequence number counting frames from 0, so an altered, injected,
// dropped-and-replayed or reordered frame fails. Not thread-safe.
class FrameMac {
 public:
  static constexpr size_t kTagBytes = 16;
  explicit FrameMac(std::string_view key);
  ~FrameMac();
  FrameMac(const FrameMac&) = delete;
  FrameMac& operator=(const FrameMac&) = delete;
  // The next frame's tag (advances the sequence number).
  std::array<char, kTagBytes> Tag(std::string_view frame);
  // Checks the next frame's tag (advances the sequence number).
  bool Verify(std::string_view frame, std::string_view tag);

 private:
  // HMAC-SHA256 keyed once; each tag works on a copy (keying hashes the
  // key's pads, which per frame would cost as much as the frame's MAC).
  evp_mac_ctx_st* keyed_ = nullptr;
  uint64_t seq_ = 0;
};

// The certified id of a certificate: the first 128 bits of SHA-256 of its
// DER SubjectPublicKeyInfo.
absl::StatusOr<NodeId> CertifiedId(x509_st* certificate);
// The same for the first certificate of a PEM file.
absl::StatusOr<NodeId> CertifiedIdFromFile(const std::string& pem_file);

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_PEER_AUTH_H_
