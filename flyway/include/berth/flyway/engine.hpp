// Flyway's migrate, info, validate, baseline, repair and clean against one PostgreSQL database,
// given only a libpq connection string: berth's own cluster or any PostgreSQL URL. The history
// table, its contents, the advisory lock and the messages are Flyway's (flyway-compat.md §6–10),
// so Flyway and berth can take turns on the same database. Not here: undo, baseline (B) migrations.
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
  std::optional<std::string> baselined_version;  ///< set when baselineOnMigrate baselined the schema
  std::vector<ExecutedMigration> executed;       ///< in the order they ran
};

struct BaselineResult {
  std::string history_table;  ///< quoted, e.g. `"public"."flyway_schema_history"`
  bool created_history_table = false;
  bool already_baselined = false;  ///< the same baseline row was there: nothing changed
  std::string version;             ///< the baseline row's version
  std::string description;         ///< the baseline row's description
};

/// A history row repair() changed, named as Flyway's RepairResult names it.
struct RepairedMigration {
  std::optional<MigrationVersion> version;  ///< empty for repeatables
  std::string description;
  std::string script;
};

struct RepairResult {
  std::string history_table;                      ///< quoted, e.g. `"public"."flyway_schema_history"`
  bool history_table_exists = true;               ///< false: nothing to repair
  std::vector<RepairedMigration> removed_failed;  ///< rows with success = false, deleted
  std::vector<RepairedMigration> marked_deleted;  ///< missing migrations, given a DELETE row
  std::vector<RepairedMigration> aligned;         ///< rows whose checksum, description or type now match their file
  int execution_time_ms = 0;
};

struct CleanOptions {
  /// Flyway's `cleanDisabled=false`. Without it clean refuses, as Flyway does by default.
  bool allow_clean = false;
};

struct CleanResult {
  std::string schema;               ///< quoted, e.g. `"public"`
  bool schema_existed = true;       ///< false: there was nothing to clean
  bool schema_dropped = false;      ///< berth/Flyway created the schema (SCHEMA row), so it was dropped whole
  std::size_t objects_dropped = 0;  ///< objects dropped one by one when the schema itself stays
  int execution_time_ms = 0;
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

  /// Flyway's baseline (§10) with Config::baseline_version and baseline_description: creates the
  /// history table holding only the BASELINE row, or adds that row to a table with no applied
  /// migrations. Files at or below that version then show as "Below Baseline"/"Ignored
  /// (Baseline)" and migrate skips them. Throws MigrationError with Flyway's message when the
  /// table already holds migrations or another baseline, berth::Error like migrate(). Takes the
  /// advisory lock.
  BaselineResult baseline();

  /// Flyway's repair (§10), in one transaction under the advisory lock: deletes failed rows,
  /// marks applied migrations whose file is gone (Missing) as deleted with a DELETE row, and
  /// realigns checksum, description and type of applied versioned migrations with their files
  /// (repeatables: only a raw-text checksum becomes the placeholder-replaced one). A missing
  /// history table is nothing to repair. Throws like migrate().
  RepairResult repair();

  /// Flyway's clean (§10): drops every object in the default schema (the history table too), or
  /// the schema itself when the history table says berth/Flyway created it. Throws
  /// MigrationError "Unable to execute clean as it has been disabled with the
  /// 'flyway.cleanDisabled' property." unless `options.allow_clean`. One transaction, under the
  /// advisory lock.
  CleanResult clean(CleanOptions const& options);

private:
  std::string connection_string_;
  Config config_;
  std::filesystem::path migrations_dir_;
};

/// Flyway's advisory lock key for a history table named `quoted_table`
/// (`"public"."flyway_schema_history"` → 77433833903597): 0x466C79776179 plus Java's
/// String.hashCode() of the name. Thread-safe (pure).
std::int64_t advisory_lock_key(std::string_view quoted_table);

/// Flyway's TimeFormat: `mm:ss.SSSs`, e.g. 12 ms → "00:00.012s". Thread-safe (pure).
std::string format_execution_time(int milliseconds);

}  // namespace berth::flyway
