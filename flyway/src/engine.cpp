// migrate, info, validate, baseline, repair and clean on PostgreSQL. The engine's session
// (libpqxx) reads and writes the history table and holds the advisory lock, session-level
// (Flyway's `postgresql.transactional.lock=false` mode), taken with pg_try_advisory_lock and
// retried, so a waiting migrator never sits in a statement that holds a snapshot, which is what
// deadlocks Flyway's default mode against CREATE INDEX CONCURRENTLY (flyway/flyway#1654). The
// migrations themselves run on a second, plain libpq connection (script_connection.hpp: COPY FROM
// STDIN), idle between commands, so it cannot hold a snapshot either. Only libpqxx calls present
// in both 6.4 and 7.8 are used.
#include "berth/flyway/engine.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <pqxx/pqxx>

#include "berth/core/log.hpp"
#include "berth/flyway/checksum.hpp"
#include "berth/flyway/error.hpp"
#include "berth/flyway/placeholders.hpp"
#include "berth/flyway/sql_splitter.hpp"
#include "script_connection.hpp"

namespace berth::flyway {
namespace {

using Clock = std::chrono::steady_clock;

// What a session knows about where it is; filled once per command.
struct Session {
  explicit Session(std::string const& connection_string) : connection(connection_string) {}
  pqxx::connection connection;
  std::string schema;
  std::string user;
  std::string database;
  std::string quoted_schema;
  std::string quoted_table;  ///< "schema"."table"
  int server_major = 0;
  bool schema_exists = true;
};

void open_session(Session& session, Config const& config) {
  pqxx::nontransaction tx(session.connection);
  session.server_major = session.connection.server_version() / 10000;
  if (!config.default_schema.empty()) {
    // Flyway makes the default schema the session's current one, so unqualified names in
    // migrations land there.
    session.schema = config.default_schema;
    session.schema_exists =
        !tx.exec("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = " + tx.quote(session.schema)).empty();
    tx.exec("SET search_path TO " + tx.quote_name(session.schema));
  }
  auto const row = tx.exec("SELECT current_user, current_database(), current_schema()").at(0);
  session.user = row[0].as<std::string>();
  session.database = row[1].as<std::string>();
  if (config.default_schema.empty()) {
    if (row[2].is_null())
      throw Error("cannot migrate database " + session.database +
                  ": no schema on the search_path exists\nHINT: set the default schema");
    session.schema = row[2].as<std::string>();
  }
  session.quoted_schema = tx.quote_name(session.schema);
  session.quoted_table = session.quoted_schema + "." + tx.quote_name(config.history_table);
}

Placeholders make_placeholders(Session const& session, Config const& config) {
  DefaultPlaceholders defaults;
  defaults.default_schema = session.schema;
  defaults.user = session.user;
  defaults.database = session.database;
  defaults.timestamp = format_placeholder_timestamp(std::chrono::system_clock::now());
  defaults.working_directory = std::filesystem::current_path().string();
  defaults.table = config.history_table;
  return Placeholders(config, defaults);
}

// Versioned and repeatable migrations with their checksums. Undo migrations are never applied
// and baseline (B) migrations are not supported yet, so neither is resolved.
std::vector<ResolvedMigration> resolve(std::filesystem::path const& dir, Config const& config,
                                       Placeholders const& placeholders) {
  std::vector<ResolvedMigration> resolved;
  for (auto& file : discover_migrations(dir, config)) {
    if (file.kind != MigrationKind::versioned && file.kind != MigrationKind::repeatable) continue;
    auto checksum = checksum_migration(file, config, placeholders);
    resolved.push_back({std::move(file), checksum});
  }
  return resolved;
}

bool history_table_exists(Session& session, Config const& config) {
  if (!session.schema_exists) return false;
  pqxx::nontransaction tx(session.connection);
  return !tx.exec("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = " + tx.quote(session.schema) +
                  " AND tablename = " + tx.quote(config.history_table))
              .empty();
}

bool schema_is_empty(Session& session) {
  pqxx::nontransaction tx(session.connection);
  auto const oid = "(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = " + tx.quote(session.schema) + ")";
  return tx
      .exec("SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace = " + oid +
             ") AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE pronamespace = " + oid +
             ") AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type WHERE typnamespace = " + oid +
             " AND typtype IN ('d', 'e', 'r', 'm'))")
      .at(0)[0]
      .as<bool>();
}

std::vector<AppliedMigration> read_history(pqxx::transaction_base& tx, std::string const& quoted_table) {
  auto const rows = tx.exec(
      "SELECT installed_rank, version, description, type, script, checksum, installed_by, installed_on, "
      "execution_time, success FROM " +
      quoted_table + " ORDER BY installed_rank");
  std::vector<AppliedMigration> applied;
  applied.reserve(rows.size());
  for (auto const& row : rows) {
    AppliedMigration migration;
    migration.installed_rank = row[0].as<int>();
    if (!row[1].is_null()) migration.version = MigrationVersion::parse(row[1].as<std::string>());
    migration.description = row[2].as<std::string>();
    migration.type = row[3].as<std::string>();
    migration.script = row[4].as<std::string>();
    if (!row[5].is_null()) migration.checksum = row[5].as<std::int32_t>();
    migration.installed_by = row[6].as<std::string>();
    migration.installed_on = row[7].as<std::string>();
    migration.execution_time = row[8].as<int>();
    migration.success = row[9].as<bool>();
    applied.push_back(std::move(migration));
  }
  return applied;
}

std::vector<AppliedMigration> read_history(Session& session) {
  pqxx::nontransaction tx(session.connection);
  return read_history(tx, session.quoted_table);
}

struct HistoryRow {
  std::optional<std::string> version;
  std::string description;
  std::string type;
  std::string script;
  std::optional<std::int32_t> checksum;
  std::string installed_by;
  int execution_time = 0;
  bool success = true;
};

// Flyway's AppliedMigration truncation: description to 200, script to 1000 characters. `quote`
// turns a value into an SQL literal on whichever connection runs the INSERT.
std::string truncated_description(std::string const& description) {
  return description.size() > 200 ? description.substr(0, 197) + "..." : description;
}

template <class Quote>
std::string history_insert_sql(std::string const& table, HistoryRow const& row, Quote&& quote) {
  auto description = truncated_description(row.description);
  auto script = row.script.size() > 1000 ? "..." + row.script.substr(3, 997) : row.script;
  return "INSERT INTO " + table +
         " (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) "
         "VALUES ((SELECT COALESCE(MAX(installed_rank), 0) + 1 FROM " +
         table + "), " + (row.version ? quote(*row.version) : std::string("NULL")) + ", " + quote(description) + ", " +
         quote(row.type) + ", " + quote(script) + ", " +
         (row.checksum ? std::to_string(*row.checksum) : std::string("NULL")) + ", " + quote(row.installed_by) + ", " +
         std::to_string(row.execution_time) + ", " + (row.success ? "true" : "false") + ")";
}

void insert_history_row(pqxx::transaction_base& tx, std::string const& table, HistoryRow const& row) {
  tx.exec(history_insert_sql(table, row, [&](std::string const& value) { return tx.quote(value); }));
}

// Flyway's baseline marker (§6): version and description from the config, no checksum.
HistoryRow baseline_row(Config const& config, std::string const& installed_by) {
  HistoryRow row;
  row.version = MigrationVersion::parse(config.baseline_version).to_string();
  row.description = config.baseline_description;
  row.type = "BASELINE";
  row.script = config.baseline_description;
  row.installed_by = installed_by;
  return row;
}

std::string installed_by(Session const& session, Config const& config) {
  return config.installed_by.empty() ? session.user : config.installed_by;
}

// The DDL of PostgreSQLDatabase.getRawCreateScript, in one transaction so a concurrent reader
// never sees a table without its key; with the schema marker and/or the baseline row when asked.
void create_history_table(Session& session, Config const& config, bool with_schema_marker,
                          std::optional<HistoryRow> const& baseline = std::nullopt) {
  pqxx::work tx(session.connection);
  if (with_schema_marker) tx.exec("CREATE SCHEMA " + session.quoted_schema);
  auto const& table = session.quoted_table;
  tx.exec("CREATE TABLE " + table +
           " (\n"
           "    \"installed_rank\" INT NOT NULL,\n"
           "    \"version\" VARCHAR(50),\n"
           "    \"description\" VARCHAR(200) NOT NULL,\n"
           "    \"type\" VARCHAR(20) NOT NULL,\n"
           "    \"script\" VARCHAR(1000) NOT NULL,\n"
           "    \"checksum\" INTEGER,\n"
           "    \"installed_by\" VARCHAR(100) NOT NULL,\n"
           "    \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),\n"
           "    \"execution_time\" INTEGER NOT NULL,\n"
           "    \"success\" BOOLEAN NOT NULL\n"
           ")");
  tx.exec("ALTER TABLE " + table + " ADD CONSTRAINT " + tx.quote_name(config.history_table + "_pk") +
           " PRIMARY KEY (\"installed_rank\")");
  tx.exec("CREATE INDEX " + tx.quote_name(config.history_table + "_s_idx") + " ON " + table + " (\"success\")");
  if (with_schema_marker)
    tx.exec("INSERT INTO " + table +
             " (installed_rank, version, description, type, script, checksum, installed_by, execution_time, "
             "success) VALUES (0, NULL, '<< Flyway Schema Creation >>', 'SCHEMA', " +
             tx.quote(session.quoted_schema) + ", NULL, " + tx.quote(session.user) + ", 0, true)");
  if (baseline) insert_history_row(tx, table, *baseline);
  tx.commit();
}

std::string read_script(std::filesystem::path const& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  if (in) content << in.rdbuf();
  if (!in || in.bad()) throw MigrationError("Unable to read migration " + path.string());
  return content.str();
}

std::string first_line(std::string_view text) {
  auto const end = text.find_first_of("\r\n");
  return std::string(text.substr(0, end));
}

// Flyway's "Migration X failed" report, with berth's file:line in Location: the statement's
// line, or for bad COPY data the line of the row the server rejected.
MigrationError migration_failure(MigrationFile const& file, Statement const& statement, SqlFailure const& failure) {
  int line = statement.line;
  if (statement.copy_data && failure.copy_data_row) line = statement.copy_data_line + *failure.copy_data_row - 1;
  std::string message = failure.message;
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  auto const title = "Migration " + file.filename() + " failed";
  return MigrationError(title + "\n" + std::string(title.size(), '-') + "\nSQL State  : " + failure.sql_state +
                        "\nMessage    : " + first_line(message) + "\nLocation   : " + file.script + ":" +
                        std::to_string(line) + " (" + file.path.string() + ")" +
                        "\nLine       : " + std::to_string(line) + "\nStatement  : " + first_line(statement.sql));
}

int elapsed_ms(Clock::time_point since) {
  return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

std::optional<SqlFailure> run_statement(ScriptConnection& connection, Statement const& statement) {
  if (statement.copy_data) return connection.copy_from_stdin(statement.sql, *statement.copy_data);
  return connection.execute(statement.sql);
}

// The statements of a migration, placeholders replaced, and whether they run in a transaction.
struct PreparedScript {
  std::vector<Statement> statements;
  bool in_transaction = true;
};

PreparedScript prepare(Session const& session, Config const& config, Placeholders const& placeholders,
                       MigrationFile const& file) {
  auto text = read_script(file.path);
  if (file.settings.placeholder_replacement.value_or(config.placeholder_replacement))
    text = placeholders.for_script(file.filename()).replace(text);
  PreparedScript script;
  script.statements = split_statements(text, file.script);
  script.in_transaction = runs_in_transaction(script.statements, session.server_major, config.mixed) &&
                          file.settings.execute_in_transaction.value_or(config.execute_in_transaction);
  return script;
}

// Runs one migration and records it. Transactional: statements and history row commit together,
// a failure rolls both back (no row, as Flyway on PostgreSQL). Autocommit: a failure leaves what
// ran and records a row with success = false.
ExecutedMigration apply(ScriptConnection& connection, Session const& session, Config const& config,
                        Placeholders const& placeholders, ResolvedMigration const& migration,
                        std::string const& installed_by) {
  auto const& file = migration.file;
  auto const script = prepare(session, config, placeholders, file);

  HistoryRow row;
  if (file.version) row.version = file.version->to_string();
  row.description = file.description;
  row.type = std::string(file.history_type());
  row.script = file.script;
  row.checksum = migration.checksum.checksum;
  row.installed_by = installed_by;
  auto const quote = [&](std::string const& value) { return connection.quote(value); };

  auto const began = Clock::now();
  if (script.in_transaction) {
    connection.run("BEGIN", "start the transaction of " + file.script);
    for (auto const& statement : script.statements) {
      if (auto failure = run_statement(connection, statement)) {
        connection.run("ROLLBACK", "roll back " + file.script);
        throw migration_failure(file, statement, *failure);
      }
    }
    row.execution_time = elapsed_ms(began);
    connection.run(history_insert_sql(session.quoted_table, row, quote), "record " + file.script);
    connection.run("COMMIT", "commit " + file.script);
  } else {
    std::optional<MigrationError> failure;
    for (auto const& statement : script.statements) {
      if (auto sql_failure = run_statement(connection, statement)) {
        failure = migration_failure(file, statement, *sql_failure);
        break;
      }
    }
    row.execution_time = elapsed_ms(began);
    row.success = !failure;
    connection.run(history_insert_sql(session.quoted_table, row, quote), "record " + file.script);
    if (failure) throw *failure;
  }
  return {file.version, file.description, file.script, row.execution_time};
}

// Flyway's session-level advisory lock, released when the run ends (or the session closes).
class AdvisoryLock {
public:
  AdvisoryLock(Session& session, Config const& config) : session_(session) {
    key_ = advisory_lock_key(session.quoted_table);
    for (int attempt = 0; attempt <= config.lock_retry_count; ++attempt) {
      {
        pqxx::nontransaction tx(session_.connection);
        if (tx.exec("SELECT pg_try_advisory_lock(" + std::to_string(key_) + ")").at(0)[0].as<bool>()) return;
      }
      if (attempt < config.lock_retry_count) std::this_thread::sleep_for(config.lock_retry_interval);
    }
    throw Error("Number of retries exceeded while attempting to acquire PostgreSQL advisory lock");
  }
  ~AdvisoryLock() {
    try {
      pqxx::nontransaction tx(session_.connection);
      tx.exec("SELECT pg_advisory_unlock(" + std::to_string(key_) + ")");
    } catch (std::exception const& e) {
      // Closing the session releases the lock anyway.
      logger("flyway")->warn("cannot release the advisory lock key={} error={}", key_, e.what());
    }
  }
  AdvisoryLock(AdvisoryLock const&) = delete;
  AdvisoryLock& operator=(AdvisoryLock const&) = delete;

private:
  Session& session_;
  std::int64_t key_ = 0;
};

std::string failed_migration_message(Session const& session, MigrationInfo const& info) {
  auto const schema = "Schema " + session.quoted_schema;
  if (info.version) return schema + " contains a failed migration to version " + info.version->to_string() + " !";
  return schema + " contains a failed repeatable migration \"" + info.description + "\" !";
}

// Rows Flyway writes itself rather than for a migration (MigrationType.isSynthetic).
bool is_synthetic_type(std::string_view type) {
  return type == "SCHEMA" || type == "BASELINE" || type == "DELETE";
}

RepairedMigration repaired(AppliedMigration const& row) {
  return {row.version, row.description, row.script};
}

// Whether the schema marker row (rank 0, type SCHEMA) lists `quoted_schema`: Flyway created it.
bool schema_created_by_flyway(std::vector<AppliedMigration> const& applied, std::string const& quoted_schema) {
  if (applied.empty() || applied.front().type != "SCHEMA") return false;
  std::string_view names = applied.front().script;
  while (!names.empty()) {
    auto const comma = names.find(',');
    if (names.substr(0, comma) == quoted_schema) return true;
    if (comma == std::string_view::npos) break;
    names.remove_prefix(comma + 1);
  }
  return false;
}

// The statements that empty a schema, as Flyway's PostgreSQLSchema.doClean: extensions first (their
// member objects go with them), then views, tables, sequences, routines, domains, other types and
// collations, all CASCADE and IF EXISTS because an earlier drop may have taken a later object.
// Objects that belong to an extension or to another object (deptype 'i': range constructors,
// implicit array and multirange types) and the row types of tables go with what owns them.
std::vector<std::string> drop_statements(pqxx::transaction_base& tx, std::string const& schema) {
  auto const ns = "(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = " + tx.quote(schema) + ")";
  auto const not_owned = [](std::string const& catalog, std::string const& oid) {
    // Relations keep only 'e': a partitioned table has an internal dependency of its own.
    std::string const types = catalog == "pg_class" ? "'e'" : "'e', 'i'";
    return " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = '" + catalog +
           "'::regclass AND d.objid = " + oid + " AND d.deptype IN (" + types + "))";
  };
  auto const relations = [&](int step, std::string const& kind, std::string const& relkinds,
                             std::string const& extra = "") {
    return "SELECT " + std::to_string(step) + ", 'DROP " + kind +
           " IF EXISTS ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' CASCADE' FROM "
           "pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relnamespace = " +
           ns + " AND c.relkind IN (" + relkinds + ")" + extra + not_owned("pg_class", "c.oid");
  };
  auto const sql =
      "SELECT statement FROM (SELECT 1 AS step, 'DROP EXTENSION IF EXISTS ' || quote_ident(extname) || ' CASCADE' "
      "AS statement FROM pg_catalog.pg_extension WHERE extnamespace = " +
      ns + " UNION ALL " + relations(2, "MATERIALIZED VIEW", "'m'") + " UNION ALL " + relations(3, "VIEW", "'v'") +
      " UNION ALL " + relations(4, "FOREIGN TABLE", "'f'") + " UNION ALL " +
      relations(5, "TABLE", "'r', 'p'", " AND NOT c.relispartition") + " UNION ALL " + relations(6, "SEQUENCE", "'S'") +
      " UNION ALL SELECT 7, 'DROP ' || CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE "
      "'FUNCTION' END || ' IF EXISTS ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || "
      "pg_catalog.pg_get_function_identity_arguments(p.oid) || ') CASCADE' FROM pg_catalog.pg_proc p JOIN "
      "pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.pronamespace = " +
      ns + not_owned("pg_proc", "p.oid") +
      " UNION ALL SELECT CASE t.typtype WHEN 'd' THEN 8 ELSE 9 END, 'DROP ' || CASE t.typtype WHEN 'd' THEN "
      "'DOMAIN' ELSE 'TYPE' END || ' IF EXISTS ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname) || ' "
      "CASCADE' FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE "
      "t.typnamespace = " +
      ns +
      " AND (t.typtype IN ('d', 'e', 'r') OR (t.typtype = 'b' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type el "
      "WHERE el.typarray = t.oid)) OR (t.typtype = 'c' AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = "
      "t.typrelid) = 'c'))" +
      not_owned("pg_type", "t.oid") +
      " UNION ALL SELECT 10, 'DROP COLLATION IF EXISTS ' || quote_ident(n.nspname) || '.' || "
      "quote_ident(co.collname) || ' CASCADE' FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace n ON "
      "n.oid = co.collnamespace WHERE co.collnamespace = " +
      ns + not_owned("pg_collation", "co.oid") + ") AS drops ORDER BY step, statement";
  std::vector<std::string> statements;
  for (auto const& row : tx.exec(sql)) statements.push_back(row[0].as<std::string>());
  return statements;
}

}  // namespace

std::int64_t advisory_lock_key(std::string_view quoted_table) {
  // Java's String.hashCode over UTF-16 code units, with int overflow.
  std::uint32_t hash = 0;
  auto const add_unit = [&](std::uint32_t unit) { hash = hash * 31u + unit; };
  for (std::size_t pos = 0; pos < quoted_table.size();) {
    auto const byte = static_cast<unsigned char>(quoted_table[pos]);
    std::uint32_t code_point = byte;
    std::size_t length = 1;
    if (byte >= 0xF0) {
      code_point = byte & 0x07u;
      length = 4;
    } else if (byte >= 0xE0) {
      code_point = byte & 0x0Fu;
      length = 3;
    } else if (byte >= 0xC0) {
      code_point = byte & 0x1Fu;
      length = 2;
    }
    for (std::size_t idx = 1; idx < length && pos + idx < quoted_table.size(); ++idx)
      code_point = (code_point << 6) | (static_cast<unsigned char>(quoted_table[pos + idx]) & 0x3Fu);
    pos += length;
    if (code_point >= 0x10000) {
      add_unit(0xD800u + ((code_point - 0x10000u) >> 10));
      add_unit(0xDC00u + ((code_point - 0x10000u) & 0x3FFu));
    } else {
      add_unit(code_point);
    }
  }
  return std::int64_t{0x466C79776179} + static_cast<std::int32_t>(hash);
}

Engine::Engine(std::string connection_string, Config config, std::filesystem::path migrations_dir)
    : connection_string_(std::move(connection_string)),
      config_(std::move(config)),
      migrations_dir_(std::move(migrations_dir)) {}

MigrateResult Engine::migrate(MigrateOptions const& options) {
  auto const log = logger("flyway");
  auto const began = Clock::now();
  Session session(connection_string_);
  open_session(session, config_);
  auto const placeholders = make_placeholders(session, config_);
  // Resolve before locking: a bad file fails fast without making other migrators wait.
  auto const resolved = resolve(migrations_dir_, config_, placeholders);

  AdvisoryLock lock(session, config_);
  MigrateResult result;
  if (!history_table_exists(session, config_)) {
    if (session.schema_exists && !schema_is_empty(session)) {
      if (!config_.baseline_on_migrate)
        throw MigrationError("Found non-empty schema(s) " + session.quoted_schema +
                             " but no schema history table. Use baseline() or set baselineOnMigrate to true to "
                             "initialize the schema history table.");
      auto const marker = baseline_row(config_, installed_by(session, config_));
      create_history_table(session, config_, false, marker);
      result.baselined_version = marker.version;
      log->info("schema baselined table={} version={}", session.quoted_table, *marker.version);
    } else {
      create_history_table(session, config_, !session.schema_exists);
    }
    session.schema_exists = true;
    result.created_history_table = true;
    log->info("schema history table created table={}", session.quoted_table);
  }

  auto const applied = read_history(session);
  InfoOptions const info_options{options.target, options.out_of_order};
  auto const infos = merge_migrations(resolved, applied, info_options);
  if (config_.validate_on_migrate) {
    auto const errors = validation_errors(infos, resolved, applied, true);
    if (!errors.empty()) throw MigrationError(validation_failure_message(errors));
  }
  for (auto const& info : infos)
    if (info.state == MigrationState::failed || info.state == MigrationState::failed_missing ||
        info.state == MigrationState::failed_future)
      throw MigrationError(failed_migration_message(session, info));

  // The lock keeps the history as read, so the pending list stays valid for the whole run.
  auto const by = installed_by(session, config_);
  std::optional<ScriptConnection> connection;
  for (auto const& info : infos) {
    if (info.state != MigrationState::pending || !info.resolved_idx) continue;
    if (!connection) connection.emplace(connection_string_, config_.default_schema.empty() ? "" : session.schema);
    auto executed = apply(*connection, session, config_, placeholders, resolved[*info.resolved_idx], by);
    log->info("migration applied script={} execution_time_ms={}", executed.script, executed.execution_time_ms);
    result.executed.push_back(std::move(executed));
  }
  log->info("migrate done schema={} executed={} ms={}", session.schema, result.executed.size(), elapsed_ms(began));
  return result;
}

std::vector<MigrationInfo> Engine::info(MigrateOptions const& options) {
  Session session(connection_string_);
  open_session(session, config_);
  auto const resolved = resolve(migrations_dir_, config_, make_placeholders(session, config_));
  std::vector<AppliedMigration> applied;
  if (history_table_exists(session, config_)) applied = read_history(session);
  return merge_migrations(resolved, applied, {options.target, options.out_of_order});
}

void Engine::validate(MigrateOptions const& options) {
  Session session(connection_string_);
  open_session(session, config_);
  auto const resolved = resolve(migrations_dir_, config_, make_placeholders(session, config_));
  std::vector<AppliedMigration> applied;
  if (history_table_exists(session, config_)) applied = read_history(session);
  auto const infos = merge_migrations(resolved, applied, {options.target, options.out_of_order});
  auto const errors = validation_errors(infos, resolved, applied, false);
  if (!errors.empty()) throw MigrationError(validation_failure_message(errors));
}

BaselineResult Engine::baseline() {
  auto const log = logger("flyway");
  Session session(connection_string_);
  open_session(session, config_);
  auto const marker = baseline_row(config_, installed_by(session, config_));
  BaselineResult result;
  result.history_table = session.quoted_table;
  result.version = *marker.version;
  result.description = marker.description;

  AdvisoryLock lock(session, config_);
  if (!history_table_exists(session, config_)) {
    create_history_table(session, config_, !session.schema_exists, marker);
    result.created_history_table = true;
    log->info("schema baselined table={} version={}", session.quoted_table, result.version);
    return result;
  }

  pqxx::work tx(session.connection);
  auto const applied = read_history(tx, session.quoted_table);
  auto const version = MigrationVersion::parse(result.version);
  auto const& table = session.quoted_table;
  // Flyway looks for the marker where baseline puts it: first, or second after the SCHEMA row.
  for (std::size_t row_idx = 0; row_idx < std::min<std::size_t>(applied.size(), 2); ++row_idx) {
    auto const& row = applied[row_idx];
    if (row.type != "BASELINE") continue;
    if (row.version && *row.version == version && row.description == result.description) {
      result.already_baselined = true;
      return result;
    }
    throw MigrationError("Unable to baseline schema history table " + table + " with (" + result.version + "," +
                         result.description + ") as it has already been initialized with (" +
                         (row.version ? row.version->to_string() : std::string("null")) + "," + row.description +
                         ")\nHINT: the database is baselined already; run info to see its history.");
  }
  if (!applied.empty() && applied.front().type == "SCHEMA" && version == MigrationVersion::parse("0"))
    throw MigrationError("Unable to baseline schema history table " + table +
                         " with version 0 as this version was used for schema creation\nHINT: baseline with a "
                         "version above 0.");
  for (auto const& row : applied)
    if (!is_synthetic_type(row.type))
      throw MigrationError("Unable to baseline schema history table " + table +
                           " as it already contains migrations\nHINT: baseline is for a database that was never "
                           "migrated; this one is, so run migrate (see info for its state).");
  insert_history_row(tx, table, marker);
  tx.commit();
  log->info("schema baselined table={} version={}", table, result.version);
  return result;
}

RepairResult Engine::repair() {
  auto const log = logger("flyway");
  auto const began = Clock::now();
  Session session(connection_string_);
  open_session(session, config_);
  auto const resolved = resolve(migrations_dir_, config_, make_placeholders(session, config_));
  RepairResult result;
  result.history_table = session.quoted_table;

  AdvisoryLock lock(session, config_);
  if (!history_table_exists(session, config_)) {
    result.history_table_exists = false;
    result.execution_time_ms = elapsed_ms(began);
    return result;
  }

  pqxx::work tx(session.connection);
  auto const& table = session.quoted_table;
  for (auto const& row : read_history(tx, table))
    if (!row.success) result.removed_failed.push_back(repaired(row));
  if (!result.removed_failed.empty()) tx.exec("DELETE FROM " + table + " WHERE success = false");

  // Flyway's repair sees every migration as if out of order were allowed, so none is Ignored.
  auto const applied = read_history(tx, table);
  InfoOptions info_options;
  info_options.out_of_order = true;
  auto const infos = merge_migrations(resolved, applied, info_options);
  auto const by = installed_by(session, config_);

  // Missing migrations get a DELETE row; Future ones stay (the default `*:future` ignore pattern).
  std::map<std::string, bool> marked;
  for (auto const& info : infos) {
    if (!info.applied_idx) continue;
    if (info.state != MigrationState::missing && info.state != MigrationState::failed_missing) continue;
    auto const& row = applied[*info.applied_idx];
    if (is_synthetic_type(row.type)) continue;
    // One DELETE row retires every earlier row of the migration (a repeatable may have several).
    auto const key = row.version ? "V" + row.version->to_string() : "R" + row.description;
    if (!marked.emplace(key, true).second) continue;
    HistoryRow deletion;
    if (row.version) deletion.version = row.version->to_string();
    deletion.description = row.description;
    deletion.type = "DELETE";
    deletion.script = row.script;
    deletion.checksum = row.checksum;
    deletion.installed_by = by;
    deletion.success = row.success;
    insert_history_row(tx, table, deletion);
    result.marked_deleted.push_back(repaired(row));
  }

  for (auto const& info : infos) {
    if (!info.applied_idx || !info.resolved_idx || info.state == MigrationState::ignored) continue;
    auto const& row = applied[*info.applied_idx];
    if (is_synthetic_type(row.type)) continue;
    auto const& migration = resolved[*info.resolved_idx];
    auto const& checksum = migration.checksum;
    auto const type = std::string(migration.file.history_type());
    bool const identical = row.checksum == checksum.checksum;
    bool const equivalent = checksum.equivalent && row.checksum == *checksum.equivalent;
    // Unlike validate, a NULL stored checksum does not match here (ResolvedMigration.checksumMatches).
    bool const update_needed =
        migration.file.version
            ? !(identical || equivalent) || row.description != migration.file.description || row.type != type
            : equivalent && !identical;
    if (!update_needed) continue;
    tx.exec("UPDATE " + table + " SET description = " + tx.quote(truncated_description(migration.file.description)) +
             ", type = " + tx.quote(type) + ", checksum = " + std::to_string(checksum.checksum) +
             " WHERE installed_rank = " + std::to_string(row.installed_rank));
    result.aligned.push_back(repaired(row));
  }
  tx.commit();
  result.execution_time_ms = elapsed_ms(began);
  log->info("schema history repaired table={} removed_failed={} marked_deleted={} aligned={}", table,
            result.removed_failed.size(), result.marked_deleted.size(), result.aligned.size());
  return result;
}

CleanResult Engine::clean(CleanOptions const& options) {
  if (!options.allow_clean)
    throw MigrationError(
        "Unable to execute clean as it has been disabled with the 'flyway.cleanDisabled' property.\nHINT: clean "
        "drops every object in the schema; allow it explicitly (berth db clean --allow-clean) only where losing all "
        "data is intended.");
  auto const log = logger("flyway");
  auto const began = Clock::now();
  Session session(connection_string_);
  open_session(session, config_);
  CleanResult result;
  result.schema = session.quoted_schema;
  if (!session.schema_exists) {
    result.schema_existed = false;
    return result;
  }

  AdvisoryLock lock(session, config_);
  std::vector<AppliedMigration> applied;
  if (history_table_exists(session, config_)) applied = read_history(session);
  pqxx::work tx(session.connection);
  if (schema_created_by_flyway(applied, session.quoted_schema)) {
    tx.exec("DROP SCHEMA " + session.quoted_schema + " CASCADE");
    result.schema_dropped = true;
  } else {
    for (auto const& statement : drop_statements(tx, session.schema)) {
      tx.exec(statement);
      ++result.objects_dropped;
    }
  }
  tx.commit();
  result.execution_time_ms = elapsed_ms(began);
  log->info("schema cleaned schema={} dropped_schema={} objects_dropped={}", session.quoted_schema,
            result.schema_dropped, result.objects_dropped);
  return result;
}

std::string format_execution_time(int milliseconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d.%03ds", milliseconds / 60000, (milliseconds % 60000) / 1000,
                milliseconds % 1000);
  return text;
}

}  // namespace berth::flyway
