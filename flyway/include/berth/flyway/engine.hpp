// Flyway's migrate, info and validate against one PostgreSQL database, given only a libpq
// connection string: berth's own cluster or any PostgreSQL URL. The history table, its contents,
// the advisory lock and the messages are Flyway's (flyway-compat.md §6–9), so Flyway and berth
// can take turns on the same database. Not here: baseline, repair, clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/flyway/config.hpp"
#include "berth/flyway/info.hpp"
#include "berth/flyway/version.hpp"

namespace berth::flyway {

struct MigrateOptions {
  std::optional<MigrationVersion> target;  ///< `--target`; empty: latest. Repeatables ignore it.
  bool out_of_order = false;               ///< `--out-of-order`: also apply versions below the highest applied
};

/// A migration migrate() executed.
struct ExecutedMigration {
  std::optional<MigrationVersion> version;  ///< empty for repeatables
  std::string description;
  std::string script;
  int execution_time_ms = 0;
};

struct MigrateResult {
  bool created_history_table = false;
  std::vector<ExecutedMigration> executed;  ///< in the order they ran
};

class Engine {
public:
  /// Connects to nothing yet. `connection_string` is a libpq string or URL (it may hold a
  /// password: it is never logged); `migrations_dir` is the location scanned for migrations.
  Engine(std::string connection_string, Config config, std::filesystem::path migrations_dir);

  /// Applies pending migrations (§7) under Flyway's advisory lock on one session: creates the
  /// history table when missing (refusing a non-empty schema), validates unless
  /// Config::validate_on_migrate is false, then runs pending versioned migrations in version
  /// order and new or changed repeatables, each in its own transaction together with its
  /// history row (autocommit when a statement needs it or executeInTransaction is false).
  /// Throws MigrationError for resolution, validation and migration failures (naming the script,
  /// line, statement and PostgreSQL's message), berth::Error when the lock cannot be had or the
  /// database is unreachable. Safe to call from several threads and processes at once: the lock
  /// serialises them. One call at a time per Engine object.
  MigrateResult migrate(MigrateOptions const& options = {});

  /// Flyway's info table (§8); reads the database, changes nothing, takes no lock. An absent
  /// history table shows every migration as pending. Throws like migrate().
  std::vector<MigrationInfo> info(MigrateOptions const& options = {});

  /// Flyway's validate (§9): throws MigrationError "Validate failed: ..." listing every problem,
  /// pending migrations included. Takes no lock.
  void validate(MigrateOptions const& options = {});

private:
  std::string connection_string_;
  Config config_;
  std::filesystem::path migrations_dir_;
};

/// Flyway's advisory lock key for a history table named `quoted_table`
/// (`"public"."flyway_schema_history"` → 77433833903597): 0x466C79776179 plus Java's
/// String.hashCode() of the name. Thread-safe (pure).
std::int64_t advisory_lock_key(std::string_view quoted_table);

}  // namespace berth::flyway
