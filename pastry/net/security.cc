#include "pastry/net/security.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "pastry/net/peer_auth.h"

namespace peter::pastry::net {
namespace {

absl::Status Bad(std::string_view what, const std::string& file, const std::error_code& ec) {
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(what), " \"", file, "\": ", ec ? ec.message() : "invalid"));
}

absl::StatusOr<std::unique_ptr<asio::ssl::context>> LoadTls(const SecurityOptions& o) {
  if (o.tls_cert_file.empty() || o.tls_key_file.empty() || o.tls_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs all three of a certificate, its key and the cluster CA");
  }
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls);
  SSL_CTX* native = ctx->native_handle();
  // TLS 1.3 only: no downgrade to older versions' weaker handshakes.
  if (SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1) {
    return absl::InternalError("OpenSSL refuses TLS 1.3");
  }
  std::error_code ec;
  ctx->use_certificate_chain_file(o.tls_cert_file, ec);
  if (ec) return Bad("TLS certificate", o.tls_cert_file, ec);
  ctx->use_private_key_file(o.tls_key_file, asio::ssl::context::pem, ec);
  if (ec) return Bad("TLS key", o.tls_key_file, ec);
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("TLS key \"", o.tls_key_file,
                                                   "\" does not match certificate \"",
                                                   o.tls_cert_file, "\""));
  }
  ctx->load_verify_file(o.tls_ca_file, ec);
  if (ec) return Bad("TLS CA", o.tls_ca_file, ec);
  // Both ends verify: a server requires the client's certificate too. No
  // host name is checked: peers are named by the id their key certifies.
  ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
  if (ec) return absl::InternalError(absl::StrCat("TLS verify mode: ", ec.message()));
  return ctx;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PeerSecurity>> LoadPeerSecurity(const SecurityOptions& options) {
  if (!options.enabled()) return nullptr;
  auto security = std::make_unique<PeerSecurity>();
  if (!options.cluster_key.empty() && options.cluster_key.size() < kMinClusterKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the cluster key must have at least ",
                                                   kMinClusterKeyBytes, " bytes"));
  }
  security->cluster_key = options.cluster_key;
  if (options.tls()) {
    absl::StatusOr<std::unique_ptr<asio::ssl::context>> tls = LoadTls(options);
    if (!tls.ok()) return tls.status();
    security->tls = std::move(*tls);
    absl::StatusOr<NodeId> id = CertifiedIdFromFile(options.tls_cert_file);
    if (!id.ok()) return id.status();
    security->certified_id = *id;
  }
  return security;
}

}  // namespace peter::pastry::net
