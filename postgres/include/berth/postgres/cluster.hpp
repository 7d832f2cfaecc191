// The PostgreSQL cluster berth owns: created once with initdb, then run as a supervised child
// process (restarted with capped backoff when it dies) that listens only on a Unix socket, and
// stopped with a fast shutdown. It listens on a Unix socket and the configured TCP addresses and,
// with a WAL archive directory, archives every segment through `berth archive-wal`. Databases and
// roles are in databases.hpp.
//
// When berth runs as root, everything the server touches is given to an unprivileged OS user and
// the children (initdb, postgres) drop to it between fork and exec.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "berth/core/error.hpp"
#include "berth/postgres/config.hpp"
#include "berth/postgres/installation.hpp"

namespace berth::postgres {

/// The data directory was made by another major version than the installed server.
class VersionMismatch : public Error {
public:
  using Error::Error;
};

enum class Initialized { created, existing };

class Cluster {
public:
  /// Finds the installation and the OS user and checks Config::settings; starts nothing and writes
  /// nothing. Throws InstallationNotFound, or Error (unknown OS user, invalid settings).
  explicit Cluster(Config config);
  /// stop().
  ~Cluster();
  Cluster(Cluster const&) = delete;
  Cluster& operator=(Cluster const&) = delete;

  Installation const& installation() const;

  /// Creates the cluster when data_dir/PG_VERSION is absent: a random superuser password in
  /// secrets_dir/postgres-superuser (0600), then initdb into a temporary sibling directory that is
  /// renamed to data_dir, so a failed or interrupted initdb leaves no half-made cluster. Throws
  /// VersionMismatch for a cluster of another major (nothing is written), Error when a directory
  /// on the way is not searchable by the OS user or initdb fails. Not thread-safe with start().
  Initialized initialize();

  /// initialize(), then spawns `postgres` and supervises it until stop(). Returns once the process
  /// exists; use wait_ready() for connections. Throws what initialize() throws, or Error when the
  /// server cannot be spawned. A no-op while already started. Call from one thread at a time.
  void start();

  /// Connects over the Unix socket with backoff until one connection succeeds. Throws Error when
  /// `deadline` passes first. Thread-safe.
  void wait_ready(std::chrono::steady_clock::time_point deadline);
  /// wait_ready() with Config::start_timeout from now.
  void wait_ready();

  /// Fast shutdown: SIGINT, then SIGKILL once Config::stop_timeout has passed; returns when the
  /// server has exited and no restart is pending. Idempotent; never throws.
  void stop() noexcept;

  /// One connection over the Unix socket and `SELECT 1`: nullopt when the server serves, else why
  /// not (not running, refusing connections, its data directory damaged). Thread-safe; takes at
  /// most about 2 s.
  std::optional<std::string> probe() const;

  /// The running postmaster's pid; nullopt while stopped or waiting to restart. Thread-safe.
  std::optional<pid_t> pid() const;
  /// How many times supervision restarted the server after an unexpected exit. Thread-safe.
  unsigned restart_count() const;

  /// A libpq connection string for the superuser `berth` over the Unix socket. It holds the
  /// password: never log it. Throws Error when the secrets file cannot be read.
  std::string connection_string(std::string const& database = "postgres") const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::postgres
