// The `berth db` commands: each builds a flyway::Engine for its DbTarget, runs one command and
// prints Flyway's lines for it.
#include "db_commands.hpp"

#include <algorithm>
#include <vector>

#include "berth/flyway/engine.hpp"
#include "berth/flyway/error.hpp"

namespace berth::appliance {
namespace {

flyway::Engine engine_for(flyway::Config const& flyway_config, DbTarget const& target) {
  return flyway::Engine(target.url, flyway_config, target.location);
}

std::string name_of(flyway::RepairedMigration const& migration) {
  return (migration.version ? "version " + migration.version->to_string() : std::string("repeatable")) + " (" +
         migration.description + ")";
}

flyway::MigrateOptions options_for(DbTarget const& target) {
  flyway::MigrateOptions options;
  if (target.target) options.target = flyway::MigrationVersion::parse(*target.target);
  options.out_of_order = target.out_of_order;
  return options;
}

// Flyway's info layout: a boxed table with one row per migration.
void print_table(std::vector<std::vector<std::string>> const& rows, std::ostream& out) {
  std::vector<std::size_t> widths(rows.front().size(), 0);
  for (auto const& row : rows)
    for (std::size_t column = 0; column < row.size(); ++column)
      widths[column] = std::max(widths[column], row[column].size());
  auto rule = [&] {
    out << "+";
    for (auto width : widths) out << std::string(width + 2, '-') << "+";
    out << "\n";
  };
  rule();
  for (std::size_t row_idx = 0; row_idx < rows.size(); ++row_idx) {
    out << "|";
    for (std::size_t column = 0; column < widths.size(); ++column)
      out << " " << rows[row_idx][column] << std::string(widths[column] - rows[row_idx][column].size(), ' ') << " |";
    out << "\n";
    if (row_idx == 0) rule();
  }
  rule();
}

}  // namespace

int db_migrate(Config const& config, DbTarget const& target, std::ostream& out) {
  auto flyway_config = config.flyway;
  flyway_config.baseline_on_migrate = flyway_config.baseline_on_migrate || target.baseline_on_migrate;
  if (target.baseline_version) flyway_config.baseline_version = *target.baseline_version;
  flyway::MigrateResult result;
  try {
    result = engine_for(flyway_config, target).migrate(options_for(target));
  } catch (flyway::MigrationError const& error) {
    // Flyway's own words name its Java API; say what berth accepts.
    if (std::string(error.what()).find("but no schema history table") == std::string::npos) throw;
    throw Error(std::string(error.what()) +
                "\nHINT: to keep what the database holds and apply only later versions, baseline it: `berth db "
                "baseline APP --version V` once, or `berth db migrate APP --baseline-on-migrate [--baseline-version V]` "
                "(baseline_on_migrate: true for the database under databases: does the same at every migrate)");
  }
  if (result.created_history_table) out << "Created schema history table " << config.flyway.history_table << "\n";
  if (result.baselined_version)
    out << "Successfully baselined schema with version: " << *result.baselined_version << "\n";
  for (auto const& migration : result.executed)
    out << "Migrated "
        << (migration.version ? "to version " + migration.version->to_string() : std::string("repeatable")) << " - "
        << migration.description << " (" << migration.script << ", " << migration.execution_time_ms << " ms)\n";
  out << "Successfully applied " << result.executed.size() << " migration" << (result.executed.size() == 1 ? "" : "s")
      << "\n";
  return 0;
}

int db_info(Config const& config, DbTarget const& target, std::ostream& out) {
  std::vector<std::vector<std::string>> rows = {
      {"Category", "Version", "Description", "Type", "Installed On", "State"}};
  for (auto const& info : engine_for(config.flyway, target).info(options_for(target)))
    rows.push_back({info.category == flyway::MigrationCategory::versioned ? "Versioned" : "Repeatable",
                    info.version ? info.version->to_string() : "", info.description, info.type,
                    info.installed_on.value_or(""), std::string(flyway::display_name(info.state))});
  if (rows.size() == 1) rows.push_back({"No migrations found", "", "", "", "", ""});
  print_table(rows, out);
  return 0;
}

int db_validate(Config const& config, DbTarget const& target, std::ostream& out) {
  try {
    engine_for(config.flyway, target).validate(options_for(target));
  } catch (flyway::MigrationError const& error) {
    out << error.what() << "\n";
    return 1;
  }
  out << "Successfully validated the migrations in " << target.location.string() << "\n";
  return 0;
}

int db_baseline(Config const& config, DbTarget const& target, DbBaselineOptions const& options, std::ostream& out) {
  auto flyway_config = config.flyway;
  if (options.version) flyway_config.baseline_version = *options.version;
  if (options.description) flyway_config.baseline_description = *options.description;
  auto const result = engine_for(flyway_config, target).baseline();
  if (result.already_baselined) {
    out << "Schema history table " << result.history_table << " already initialized with (" << result.version << ","
        << result.description << "). Skipping.\n";
    return 0;
  }
  if (result.created_history_table)
    out << "Creating Schema History table " << result.history_table << " with baseline ...\n";
  out << "Successfully baselined schema with version: " << result.version << "\n";
  return 0;
}

int db_repair(Config const& config, DbTarget const& target, std::ostream& out) {
  auto const result = engine_for(config.flyway, target).repair();
  if (!result.history_table_exists) {
    out << "Repair of failed migration in Schema History table " << result.history_table
        << " not necessary as table doesn't exist.\n";
    return 0;
  }
  if (result.removed_failed.empty())
    out << "Repair of failed migration in Schema History table " << result.history_table
        << " not necessary. No failed migration detected.\n";
  for (auto const& migration : result.removed_failed) out << "Removed failed migration " << name_of(migration) << "\n";
  for (auto const& migration : result.marked_deleted)
    out << "Marked missing migration as deleted: " << name_of(migration) << "\n";
  for (auto const& migration : result.aligned)
    out << "Aligned applied migration with its file: " << name_of(migration) << "\n";
  out << "Successfully repaired schema history table " << result.history_table << " (execution time "
      << flyway::format_execution_time(result.execution_time_ms) << ").\n";
  if (!result.marked_deleted.empty())
    out << "Please ensure the previous contents of the deleted migrations are removed from the database, or moved "
           "into an existing migration.\n";
  return 0;
}

int db_clean(Config const& config, DbTarget const& target, bool allow_clean, std::ostream& out) {
  auto const result = engine_for(config.flyway, target).clean({allow_clean});
  if (!result.schema_existed) {
    out << "Unable to clean unknown schema: " << result.schema << "\n";
    return 0;
  }
  out << "Successfully " << (result.schema_dropped ? "dropped" : "cleaned") << " schema " << result.schema
      << " (execution time " << flyway::format_execution_time(result.execution_time_ms) << ")\n";
  return 0;
}

}  // namespace berth::appliance
