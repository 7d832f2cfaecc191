// `berth db create|list|url`, `berth status` and the internal `berth archive-wal`: the commands
// about berth's own PostgreSQL cluster and the service as a whole.
#pragma once

#include <ostream>
#include <string>

#include "berth/appliance/config.hpp"

namespace berth::appliance {

struct CreateOptions {
  std::string name;
  std::string owner;                    ///< empty: the declared owner, else `name`
  std::vector<std::string> extensions;  ///< added to the declared ones
};

/// Creates the database and its owner role when missing (idempotent). Returns the exit code.
int db_create(Config const& config, CreateOptions const& options, std::ostream& out);
/// Prints every application database with owner, size, connections and limits.
int db_list(Config const& config, bool json, std::ostream& out);
/// Prints the connection URL (with password) of `name`'s owner role.
int db_url(Config const& config, std::string const& name, std::ostream& out);
/// Prints the state of the service, PostgreSQL, its databases and the WAL archive. Returns 0 when
/// the service runs and PostgreSQL answers, 3 when the service is not running, 1 otherwise.
int status(Config const& config, std::ostream& out);
/// archive_command's entry point: copies WAL file `path` as `name` into `archive_dir`. Prints
/// errors to stderr (the server logs them), records them in `state` (postgres::ArchiveFailure;
/// cleared by the next success) and returns non-zero so the server retries.
int archive_wal(std::string const& archive_dir, std::string const& state, std::string const& path,
                std::string const& name);

}  // namespace berth::appliance
