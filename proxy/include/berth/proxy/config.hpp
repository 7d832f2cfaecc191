// Settings of the HTTP front door. Plain values; `appliance` fills them from berth.yaml.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "berth/proxy/routes.hpp"

namespace berth::proxy {

/// TLS on the listener. The files are read when the Server is constructed.
struct TlsConfig {
  bool enabled = false;               ///< false: plain HTTP
  std::filesystem::path cert_chain;   ///< PEM: the server certificate first, then intermediates
  std::filesystem::path private_key;  ///< PEM private key of the server certificate
};

/// Requests per client per second, as a token bucket: a client (a signed-in user, or an IP
/// address for anonymous clients) may send `burst` requests at once, then `per_second`.
struct RateLimit {
  double per_second = 0;    ///< 0: no rate limit
  std::uint32_t burst = 0;  ///< 0: the same as per_second (at least 1)
};

/// Who may read GET /metrics.
enum class MetricsAccess {
  loopback,       ///< clients on 127.0.0.0/8 or ::1 only
  authenticated,  ///< loopback, or any signed-in user (the composer adds the guard)
  off,            ///< not served
};

struct ServerConfig {
  std::string host = "127.0.0.1";              ///< address to listen on (IPv4 or IPv6 literal)
  std::uint16_t port = 5000;                   ///< 0 picks a free port (tests)
  unsigned threads = 0;                        ///< I/O threads; 0 = one per CPU, at least 2
  std::uint32_t max_header_bytes = 16 * 1024;  ///< request line + headers; larger gets 431
  std::chrono::seconds header_timeout{30};     ///< to receive a whole request head (and finish the TLS handshake)
  std::chrono::seconds idle_timeout{120};      ///< keep-alive connection with no request
  std::chrono::seconds io_timeout{60};         ///< body read/write making no progress
  std::chrono::seconds shutdown_grace{25};     ///< in-flight requests get this long on SIGTERM
  std::uint32_t max_connections_per_ip = 64;   ///< more from one address are closed at once; 0 = no cap
  RateLimit rate_limit;
  bool access_log = true;                           ///< one JSON line per request on the "access" logger
  MetricsAccess metrics = MetricsAccess::loopback;  ///< who may read GET /metrics (the composer serves it)
  TlsConfig tls;
  std::vector<Route> routes;                 ///< reverse-proxied hosts, served on the main listener
  std::vector<std::string> trusted_proxies;  ///< peers whose X-Forwarded-For is extended, not replaced
};

}  // namespace berth::proxy
