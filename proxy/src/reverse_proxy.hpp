// Forwarding one client request to a route's upstream and its answer back: the connection
// layer (server.cpp) hands over the request head as soon as it has read it, and this code
// streams the body up, the response down, or relays raw bytes both ways after a WebSocket
// (or any other) upgrade. Private to the proxy module; the settings are in routes.hpp.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "asio.hpp"
#include "berth/proxy/config.hpp"
#include "berth/proxy/metrics.hpp"
#include "tls_stream.hpp"

namespace spdlog {
class logger;
}

namespace berth::proxy {

/// What forwarding needs from the server's client connection. The references outlive forward().
struct ClientSide {
  std::chrono::steady_clock::time_point& deadline;  ///< the server closes the connection once past it
  std::span<char> buffer;                           ///< the connection's scratch space for body chunks
  std::string const& remote_ip;                     ///< the peer's address, for X-Forwarded-For
};

class ReverseProxy {
public:
  /// Takes the routes, trusted proxies, io timeout and access-log switch of `config`.
  ReverseProxy(ServerConfig const& config, std::shared_ptr<Metrics> metrics);

  /// The route that takes a request with this head, or nullptr. Thread-safe.
  Route const* match(http::request_header<> const& head) const;

  /// Forwards the request whose head `head` has just read from `client` (body bytes that came
  /// with it are in `buffer`) to `route` and writes the answer back: a 502 when the upstream
  /// cannot be reached or answers garbage, a 504 when it does not answer within the route's
  /// timeout. Logs the exchange on the access log and counts it in the metrics. Returns true
  /// when the client connection may carry another request. Runs on the connection's thread;
  /// does not throw for network failures (either side), which end the exchange.
  template <class Stream>
  net::awaitable<bool> forward(Stream& client, beast::flat_buffer& buffer, http::request_parser<http::empty_body>& head,
                               Route const& route, ClientSide side);

private:
  std::vector<Route> routes_;
  std::vector<std::string> trusted_proxies_;
  std::chrono::seconds io_timeout_;
  bool access_log_;
  std::shared_ptr<Metrics> metrics_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<spdlog::logger> access_;
  std::string request_id_prefix_;
  std::atomic<std::uint64_t> next_request_id_{1};
};

extern template net::awaitable<bool> ReverseProxy::forward(tcp::socket&, beast::flat_buffer&,
                                                           http::request_parser<http::empty_body>&, Route const&,
                                                           ClientSide);
extern template net::awaitable<bool> ReverseProxy::forward(TlsStream&, beast::flat_buffer&,
                                                           http::request_parser<http::empty_body>&, Route const&,
                                                           ClientSide);

}  // namespace berth::proxy
