// libpq calls for running migration scripts: statements one at a time (so a failure names its
// statement) and COPY FROM STDIN data streamed with PQputCopyData.
#include "script_connection.hpp"

#include <cstdlib>
#include <memory>

#include <libpq-fe.h>

#include "berth/core/error.hpp"
#include "berth/core/log.hpp"

namespace berth::flyway {
namespace {

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

std::string trim_newlines(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// The server reports a bad COPY row in its context: `COPY items, line 3, column id: "x"`.
std::optional<int> copy_row_of(char const* context) {
  if (!context) return std::nullopt;
  std::string_view text(context);
  if (!text.starts_with("COPY ")) return std::nullopt;
  auto const at = text.find(", line ");
  if (at == std::string_view::npos) return std::nullopt;
  char const* digits = context + at + 7;
  char* end = nullptr;
  long const row = std::strtol(digits, &end, 10);
  if (end == digits || row <= 0) return std::nullopt;
  return static_cast<int>(row);
}

SqlFailure failure_of(PGresult const* result, PGconn* connection) {
  SqlFailure failure;
  if (char const* state = PQresultErrorField(result, PG_DIAG_SQLSTATE)) failure.sql_state = state;
  char const* message = PQresultErrorMessage(result);
  failure.message = message && *message ? message : PQerrorMessage(connection);
  failure.copy_data_row = copy_row_of(PQresultErrorField(result, PG_DIAG_CONTEXT));
  return failure;
}

void log_notice(void*, char const* message) {
  // Flyway prints server notices as "DB: ..." (RAISE NOTICE in migrations, "skipping" notes).
  logger("flyway")->info("DB: {}", trim_newlines(message));
}

}  // namespace

ScriptConnection::ScriptConnection(std::string const& connection_string, std::string const& schema)
    : connection_(PQconnectdb(connection_string.c_str())) {
  if (!connection_) throw Error("cannot connect to PostgreSQL: out of memory");
  if (PQstatus(connection_) != CONNECTION_OK) {
    std::string const message = trim_newlines(PQerrorMessage(connection_));
    PQfinish(connection_);
    connection_ = nullptr;
    throw Error("cannot open a second connection for migrations: " + message +
                "\nHINT: the database must accept two connections from berth at once.");
  }
  PQsetNoticeProcessor(connection_, log_notice, nullptr);
  if (!schema.empty()) {
    std::unique_ptr<char, decltype(&PQfreemem)> name(PQescapeIdentifier(connection_, schema.data(), schema.size()),
                                                     &PQfreemem);
    if (!name) throw Error("cannot quote schema name " + schema + ": " + trim_newlines(PQerrorMessage(connection_)));
    run("SET search_path TO " + std::string(name.get()), "set the search_path");
  }
}

ScriptConnection::~ScriptConnection() {
  if (connection_) PQfinish(connection_);
}

std::optional<SqlFailure> ScriptConnection::finish_command() {
  // Drain every result so the connection is ready for the next command.
  std::optional<SqlFailure> failure;
  while (PGresult* raw = PQgetResult(connection_)) {
    ResultPtr result(raw, &PQclear);
    auto const status = PQresultStatus(raw);
    if (status == PGRES_COPY_IN) {
      // Only reached when a plain statement turns out to be COPY FROM STDIN: end it empty-handed.
      PQputCopyEnd(connection_, "COPY FROM STDIN needs its data after the statement");
      continue;
    }
    if (status == PGRES_COPY_OUT) {
      char* buffer = nullptr;
      while (PQgetCopyData(connection_, &buffer, 0) > 0) PQfreemem(buffer);
      continue;
    }
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY && !failure)
      failure = failure_of(raw, connection_);
  }
  if (PQstatus(connection_) != CONNECTION_OK)
    throw Error("lost the connection to PostgreSQL while migrating: " + trim_newlines(PQerrorMessage(connection_)) +
                "\nHINT: check that the server is running, then run migrate again.");
  return failure;
}

std::optional<SqlFailure> ScriptConnection::execute(std::string const& sql) {
  if (!PQsendQuery(connection_, sql.c_str()))
    throw Error("cannot send a statement to PostgreSQL: " + trim_newlines(PQerrorMessage(connection_)));
  return finish_command();
}

std::optional<SqlFailure> ScriptConnection::copy_from_stdin(std::string const& sql, std::string_view data) {
  if (!PQsendQuery(connection_, sql.c_str()))
    throw Error("cannot send a statement to PostgreSQL: " + trim_newlines(PQerrorMessage(connection_)));
  PGresult* raw = PQgetResult(connection_);
  if (!raw || PQresultStatus(raw) != PGRES_COPY_IN) {
    // Not a COPY FROM STDIN after all, or it failed before reading data (no such table).
    std::optional<SqlFailure> failure;
    if (raw && PQresultStatus(raw) != PGRES_COMMAND_OK && PQresultStatus(raw) != PGRES_TUPLES_OK)
      failure = failure_of(raw, connection_);
    if (raw) PQclear(raw);
    auto rest = finish_command();
    return failure ? failure : rest;
  }
  PQclear(raw);
  // Blocking connection: PQputCopyData queues and flushes as needed; send in bounded chunks.
  constexpr std::size_t chunk = 1 << 16;
  for (std::size_t offset = 0; offset < data.size(); offset += chunk) {
    auto const piece = data.substr(offset, chunk);
    if (PQputCopyData(connection_, piece.data(), static_cast<int>(piece.size())) != 1)
      throw Error("cannot send COPY data to PostgreSQL: " + trim_newlines(PQerrorMessage(connection_)));
  }
  if (PQputCopyEnd(connection_, nullptr) != 1)
    throw Error("cannot end COPY data to PostgreSQL: " + trim_newlines(PQerrorMessage(connection_)));
  return finish_command();
}

void ScriptConnection::run(std::string const& sql, std::string_view what) {
  if (auto failure = execute(sql)) throw Error("cannot " + std::string(what) + ": " + trim_newlines(failure->message));
}

std::string ScriptConnection::quote(std::string_view value) {
  std::unique_ptr<char, decltype(&PQfreemem)> literal(PQescapeLiteral(connection_, value.data(), value.size()),
                                                      &PQfreemem);
  if (!literal) throw Error("cannot quote a value for PostgreSQL: " + trim_newlines(PQerrorMessage(connection_)));
  return literal.get();
}

}  // namespace berth::flyway
