// Splitting a PostgreSQL migration script into the statements Flyway would send one by one
// (flyway-compat.md §7 "Parsing"), and deciding whether they may run inside a transaction. It
// does not understand SQL beyond quoting, comments and block bodies, and it runs no psql
// meta-commands.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace berth::flyway {

struct Statement {
  std::string sql;                       ///< from its first token up to, excluding, the terminating `;`
  int line = 0;                          ///< 1-based line of the first token, for "script:line" messages
  std::optional<std::string> copy_data;  ///< for COPY ... FROM STDIN: the data lines, without the `\.` line
  int copy_data_line = 0;                ///< 1-based line of the first data line (COPY ... FROM STDIN only)
};

/// Splits `script` (already placeholder-replaced; a leading BOM is dropped) into statements:
/// `;` ends a statement outside quotes, comments and BEGIN ATOMIC bodies; `'...'` (with `''`),
/// E'...' (with backslash escapes), `"..."`, `$$`/`$tag$` quotes, `--` and nested `/* */`
/// comments are respected; the last statement may lack its `;`; comment-only text yields no
/// statement. Throws MigrationError naming `script_name:line` for an unterminated quote or
/// comment, COPY data without its `\.` line, or a psql meta-command (`\connect`, `\set`, ...).
/// Thread-safe (pure).
std::vector<Statement> split_statements(std::string_view script, std::string_view script_name);

/// Whether PostgreSQL refuses to run `sql` inside a transaction, per Flyway's PostgreSQL parser:
/// CREATE|DROP [UNIQUE] INDEX CONCURRENTLY, CREATE|DROP DATABASE|TABLESPACE|SUBSCRIPTION,
/// ALTER SYSTEM, REINDEX [VERBOSE] SCHEMA|DATABASE|SYSTEM, VACUUM, DISCARD ALL, and ALTER TYPE
/// ... ADD VALUE when `server_major_version` < 12. Thread-safe (pure).
bool must_run_outside_transaction(std::string_view sql, int server_major_version);

/// Whether a script made of `statements` runs in a transaction: false as soon as one statement
/// must run outside one. Throws MigrationError "Detected both transactional and non-transactional
/// statements within the same migration (even though mixed is false)" when both kinds occur and
/// `mixed` is false. `executeInTransaction=false` is the caller's to apply on top. Thread-safe.
bool runs_in_transaction(std::span<Statement const> statements, int server_major_version, bool mixed);

}  // namespace berth::flyway
