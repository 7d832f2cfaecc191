// migrate, info and validate on PostgreSQL through libpqxx. Everything runs on one session: the
// advisory lock is session-level (Flyway's `postgresql.transactional.lock=false` mode), taken
// with pg_try_advisory_lock and retried, so a waiting migrator never sits in a statement that
// holds a snapshot, which is what deadlocks Flyway's default mode against CREATE INDEX
// CONCURRENTLY (flyway/flyway#1654). Only libpqxx calls present in both 6.4 and 7.8 are used.
#include "berth/flyway/engine.hpp"

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <pqxx/pqxx>

#include "berth/core/log.hpp"
#include "berth/flyway/checksum.hpp"
#include "berth/flyway/error.hpp"
#include "berth/flyway/placeholders.hpp"
#include "berth/flyway/sql_splitter.hpp"

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

std::string sql_value(pqxx::transaction_base& tx, std::optional<std::string> const& value) {
  return value ? tx.quote(*value) : std::string("NULL");
}

void open_session(Session& session, Config const& config) {
  pqxx::nontransaction tx(session.connection);
  session.server_major = session.connection.server_version() / 10000;
  if (!config.default_schema.empty()) {
    // Flyway makes the default schema the session's current one, so unqualified names in
    // migrations land there.
    session.schema = config.default_schema;
    session.schema_exists =
        !tx.exec("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = " + tx.quote(session.schema)).empty();
    tx.exec0("SET search_path TO " + tx.quote_name(session.schema));
  }
  auto const row = tx.exec1("SELECT current_user, current_database(), current_schema()");
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
      .exec1("SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace = " + oid +
             ") AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE pronamespace = " + oid +
             ") AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type WHERE typnamespace = " + oid +
             " AND typtype IN ('d', 'e', 'r', 'm'))")[0]
      .as<bool>();
}

