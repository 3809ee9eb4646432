#include "pastry/net/peer_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"

namespace peter::pastry::net {
namespace {

constexpr std::string_view kMagic = "PTRAUTH1";
constexpr std::string_view kProofLabel = "peter-cluster-key-v1";
constexpr std::string_view kFrameKeyLabel = "peter-frame-key-v1";
constexpr uint8_t kFlagKey = 1;

void AppendId(std::string& out, const NodeId& id) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(id.hi() >> shift));
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(id.lo() >> shift));
}

uint64_t ReadBe64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

NodeId ReadId(const unsigned char* p) { return NodeId(ReadBe64(p), ReadBe64(p + 8)); }

std::string HmacSha256(std::string_view key, std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

// What the key is applied to: a label, which side of the connection the
// subject (prover or sender) is, then two nonces in the caller's order.
std::string KeyedInput(std::string_view label, bool subject_initiated,
                       const AuthHandshake::Nonce& first, const AuthHandshake::Nonce& second) {
  std::string input(label);
  input.push_back(subject_initiated ? 'I' : 'R');
  input.append(reinterpret_cast<const char*>(first.data()), first.size());
  input.append(reinterpret_cast<const char*>(second.data()), second.size());
  return input;
}

}  // namespace

AuthHandshake::AuthHandshake(const NodeId& self, std::string_view key, bool initiator,
                             const Nonce& nonce)
    : self_(self), key_(key), initiator_(initiator), nonce_(nonce) {}

AuthHandshake::Nonce AuthHandshake::FreshNonce() {
  Nonce n;
  // RAND_bytes fails only if the CSPRNG cannot be seeded; a predictable
  // nonce would make proofs replayable, so that is fatal.
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1) std::abort();
  return n;
}

std::string AuthHandshake::Hello() const {
  std::string out(kMagic);
  out.push_back(static_cast<char>(key_.empty() ? 0 : kFlagKey));
  out.append(reinterpret_cast<const char*>(nonce_.data()), nonce_.size());
  AppendId(out, self_);
  return out;
}

// Our proof (ours) or the one we expect from the peer.
std::string AuthHandshake::Proof(bool ours) const {
  std::string input = KeyedInput(kProofLabel, ours ? initiator_ : !initiator_,
                                 ours ? nonce_ : peer_nonce_, ours ? peer_nonce_ : nonce_);
  AppendId(input, ours ? self_ : peer_id_);
  AppendId(input, ours ? peer_id_ : self_);
  return HmacSha256(key_, input);
}

AuthHandshake::Step AuthHandshake::Feed(std::string_view bytes) {
  Step step;
  buffer_.append(bytes);
  auto fail = [&](AuthFailure why, std::string detail) {
    step.failure = why;
    step.detail = std::move(detail);
    return step;
  };
  if (done_) return step;
  if (!have_hello_) {
    // Refuse as soon as the magic is wrong: a plain peer's frame is not
    // waited for in full.
    const size_t n = std::min(buffer_.size(), kMagic.size());
    if (buffer_.compare(0, n, kMagic.substr(0, n)) != 0) {
      return fail(AuthFailure::kHello, "the peer did not open with a handshake (no credentials?)");
    }
    if (buffer_.size() < kHelloBytes) return step;
    const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data()) + kMagic.size();
    const bool peer_has_key = (p[0] & kFlagKey) != 0;
    if (peer_has_key != !key_.empty()) {
      return fail(AuthFailure::kMode, peer_has_key ? "the peer uses a cluster key and we do not"
                                                   : "the peer has no cluster key");
    }
    std::copy(p + 1, p + 1 + peer_nonce_.size(), peer_nonce_.begin());
    peer_id_ = ReadId(p + 1 + peer_nonce_.size());
    buffer_.erase(0, kHelloBytes);
    have_hello_ = true;
    if (peer_nonce_ == nonce_) return fail(AuthFailure::kHello, "the peer echoed our nonce");
    if (key_.empty()) {
      done_ = true;
      step.done = true;
      return step;
    }
    step.send = Proof(/*ours=*/true);
  }
  if (buffer_.size() < kProofBytes) return step;
  const std::string expected = Proof(/*ours=*/false);
  if (CRYPTO_memcmp(expected.data(), buffer_.data(), kProofBytes) != 0) {
    return fail(AuthFailure::kKey, "wrong cluster-key proof");
  }
  buffer_.erase(0, kProofBytes);
  done_ = true;
  step.done = true;
  return step;
}

std::string AuthHandshake::FrameKey(bool sending) const {
  return HmacSha256(key_, KeyedInput(kFrameKeyLabel, sending ? initiator_ : !initiator_,
                                     initiator_ ? nonce_ : peer_nonce_,
                                     initiator_ ? peer_nonce_ : nonce_));
}

FrameMac::FrameMac(std::string_view key) {
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  keyed_ = hmac != nullptr ? EVP_MAC_CTX_new(hmac) : nullptr;
  EVP_MAC_free(hmac);  // the context keeps its own reference
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                         OSSL_PARAM_construct_end()};
  // Fails only if OpenSSL lacks HMAC-SHA256; a connection must not go on
  // with unauthenticated frames, so that is fatal.
  if (keyed_ == nullptr ||
      EVP_MAC_init(keyed_, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                   params) != 1) {
    std::abort();
  }
}

FrameMac::~FrameMac() { EVP_MAC_CTX_free(keyed_); }

std::array<char, FrameMac::kTagBytes> FrameMac::Tag(std::string_view frame) {
  unsigned char seq[8];
  for (int i = 0; i < 8; ++i) seq[i] = static_cast<unsigned char>(seq_ >> (56 - 8 * i));
  ++seq_;
  std::unique_ptr<EVP_MAC_CTX, void (*)(EVP_MAC_CTX*)> ctx(EVP_MAC_CTX_dup(keyed_),
                                                          EVP_MAC_CTX_free);
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t mac_len = 0;
  if (ctx == nullptr || EVP_MAC_update(ctx.get(), seq, sizeof seq) != 1 ||
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(frame.data()),
                     frame.size()) != 1 ||
      EVP_MAC_final(ctx.get(), mac, &mac_len, sizeof mac) != 1 || mac_len < kTagBytes) {
    std::abort();  // out of memory inside OpenSSL
  }
  std::array<char, kTagBytes> tag;
  std::copy(mac, mac + kTagBytes, reinterpret_cast<unsigned char*>(tag.data()));
  return tag;
}

bool FrameMac::Verify(std::string_view frame, std::string_view tag) {
  const std::array<char, kTagBytes> expected = Tag(frame);
  return tag.size() == kTagBytes && CRYPTO_memcmp(expected.data(), tag.data(), kTagBytes) == 0;
}

absl::StatusOr<NodeId> CertifiedId(x509_st* certificate) {
  EVP_PKEY* key = X509_get0_pubkey(certificate);
  if (key == nullptr) return absl::InvalidArgumentError("certificate without a public key");
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return absl::InvalidArgumentError("cannot encode the certificate's public key");
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(len), digest);
  OPENSSL_free(der);
  return ReadId(digest);
}

absl::StatusOr<NodeId> CertifiedIdFromFile(const std::string& pem_file) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(pem_file.c_str(), "r"), std::fclose);
  if (file == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot open certificate ", pem_file));
  }
  std::unique_ptr<X509, void (*)(X509*)> cert(
      PEM_read_X509(file.get(), nullptr, nullptr, nullptr), X509_free);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("no PEM certificate in ", pem_file));
  }
  return CertifiedId(cert.get());
}

}  // namespace peter::pastry::net
