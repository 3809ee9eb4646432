// Credentials a node presents to its peers and requires from them
// (docs/security.md). With none set, any process that can reach a node's
// listener may join the ring; set the same kind on every node of a cluster.
#ifndef PETER_PASTRY_SECURITY_H_
#define PETER_PASTRY_SECURITY_H_

#include <cstddef>
#include <string>

namespace peter::pastry {

// Shorter cluster keys are refused: the key is the only secret of a
// key-protected cluster, and HMAC's strength is bounded by it.
inline constexpr size_t kMinClusterKeyBytes = 16;

// Every field has a default initializer (none set), so a designated
// initializer may name only some.
struct SecurityOptions {
  // TLS 1.3 with mutual authentication: all three PEM files, or none. Both
  // ends of every connection must present a certificate signed by the CA in
  // `tls_ca_file`. The node's id is then derived from its certificate's
  // public key (the first 128 bits of SHA-256 of the DER
  // SubjectPublicKeyInfo), so an explicit id is refused.
  std::string tls_cert_file = {};  // this node's certificate (chain)
  std::string tls_key_file = {};   // its private key
  std::string tls_ca_file = {};    // the cluster CA
  // A pre-shared cluster key (at least 16 bytes): every connection starts
  // with an HMAC-SHA256 challenge-response over fresh nonces from both ends.
  // It authenticates membership; without TLS it does not encrypt.
  std::string cluster_key = {};

  bool tls() const {
    return !tls_cert_file.empty() || !tls_key_file.empty() || !tls_ca_file.empty();
  }
  bool enabled() const { return tls() || !cluster_key.empty(); }
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_SECURITY_H_
