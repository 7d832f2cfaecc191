// Settings of the PostgreSQL cluster berth owns. Plain values; `appliance` fills them. Paths may be
// relative (the dev instance uses ./var); the postgres module makes them absolute when it starts.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace berth::postgres {

struct Config {
  std::filesystem::path data_dir;     ///< cluster data directory, <primary volume>/postgres
  std::filesystem::path socket_dir;   ///< Unix socket directory, <primary volume>/run
  std::filesystem::path secrets_dir;  ///< holds `postgres-superuser` (mode 0600), <primary volume>/secrets
  /// OS user the server runs as. Empty: the user berth runs as, or "postgres" when that is root
  /// (initdb and postgres refuse to run as root).
  std::string os_user;
  std::uint16_t port = 5432;               ///< without TCP listeners it only names the socket file (.s.PGSQL.<port>)
  std::filesystem::path bin_dir;           ///< server binaries; empty: newest /usr/lib/postgresql/*/bin, then PATH
  std::chrono::seconds start_timeout{30};  ///< how long wait_ready() may take when the caller gives no deadline
  std::chrono::seconds stop_timeout{30};   ///< fast shutdown (SIGINT) may take this long before SIGKILL
  std::chrono::milliseconds restart_backoff_min{200};    ///< first restart delay after an unexpected exit
  std::chrono::milliseconds restart_backoff_max{30000};  ///< the delay doubles up to this
};

}  // namespace berth::postgres
