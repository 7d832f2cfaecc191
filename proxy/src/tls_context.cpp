// TLS policy of the front door, in one place. The choices follow Mozilla's "intermediate"
// profile: TLS 1.2 and 1.3, forward-secret AEAD suites only, so current docker, podman,
// skopeo, containerd and curl all connect while 1.0/1.1 and CBC/RSA-kex clients are refused.
#include "tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>
#include <string>

#include "berth/core/error.hpp"

namespace berth::proxy {
namespace {

// TLS 1.3: all three suites, AES-128-GCM first (as Mozilla's modern profile and most clients
// order them): with AES-NI it is as safe and ~15% cheaper per byte than AES-256 for both ends.
constexpr char tls13_suites[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
// TLS 1.2 only.
constexpr char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr char key_exchange_groups[] = "X25519:P-256:P-384";
constexpr unsigned char alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};  // length-prefixed

// The most recent OpenSSL error as text, and the queue emptied for the next caller.
std::string openssl_reason() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  // "error:0A080009:SSL routines::PEM lib" → keep the part after the last "::" or ":".
  std::string reason = text;
  if (auto colon = reason.rfind(':'); colon != std::string::npos) reason = reason.substr(colon + 1);
  return reason;
}

// ALPN: berth speaks HTTP/1.1 only. A client offering other protocols but not http/1.1 still
// gets a connection without ALPN, as if it had sent none.
int select_alpn(SSL*, unsigned char const** out, unsigned char* out_length, unsigned char const* offered,
                unsigned int offered_length, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, alpn_http11, sizeof alpn_http11, offered, offered_length) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

ssl::context make_tls_context(TlsConfig const& config) {
  ssl::context context(ssl::context::tls_server);
  auto* handle = context.native_handle();
  auto fail = [](std::string const& what, std::string const& reason) {
    return Error(what + ": " + reason +
                 "\nHINT: check server.tls.cert and server.tls.key name a readable PEM certificate chain and its "
                 "private key (or remove both to use berth's own CA)");
  };
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                      ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                      ssl::context::single_dh_use);
  SSL_CTX_set_options(handle, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_min_proto_version(handle, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(handle, tls12_ciphers) != 1 || SSL_CTX_set_ciphersuites(handle, tls13_suites) != 1 ||
      SSL_CTX_set1_groups_list(handle, key_exchange_groups) != 1)
    throw Error("cannot set up the TLS context: " + openssl_reason());
  SSL_CTX_set_alpn_select_cb(handle, select_alpn, nullptr);

  boost::system::error_code ec;
  context.use_certificate_chain_file(config.cert_chain.string(), ec);
  if (ec) throw fail("cannot load TLS certificate chain " + config.cert_chain.string(), ec.message());
  // OpenSSL checks the key against the certificate as it loads it; a mismatch gets its own message.
  auto mismatch = [&] {
    return Error("TLS private key " + config.private_key.string() + " does not match certificate " +
                 config.cert_chain.string() +
                 "\nHINT: check server.tls.cert and server.tls.key name a certificate chain and its own private key");
  };
  context.use_private_key_file(config.private_key.string(), ssl::context::pem, ec);
  if (ec && ec.message().find("mismatch") != std::string::npos) throw mismatch();
  if (ec) throw fail("cannot load TLS private key " + config.private_key.string(), ec.message());
  if (SSL_CTX_check_private_key(handle) != 1) {
    ERR_clear_error();
    throw mismatch();
  }
  return context;
}

}  // namespace berth::proxy
