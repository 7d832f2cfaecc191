// The HTTP/1.1 server: accepts connections, reads request heads, dispatches to a Router and
// streams bodies both ways. Keep-alive and pipelining are handled here; handlers never see a
// socket. It runs on its own small thread pool; stop() (or SIGTERM/SIGINT, when asked to
// watch them) stops accepting, lets in-flight requests finish within the grace period, then
// closes what is left.
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "berth/proxy/config.hpp"
#include "berth/proxy/router.hpp"

namespace berth::proxy {

class Server {
public:
  /// Binds and listens on config.host:config.port (throws berth::Error naming the address if
  /// it cannot), but serves nothing until run().
  Server(ServerConfig config, Router router);
  ~Server();
  Server(Server const&) = delete;
  Server& operator=(Server const&) = delete;

  /// The bound address as "host:port" and the bound port (useful with port 0).
  std::string local_address() const;
  std::uint16_t local_port() const;

  /// Stop gracefully on SIGTERM and SIGINT. Call before run().
  void stop_on_signals();

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
