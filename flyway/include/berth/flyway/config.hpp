// Settings of the migration engine. Plain values with Flyway's defaults (flyway-compat.md §1);
// `appliance` fills them from berth.yaml.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace berth::flyway {

struct Config {
  std::string history_table = "flyway_schema_history";         ///< Flyway's default table name
  std::string sql_migration_prefix = "V";                      ///< versioned migrations
  std::string undo_sql_migration_prefix = "U";                 ///< undo migrations: recognised, never applied
  std::string repeatable_sql_migration_prefix = "R";           ///< repeatable migrations
  std::string baseline_migration_prefix = "B";                 ///< baseline migrations
  std::string sql_migration_separator = "__";                  ///< between version and description
  std::vector<std::string> sql_migration_suffixes = {".sql"};  ///< matched case-insensitively
  bool placeholder_replacement = true;                         ///< a script's `.conf` may override it
  std::string placeholder_prefix = "${";
  std::string placeholder_suffix = "}";
  std::map<std::string, std::string> placeholders;  ///< user placeholders; names match case-insensitively
  bool execute_in_transaction = true;               ///< a script's `.conf` may override it
  bool mixed = false;                  ///< allow transactional and non-transactional statements in one script
  bool validate_on_migrate = true;     ///< migrate validates first, pending migrations allowed
  std::string baseline_version = "1";  ///< version of the BASELINE row (baseline, baselineOnMigrate)
  std::string baseline_description = "<< Flyway Baseline >>";  ///< description of the BASELINE row
  bool baseline_on_migrate = false;  ///< migrate baselines a non-empty schema without history table instead of refusing
  std::string default_schema;        ///< schema of the history table; empty: the connection's current schema
  std::string installed_by;          ///< `installed_by` column; empty: `current_user`
  int lock_retry_count = 50;         ///< advisory lock attempts before giving up
  std::chrono::milliseconds lock_retry_interval{1000};  ///< pause between attempts (Flyway: 1 s)
};

}  // namespace berth::flyway