std::vector<AppliedMigration> read_history(Session& session) {
  pqxx::nontransaction tx(session.connection);
  auto const rows = tx.exec(
      "SELECT installed_rank, version, description, type, script, checksum, installed_by, installed_on, "
      "execution_time, success FROM " +
      session.quoted_table + " ORDER BY installed_rank");
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

// The DDL of PostgreSQLDatabase.getRawCreateScript, in one transaction so a concurrent reader
// never sees a table without its key.
void create_history_table(Session& session, Config const& config, bool with_schema_marker) {
  pqxx::work tx(session.connection);
  if (with_schema_marker) tx.exec0("CREATE SCHEMA " + session.quoted_schema);
  auto const& table = session.quoted_table;
  tx.exec0("CREATE TABLE " + table +
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
  tx.exec0("ALTER TABLE " + table + " ADD CONSTRAINT " + tx.quote_name(config.history_table + "_pk") +
           " PRIMARY KEY (\"installed_rank\")");
  tx.exec0("CREATE INDEX " + tx.quote_name(config.history_table + "_s_idx") + " ON " + table + " (\"success\")");
  if (with_schema_marker)
    tx.exec0("INSERT INTO " + table +
             " (installed_rank, version, description, type, script, checksum, installed_by, execution_time, "
             "success) VALUES (0, NULL, '<< Flyway Schema Creation >>', 'SCHEMA', " +
             tx.quote(session.quoted_schema) + ", NULL, " + tx.quote(session.user) + ", 0, true)");
  tx.commit();
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

// Flyway's AppliedMigration truncation: description to 200, script to 1000 characters.
void insert_history_row(pqxx::transaction_base& tx, std::string const& table, HistoryRow const& row) {
  auto description = row.description.size() > 200 ? row.description.substr(0, 197) + "..." : row.description;
  auto script = row.script.size() > 1000 ? "..." + row.script.substr(3, 997) : row.script;
  tx.exec0("INSERT INTO " + table +
           " (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success) "
           "VALUES ((SELECT COALESCE(MAX(installed_rank), 0) + 1 FROM " +
           table + "), " + sql_value(tx, row.version) + ", " + tx.quote(description) + ", " + tx.quote(row.type) +
           ", " + tx.quote(script) + ", " + (row.checksum ? std::to_string(*row.checksum) : std::string("NULL")) +
           ", " + tx.quote(row.installed_by) + ", " + std::to_string(row.execution_time) + ", " +
           (row.success ? "true" : "false") + ")");
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

// Flyway's "Migration X failed" report, with berth's file:line in Location.
MigrationError migration_failure(MigrationFile const& file, Statement const& statement, std::exception const& error) {
  std::string sql_state;
  if (auto const* sql_error = dynamic_cast<pqxx::sql_error const*>(&error)) sql_state = sql_error->sqlstate();
  std::string message = error.what();
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  auto const title = "Migration " + file.filename() + " failed";
  return MigrationError(title + "\n" + std::string(title.size(), '-') + "\nSQL State  : " + sql_state +
                        "\nMessage    : " + first_line(message) + "\nLocation   : " + file.script + ":" +
                        std::to_string(statement.line) + " (" + file.path.string() + ")" + "\nLine       : " +
                        std::to_string(statement.line) + "\nStatement  : " + first_line(statement.sql));
}

int elapsed_ms(Clock::time_point since) {
  return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

// Runs one migration and records it. Transactional: statements and history row commit together,
// a failure rolls both back (no row, as Flyway on PostgreSQL). Autocommit: a failure leaves what
// ran and records a row with success = false.
ExecutedMigration apply(Session& session, Config const& config, Placeholders const& placeholders,
                        ResolvedMigration const& migration, std::string const& installed_by) {
  auto const& file = migration.file;
  auto text = read_script(file.path);
  if (file.settings.placeholder_replacement.value_or(config.placeholder_replacement))
    text = placeholders.for_script(file.filename()).replace(text);
  auto const statements = split_statements(text, file.script);
  for (auto const& statement : statements)
    if (statement.copy_data)
      throw MigrationError("cannot apply " + file.script + ":" + std::to_string(statement.line) +
                           ": COPY ... FROM STDIN is not supported yet");
  bool const in_transaction = runs_in_transaction(statements, session.server_major, config.mixed) &&
                              file.settings.execute_in_transaction.value_or(config.execute_in_transaction);

  HistoryRow row;
  if (file.version) row.version = file.version->to_string();
  row.description = file.description;
  row.type = std::string(file.history_type());
  row.script = file.script;
  row.checksum = migration.checksum.checksum;
  row.installed_by = installed_by;

  auto const began = Clock::now();
  if (in_transaction) {
    pqxx::work tx(session.connection);
    for (auto const& statement : statements) {
      try {
        tx.exec(statement.sql);
      } catch (pqxx::sql_error const& e) {
        throw migration_failure(file, statement, e);  // ~work rolls back
      }
    }
    row.execution_time = elapsed_ms(began);
    insert_history_row(tx, session.quoted_table, row);
    tx.commit();
  } else {
    std::optional<MigrationError> failure;
    {
      pqxx::nontransaction tx(session.connection);
      for (auto const& statement : statements) {
        try {
          tx.exec(statement.sql);
        } catch (pqxx::sql_error const& e) {
          failure = migration_failure(file, statement, e);
          break;
        }
      }
    }
    row.execution_time = elapsed_ms(began);
    row.success = !failure;
    pqxx::nontransaction tx(session.connection);
    insert_history_row(tx, session.quoted_table, row);
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
        if (tx.exec1("SELECT pg_try_advisory_lock(" + std::to_string(key_) + ")")[0].as<bool>()) return;
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
    if (session.schema_exists && !schema_is_empty(session))
      throw MigrationError("Found non-empty schema(s) " + session.quoted_schema +
                           " but no schema history table. Use baseline() or set baselineOnMigrate to true to "
                           "initialize the schema history table.");
    create_history_table(session, config_, !session.schema_exists);
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
  auto const installed_by = config_.installed_by.empty() ? session.user : config_.installed_by;
  for (auto const& info : infos) {
    if (info.state != MigrationState::pending || !info.resolved_idx) continue;
    auto executed = apply(session, config_, placeholders, resolved[*info.resolved_idx], installed_by);
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

}  // namespace berth::flyway
