#include "tests/pastry/net/test_pki.h"

#include <stdio.h>
#include <sys/wait.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace peter::testing {
namespace {

constexpr char kNewKey[] = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

}  // namespace

absl::StatusOr<std::string> RunShell(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("popen failed");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = pclose(pipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("`", command, "` failed (status ", status, ")"));
  }
  return out;
}

absl::StatusOr<TestPki> TestPki::Create(const std::string& dir, const std::string& name) {
  TestPki pki(dir, name);
  pki.ca_cert_ = absl::StrCat(dir, "/", name, ".pem");
  pki.ca_key_ = absl::StrCat(dir, "/", name, ".key");
  absl::StatusOr<std::string> r =
      RunShell(absl::StrCat("openssl req -x509 ", kNewKey, " -keyout '", pki.ca_key_, "' -out '",
                            pki.ca_cert_, "' -days 2 -subj /CN=", name, " 2>/dev/null"));
  if (!r.ok()) return r.status();
  return pki;
}

absl::StatusOr<TlsFiles> TestPki::Issue(const std::string& node_name) const {
  const std::string base = absl::StrCat(dir_, "/", name_, "-", node_name);
  TlsFiles files{base + ".pem", base + ".key", ca_cert_};
  absl::StatusOr<std::string> r =
      RunShell(absl::StrCat("openssl req -new ", kNewKey, " -keyout '", files.key, "' -out '",
                            base, ".csr' -subj /CN=", node_name, " 2>/dev/null && ",
                            "openssl x509 -req -in '", base, ".csr' -CA '", ca_cert_,
                            "' -CAkey '", ca_key_, "' -set_serial 0x$(openssl rand -hex 8)",
                            " -days 2 -out '", files.cert, "' 2>/dev/null"));
  if (!r.ok()) return r.status();
  return files;
}

absl::StatusOr<std::string> OpensslCertifiedId(const std::string& cert_file) {
  absl::StatusOr<std::string> r = RunShell(
      absl::StrCat("openssl x509 -in '", cert_file,
                   "' -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum"));
  if (!r.ok()) return r.status();
  if (r->size() < 32) return absl::InternalError("short sha256sum output");
  return r->substr(0, 32);
}

}  // namespace peter::testing
