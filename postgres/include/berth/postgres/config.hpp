// Settings of the PostgreSQL cluster berth owns. Plain values; `appliance` fills them. Paths may be
// relative (the dev instance uses ./var); the postgres module makes them absolute when it starts.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace berth::postgres {

struct Config {
  std::filesystem::path data_dir;     ///< cluster data directory, <primary volume>/postgres
  std::filesystem::path socket_dir;   ///< Unix socket directory, <primary volume>/run/postgres
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

  /// TCP addresses to listen on besides the Unix socket (postgresql.conf listen_addresses);
  /// empty: the socket only.
  std::vector<std::string> listen_addresses;
  /// postgresql.conf parameters by name, over berth's defaults for a small server. Names are
  /// checked against the server's own list; the ones berth manages itself are refused.
  std::map<std::string, std::string> settings;
  /// WAL archive directory (<backup volume>/wal); empty: no archiving.
  std::filesystem::path wal_archive_dir;
  /// The program archive_command runs as `PROGRAM archive-wal --to DIR %p %f` (berth itself).
  std::filesystem::path archiver_program;
  /// A WAL segment is archived at least this often when there is any write (bounds data loss).
  std::chrono::seconds archive_timeout{60};
};

/// One application's database, as declared under `databases:`.
struct Database {
  std::string name{};                     ///< database name, also the default owner role
  std::string owner{};                    ///< login role that owns it; empty: `name`
  std::vector<std::string> extensions{};  ///< installed with CREATE EXTENSION in the database
  int connection_limit = -1;              ///< -1: no limit

  std::string owner_role() const { return owner.empty() ? name : owner; }
};

}  // namespace berth::postgres
