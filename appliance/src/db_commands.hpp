// `berth db migrate|info|validate`: Flyway-compatible migrations against a PostgreSQL database
// given by URL. (Application databases on berth's own cluster, by name, come with the cluster.)
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "berth/appliance/config.hpp"

namespace berth::appliance {

struct DbTarget {
  std::string url;                    ///< libpq URL or key=value string; never printed
  std::filesystem::path location;     ///< the migrations folder
  std::optional<std::string> target;  ///< --target VERSION
  bool out_of_order = false;          ///< --out-of-order
};

/// Applies pending migrations; prints what ran. Returns the exit code.
int db_migrate(Config const& config, DbTarget const& target, std::ostream& out);
/// Prints Flyway's info table. Returns the exit code.
int db_info(Config const& config, DbTarget const& target, std::ostream& out);
/// Validates; prints Flyway's messages and returns 1 on any problem.
int db_validate(Config const& config, DbTarget const& target, std::ostream& out);

}  // namespace berth::appliance
