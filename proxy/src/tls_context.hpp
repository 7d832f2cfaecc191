// The OpenSSL server context of the TLS listener: which protocol versions, cipher suites and
// ALPN protocols berth offers, and the certificate it presents. Private to the proxy module.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include "asio.hpp"
#include "berth/proxy/config.hpp"

namespace berth::proxy {

namespace ssl = boost::asio::ssl;

/// A server context offering TLS 1.2 and 1.3 only (1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305
/// only), ALPN "http/1.1", no renegotiation, no compression, with the chain and key from
/// `config`. Throws berth::Error naming the file when the chain or key cannot be read, is not
/// PEM, or the key does not belong to the certificate. Blocking file I/O; call at startup.
ssl::context make_tls_context(TlsConfig const& config);

}  // namespace berth::proxy
