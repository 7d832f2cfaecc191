// `berth db migrate|info|validate|baseline|repair|clean`: Flyway-compatible migrations against a
// PostgreSQL database given by URL. (Application databases on berth's own cluster, by name, come
// with the cluster: they resolve to a DbTarget too.)
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "berth/appliance/config.hpp"

namespace berth::appliance {

/// Which database and which migrations a `berth db` command works on.
struct DbTarget {
  std::string url;                    ///< libpq URL or key=value string; never printed
  std::filesystem::path location;     ///< the migrations folder (baseline and clean need none)
  std::optional<std::string> target;  ///< --target VERSION
  bool out_of_order = false;          ///< --out-of-order
  bool baseline_on_migrate = false;   ///< --baseline-on-migrate (or the database's baseline_on_migrate)
  std::optional<std::string> baseline_version;  ///< --baseline-version (or the database's baseline_version)
};

/// Applies pending migrations; prints what ran. Returns the exit code.
int db_migrate(Config const& config, DbTarget const& target, std::ostream& out);
/// Prints Flyway's info table. Returns the exit code.
int db_info(Config const& config, DbTarget const& target, std::ostream& out);
/// Validates; prints Flyway's messages and returns 1 on any problem.
int db_validate(Config const& config, DbTarget const& target, std::ostream& out);

struct DbBaselineOptions {
  std::optional<std::string> version;      ///< --version; else config.flyway.baseline_version ("1")
  std::optional<std::string> description;  ///< --description; else config.flyway.baseline_description
};

/// Baselines the database (Flyway's baseline); prints Flyway's lines. Returns the exit code;
/// throws flyway::MigrationError (with Flyway's message) when the database refuses a baseline.
int db_baseline(Config const& config, DbTarget const& target, DbBaselineOptions const& options, std::ostream& out);
/// Repairs the history table (Flyway's repair) and prints what changed. Returns the exit code.
int db_repair(Config const& config, DbTarget const& target, std::ostream& out);
/// Drops everything in the schema (Flyway's clean) when `allow_clean`; otherwise throws
/// flyway::MigrationError with Flyway's cleanDisabled message. Returns the exit code.
int db_clean(Config const& config, DbTarget const& target, bool allow_clean, std::ostream& out);

}  // namespace berth::appliance
