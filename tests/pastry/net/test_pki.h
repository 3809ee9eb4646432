// A throwaway certificate authority for tests, made with the `openssl`
// command-line tool in a temporary directory at test time (no private key
// is committed). EC P-256 keys: quick to generate.
#ifndef PETER_TESTS_PASTRY_NET_TEST_PKI_H_
#define PETER_TESTS_PASTRY_NET_TEST_PKI_H_

#include <string>

#include "absl/status/statusor.h"

namespace peter::testing {

struct TlsFiles {
  std::string cert;
  std::string key;
  std::string ca;
};

class TestPki {
 public:
  // A self-signed CA named `name`, its files in `dir` (which must exist).
  static absl::StatusOr<TestPki> Create(const std::string& dir, const std::string& name);

  // A fresh key and a certificate for it signed by this CA.
  absl::StatusOr<TlsFiles> Issue(const std::string& node_name) const;

  const std::string& ca_cert() const { return ca_cert_; }

 private:
  TestPki(std::string dir, std::string name) : dir_(std::move(dir)), name_(std::move(name)) {}
  std::string dir_;
  std::string name_;
  std::string ca_cert_;
  std::string ca_key_;
};

// The node id a certificate certifies, computed independently of Peter's
// code by the openssl tool: the first 32 hex digits of SHA-256 over the DER
// SubjectPublicKeyInfo.
absl::StatusOr<std::string> OpensslCertifiedId(const std::string& cert_file);

// Runs `command` with /bin/sh; its stdout, or an error with its exit status.
absl::StatusOr<std::string> RunShell(const std::string& command);

}  // namespace peter::testing

#endif  // PETER_TESTS_PASTRY_NET_TEST_PKI_H_
