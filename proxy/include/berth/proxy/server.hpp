// The HTTP/1.1 server: accepts connections (plain or TLS), reads request heads, dispatches to a
// Router and streams bodies both ways. Keep-alive and pipelining are handled here; handlers
// never see a socket. It runs on its own small thread pool; stop() (or SIGTERM/SIGINT, when
// asked to watch them) stops accepting, lets in-flight requests finish within the grace
// period, then closes what is left.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "berth/proxy/config.hpp"
#include "berth/proxy/metrics.hpp"
#include "berth/proxy/router.hpp"

namespace berth::proxy {

class Server {
public:
  /// Binds and listens on config.host:config.port, with TLS when config.tls.enabled (TLS 1.2
  /// and 1.3 only, ALPN http/1.1), but serves nothing until run(). Counts requests into
  /// `metrics` (its own when null). Throws berth::Error naming the address if it cannot listen,
  /// or the file if the certificate chain or key is unusable.
  Server(ServerConfig config, Router router, std::shared_ptr<Metrics> metrics = nullptr);
  ~Server();
  Server(Server const&) = delete;
  Server& operator=(Server const&) = delete;

  /// The bound address as "host:port" and the bound port (useful with port 0).
  std::string local_address() const;
  std::uint16_t local_port() const;

  /// Also serves `router` over plain HTTP on host:port, with the same threads, limits and
  /// graceful stop (e.g. health checks and a redirect to https). Call before run(). Returns
  /// the bound "host:port". Throws berth::Error naming the address if it cannot listen.
  std::string add_plain_listener(std::string const& host, std::uint16_t port, Router router);

  /// Loads `tls` (as the constructor does config.tls) for connections accepted from now on;
  /// open connections keep the certificate they began with. Throws berth::Error, and keeps the
  /// current certificate, when the files are unusable or the server does not serve TLS.
  /// Blocking file I/O. Thread-safe.
  void reload_tls(TlsConfig const& tls);

  /// Calls `callback` on every SIGHUP while the server runs (e.g. to reload_tls() a renewed
  /// certificate). It runs on the server's control executor and must not throw. Call before run().
  void on_sighup(std::function<void()> callback);

  /// Stop gracefully on SIGTERM and SIGINT. Call before run().
  void stop_on_signals();

  /// Calls `callback` every `interval` while the server runs, on its control executor, but only
  /// when every I/O thread has run a probe posted at the previous beat: a wedged thread stops the
  /// beats (systemd's watchdog keepalive relies on this). The first beat comes when run() starts.
  /// Call before run(); `callback` must not throw.
  void on_heartbeat(std::chrono::milliseconds interval, std::function<void()> callback);

  /// Called once when a graceful stop begins (e.g. to tell systemd STOPPING=1).
  void on_stopping(std::function<void()> callback);

  /// Serves until stopped; blocks the calling thread, which joins the pool. Returns when all
  /// connections are closed.
  void run();

  /// Begins a graceful stop. Thread-safe; idempotent.
  void stop();

  /// Number of connections currently open. Thread-safe.
  std::size_t connection_count() const;

  struct State;  ///< implementation detail (server.cpp)

private:
  std::unique_ptr<State> state_;
};

}  // namespace berth::proxy
