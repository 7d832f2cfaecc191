// Each application's database and login role on the cluster berth owns: declared under
// `databases:`, converged at start (created when missing, never dropped), listed, and turned
// into the connection URL the application uses.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "berth/postgres/config.hpp"

namespace berth::postgres {

/// Throws Error unless `name` is a database or role name berth may manage: 1 to 63 characters
/// of a-z, 0-9 and _, not starting with a digit or "pg_", not postgres, template0, template1 or
/// berth (the superuser). `what` names it in the message ("database", "owner of shop").
void check_identifier(std::string const& what, std::string const& name);

/// Checks names, owners, extension names and connection limits, and that no database is
/// declared twice, without a server. Throws Error listing every problem.
void check_databases(std::vector<Database> const& databases);

/// Makes the cluster hold every entry of `databases`. A missing owner role is created with
/// LOGIN and a random password stored first in `secrets_dir`/postgres-role-ROLE (0600); a
/// missing database is created owned by it, with CONNECT revoked from PUBLIC so other apps'
/// roles stay out; missing extensions are created in it; a changed connection limit is
/// applied. Nothing is dropped, renamed or re-owned. Everything, including that each extension
/// is available on the server, is checked before the first change, so a bad entry creates
/// nothing. `superuser` is a libpq connection string for database "postgres". Returns one line
/// per change ("created role shop"); none when everything already matched. Throws Error.
std::vector<std::string> converge(std::string const& superuser, std::vector<Database> const& databases,
                                  std::filesystem::path const& secrets_dir);

/// Opens or closes `database` for new connections (ALLOW_CONNECTIONS): closed while its
/// migrations have failed, so the app does not run on a half-migrated schema. Throws Error.
void allow_connections(std::string const& superuser, std::string const& database, bool allow);

struct DatabaseInfo {
  std::string name;
  std::string owner;
  std::int64_t size_bytes = 0;
  int connections = 0;        ///< current sessions
  int connection_limit = -1;  ///< -1: none
  bool allows_connections = true;
};

/// Every database except templates and "postgres", by name. Throws Error.
std::vector<DatabaseInfo> list_databases(std::string const& superuser);

/// The password converge() stored for `role`. Throws Error when there is none (a role berth
/// did not create).
std::string role_password(std::filesystem::path const& secrets_dir, std::string const& role);

/// A postgresql:// URL for `role` on `database` with its stored password: TCP to the first of
/// config.listen_addresses when there is one (a wildcard means loopback), otherwise the Unix
/// socket in config.socket_dir. Holds the password: print it only on request, never log it.
std::string connection_url(Config const& config, std::string const& database, std::string const& role);

/// A libpq keyword/value connection string over the Unix socket in `socket_dir` (the port names
/// the socket file), every value quoted. Holds the password: never log it.
std::string socket_connection_string(std::filesystem::path const& socket_dir, std::uint16_t port,
                                     std::string const& user, std::string const& database, std::string const& password);

}  // namespace berth::postgres
