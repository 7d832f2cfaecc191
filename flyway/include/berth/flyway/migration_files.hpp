// Discovery of SQL migration files (flyway-compat.md §2–3): which files in a location are
// migrations, what their names say (type, version, description), their per-script `.conf`
// settings, and the order Flyway resolves them in. It reads names and `.conf` files only; the
// scripts' contents are read by checksum.hpp and sql_splitter.hpp.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/flyway/config.hpp"
#include "berth/flyway/version.hpp"

namespace berth::flyway {

enum class MigrationKind {
  versioned,   ///< `V`: applied once, in version order
  baseline,    ///< `B`: stands for all versioned migrations up to its version on an empty schema
  repeatable,  ///< `R`: (re-)applied whenever its checksum changes, after the versioned ones
  undo,        ///< `U`: recognised so it is not mistaken for anything else; migrate never applies it
};

/// What a file name says about a migration (ResourceNameParser).
struct MigrationName {
  MigrationKind kind;
  std::optional<MigrationVersion> version;  ///< empty for repeatables
  std::string description;                  ///< raw description with every `_` replaced by a space
};

/// Per-script overrides read from `<script>.conf`; unset keys take the Config's values.
struct ScriptSettings {
  std::optional<bool> execute_in_transaction;
  std::optional<bool> placeholder_replacement;
  std::optional<std::string> encoding;  ///< only UTF-8 is accepted
};

struct MigrationFile {
  MigrationKind kind;
  std::optional<MigrationVersion> version;  ///< empty for repeatables
  std::string description;
  std::string script;          ///< path relative to the location root, `/`-separated: the `script` column
  std::filesystem::path path;  ///< where the file is on disk
  ScriptSettings settings;

  /// False for undo migrations: migrate, info and validate ignore them.
  bool is_applied_by_migrate() const { return kind != MigrationKind::undo; }
  /// The history table's `type` column: "SQL", "SQL_BASELINE" or "UNDO_SQL".
  std::string_view history_type() const;
  /// The file's own name, e.g. "V2__x.sql" (the `flyway:filename` placeholder).
  std::string filename() const { return path.filename().string(); }
};

/// Parses a file name (no directories) per Flyway's rules: case-sensitive prefix (the longest
/// one matching), case-insensitive suffix, split at the first separator. Nullopt for names that
/// are not migrations: wrong prefix or suffix, callbacks (`beforeMigrate__x.sql`), invalid
/// versions, a version on a repeatable or none on a versioned migration. Thread-safe (pure).
std::optional<MigrationName> parse_migration_name(std::string_view filename, Config const& config);

/// Orders migrations as Flyway resolves them: versioned and baseline by version (a baseline
/// before a versioned migration of the same version), then repeatables by description in
/// UTF-16 code-unit order (Java's String.compareTo), then undo migrations by version.
bool resolves_before(MigrationFile const& a, MigrationFile const& b);

/// Scans `root` recursively and returns its migrations in resolution order (resolves_before).
/// Files with names that are not migrations are skipped silently. Throws MigrationError with
/// Flyway's message for two migrations of equal version ("Found more than one migration with
/// version 1\nOffenders:\n-> <path> (SQL)\n-> <path> (SQL)") or two repeatables with the same
/// description, for an unreadable or invalid `.conf` file, and when `root` cannot be read.
/// Thread-safe; reads the filesystem.
std::vector<MigrationFile> discover_migrations(std::filesystem::path const& root, Config const& config);

}  // namespace berth::flyway
