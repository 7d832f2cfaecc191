// Routes to the team's other web apps: requests for a host name (and optionally a path prefix)
// that the front door reverse-proxies to an upstream HTTP server, usually an app on loopback.
// This header holds the plain route settings, the matching rule and a reachability probe for
// `berth status`; the proxying itself is internal to the server.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::proxy {

/// One entry of `routes:`. Requests whose Host is `host` and whose path starts with
/// `path_prefix` (at a segment boundary) go to http://upstream_host:upstream_port.
struct Route {
  std::string host;                         ///< host name to match, lowercase, without port
  std::string path_prefix = "/";            ///< starts with '/'; "/app" matches /app, /app/x, not /apple
  std::string upstream_host = "127.0.0.1";  ///< IP literal or host name of the upstream
  std::uint16_t upstream_port = 0;
  bool strip_prefix = false;         ///< remove path_prefix before forwarding (/app/x → /x)
  std::chrono::seconds timeout{60};  ///< to connect and to answer (else 504); longest silence
                                     ///< in a body or a WebSocket tunnel before it is closed

  /// "http://HOST:PORT", as written in the config.
  std::string upstream_url() const;
};

/// The route for a request with this Host header value (may carry ":port") and path, or
/// nullptr: the longest matching prefix among routes for that host wins. Thread-safe.
Route const* match_route(std::vector<Route> const& routes, std::string_view host_header, std::string_view path);

/// The request-target to send upstream for `target` on `route` (strip_prefix applied).
std::string upstream_target(Route const& route, std::string_view target);

/// Tries a TCP connection to the route's upstream within `timeout`: nullopt when it is
/// reachable, else what went wrong ("connection refused", "timed out after 2s"). Blocking;
/// any thread.
std::optional<std::string> probe_upstream(Route const& route, std::chrono::milliseconds timeout);

}  // namespace berth::proxy
