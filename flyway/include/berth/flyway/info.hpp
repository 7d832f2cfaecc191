// Merging resolved migration files with the rows of `flyway_schema_history` into Flyway's
// migration states (flyway-compat.md §8) and the validation that follows from them (§9). It is
// database-free: the engine reads the rows, this decides what they mean.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "berth/flyway/checksum.hpp"
#include "berth/flyway/migration_files.hpp"
#include "berth/flyway/version.hpp"

namespace berth::flyway {

/// One row of the history table.
struct AppliedMigration {
  int installed_rank = 0;
  std::optional<MigrationVersion> version;  ///< NULL for repeatables and the schema marker
  std::string description;
  std::string type;  ///< "SQL", "BASELINE", "SCHEMA", "DELETE", ...
  std::string script;
  std::optional<std::int32_t> checksum;
  std::string installed_by;
  std::string installed_on;  ///< as PostgreSQL prints the timestamp
  int execution_time = 0;    ///< milliseconds
  bool success = true;
};

/// A migration file together with its checksum (checksum_migration()).
struct ResolvedMigration {
  MigrationFile file;
  MigrationChecksum checksum;
};

enum class MigrationState {
  pending,
  above_target,
  below_baseline,
  baseline_ignored,
  baseline,
  ignored,
  missing,
  failed_missing,
  success,
  failed,
  out_of_order,
  future,
  failed_future,
  outdated,
  superseded,
  deleted,
};

/// Flyway's display name of `state` ("Pending", "Above Target", "Failed (Missing)", ...).
std::string_view display_name(MigrationState state);

enum class MigrationCategory { versioned, repeatable };

/// One line of `info`: an applied row, a resolved file, or both.
struct MigrationInfo {
  MigrationCategory category = MigrationCategory::versioned;
  std::optional<MigrationVersion> version;
  std::string description;
  std::string type;
  std::string script;
  std::optional<std::int32_t> checksum;     ///< the applied row's, else the file's
  std::optional<std::string> installed_on;  ///< set for applied rows
  std::optional<int> installed_rank;        ///< set for applied rows
  MigrationState state = MigrationState::pending;
  std::optional<std::size_t> resolved_idx;  ///< index into the resolved migrations passed in
  std::optional<std::size_t> applied_idx;   ///< index into the applied rows passed in
};

struct InfoOptions {
  std::optional<MigrationVersion> target;  ///< empty: latest
  bool out_of_order = false;
};

/// Flyway's info table: applied rows by installed_rank, then resolved versioned migrations not
/// applied (by version), then repeatables to (re-)apply (by description). `resolved` must be in
/// resolution order (discover_migrations()); undo migrations in it are ignored. Thread-safe (pure).
std::vector<MigrationInfo> merge_migrations(std::span<ResolvedMigration const> resolved,
                                            std::span<AppliedMigration const> applied, InfoOptions const& options);

/// Flyway's validation messages for `infos` (from merge_migrations() over the same inputs), one
/// entry per problem, e.g. "Detected failed migration to version 2 (x).\nPlease remove ...".
/// Pending migrations are problems unless `allow_pending` (as migrate's validation does); Future
/// rows never are (`*:future`). Thread-safe (pure).
std::vector<std::string> validation_errors(std::span<MigrationInfo const> infos,
                                           std::span<ResolvedMigration const> resolved,
                                           std::span<AppliedMigration const> applied, bool allow_pending);

/// "Validate failed: Migrations have failed validation\n" followed by `errors` joined by newlines.
std::string validation_failure_message(std::span<std::string const> errors);

}  // namespace berth::flyway
