// The connection migrations run on: plain libpq, because COPY ... FROM STDIN needs
// PQputCopyData/PQputCopyEnd and libpqxx has no copy API common to 6.4 and 7.8 that accepts an
// arbitrary COPY statement (6.4's stream_to builds its own COPY and only takes typed rows,
// tablewriter is deprecated in 7, and neither version hands out its PGconn). Flyway itself runs
// migrations on a connection of their own, next to the one holding the lock (flyway-compat.md §7).
// Private to the flyway module.
#pragma once

#include <optional>
#include <string>
#include <string_view>

struct pg_conn;

namespace berth::flyway {

/// Why a statement failed, as the server said it.
struct SqlFailure {
  std::string sql_state;             ///< e.g. "42P01"
  std::string message;               ///< libpq's error message: "ERROR:  ...\nLINE 1: ..."
  std::optional<int> copy_data_row;  ///< 1-based data row of a failing COPY FROM STDIN, when the server names it
};

/// One libpq session. Not thread-safe; one user at a time.
class ScriptConnection {
public:
  /// Connects; `schema`, when not empty, becomes the search_path (as on the engine's session).
  /// Throws berth::Error naming the database (never the connection string, which may hold a
  /// password) when the connection fails.
  ScriptConnection(std::string const& connection_string, std::string const& schema);
  ~ScriptConnection();
  ScriptConnection(ScriptConnection const&) = delete;
  ScriptConnection& operator=(ScriptConnection const&) = delete;

  /// Runs one SQL statement; nullopt on success, else the failure. Throws berth::Error when the
  /// connection itself is lost.
  std::optional<SqlFailure> execute(std::string const& sql);

  /// Runs a `COPY ... FROM STDIN` statement and sends `data` (text, csv or any format the
  /// statement names; lines as written in the script). Nullopt on success, else the failure.
  std::optional<SqlFailure> copy_from_stdin(std::string const& sql, std::string_view data);

  /// Like execute(), but a failure throws berth::Error with `what` and the server's message.
  void run(std::string const& sql, std::string_view what);

  /// `value` as an SQL string literal, escaped for this connection's encoding.
  std::string quote(std::string_view value);

private:
  std::optional<SqlFailure> finish_command();
  pg_conn* connection_ = nullptr;
};

}  // namespace berth::flyway
