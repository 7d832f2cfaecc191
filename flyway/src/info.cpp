// Flyway's MigrationInfoServiceImpl and MigrationInfoImpl.validate, reduced to what SQL
// migrations on PostgreSQL need: which state each applied row and each file is in, and which of
// those states fail validation with which message.
#include "berth/flyway/info.hpp"

#include <algorithm>
#include <map>

namespace berth::flyway {
namespace {

bool is_baseline_type(std::string_view type) {
  return type == "BASELINE" || type == "SQL_BASELINE" || type == "JDBC_BASELINE";
}

std::string describe(MigrationInfo const& info) {
  return info.version ? info.version->to_string() : info.description;
}

std::string optional_text(std::optional<std::int32_t> value) {
  return value ? std::to_string(*value) : "null";
}

std::string mismatch(std::string_view what, std::string const& identifier, std::string const& applied,
                     std::string const& resolved) {
  return "Migration " + std::string(what) + " mismatch for migration " + identifier +
         "\n-> Applied to database : " + applied + "\n-> Resolved locally    : " + resolved +
         "\nEither revert the changes to the migration, or run repair to update the schema history.";
}

}  // namespace

std::string_view display_name(MigrationState state) {
  switch (state) {
    case MigrationState::pending: return "Pending";
    case MigrationState::above_target: return "Above Target";
    case MigrationState::below_baseline: return "Below Baseline";
    case MigrationState::baseline_ignored: return "Ignored (Baseline)";
    case MigrationState::baseline: return "Baseline";
    case MigrationState::ignored: return "Ignored";
    case MigrationState::missing: return "Missing";
    case MigrationState::failed_missing: return "Failed (Missing)";
    case MigrationState::success: return "Success";
    case MigrationState::failed: return "Failed";
    case MigrationState::out_of_order: return "Out of Order";
    case MigrationState::future: return "Future";
    case MigrationState::failed_future: return "Failed (Future)";
    case MigrationState::outdated: return "Outdated";
    case MigrationState::superseded: return "Superseded";
    case MigrationState::deleted: return "Deleted";
  }
  return "Unknown";
}

std::vector<MigrationInfo> merge_migrations(std::span<ResolvedMigration const> resolved,
                                            std::span<AppliedMigration const> applied, InfoOptions const& options) {
  std::map<MigrationVersion, std::size_t> versioned_files;
  std::map<std::string, std::size_t> repeatable_files;
  std::optional<MigrationVersion> highest_local;
  for (std::size_t file_idx = 0; file_idx < resolved.size(); ++file_idx) {
    auto const& file = resolved[file_idx].file;
    if (!file.is_applied_by_migrate()) continue;
    if (file.kind == MigrationKind::repeatable) {
      repeatable_files.emplace(file.description, file_idx);
    } else {
      versioned_files.emplace(*file.version, file_idx);
      if (!highest_local || *highest_local < *file.version) highest_local = *file.version;
    }
  }

  // A DELETE row (from repair) retires the rows before it for the same migration.
  std::vector<bool> deleted(applied.size(), false);
  for (std::size_t row_idx = 0; row_idx < applied.size(); ++row_idx) {
    if (applied[row_idx].type != "DELETE") continue;
    for (std::size_t earlier = 0; earlier < row_idx; ++earlier) {
      auto const& row = applied[earlier];
      bool const same = applied[row_idx].version ? row.version == applied[row_idx].version
                                                 : !row.version && row.description == applied[row_idx].description;
      if (same && row.type != "DELETE") deleted[earlier] = true;
    }
  }

  std::optional<MigrationVersion> baseline_version;
  std::optional<MigrationVersion> highest_applied;
  std::map<MigrationVersion, bool> applied_versions;
  std::map<std::string, std::size_t> latest_repeatable;
  for (std::size_t row_idx = 0; row_idx < applied.size(); ++row_idx) {
    auto const& row = applied[row_idx];
    if (deleted[row_idx] || row.type == "DELETE" || row.type == "SCHEMA") continue;
    if (row.version) {
      applied_versions[*row.version] = true;
      if (!highest_applied || *highest_applied < *row.version) highest_applied = *row.version;
      if (is_baseline_type(row.type)) baseline_version = *row.version;
    } else {
      latest_repeatable[row.description] = row_idx;
    }
  }

  std::vector<MigrationInfo> infos;
  std::optional<MigrationVersion> highest_so_far;
  for (std::size_t row_idx = 0; row_idx < applied.size(); ++row_idx) {
    auto const& row = applied[row_idx];
    MigrationInfo info;
    info.category = row.version || row.type == "SCHEMA" ? MigrationCategory::versioned : MigrationCategory::repeatable;
    info.version = row.version;
    info.description = row.description;
    info.type = row.type;
    info.script = row.script;
    info.checksum = row.checksum;
    info.installed_on = row.installed_on;
    info.installed_rank = row.installed_rank;
    info.applied_idx = row_idx;

    if (row.type == "DELETE" || row.type == "SCHEMA") {
      info.state = MigrationState::success;
    } else if (deleted[row_idx]) {
      info.state = MigrationState::deleted;
    } else if (is_baseline_type(row.type)) {
      info.state = MigrationState::baseline;
    } else if (row.version) {
      auto const file = versioned_files.find(*row.version);
      if (file == versioned_files.end()) {
        bool const missing = highest_local && *row.version < *highest_local;
        info.state = missing ? (row.success ? MigrationState::missing : MigrationState::failed_missing)
                             : (row.success ? MigrationState::future : MigrationState::failed_future);
      } else {
        info.resolved_idx = file->second;
        if (!row.success)
          info.state = MigrationState::failed;
        else if (highest_so_far && *row.version < *highest_so_far)
          info.state = MigrationState::out_of_order;
        else
          info.state = MigrationState::success;
      }
    } else {
      auto const file = repeatable_files.find(row.description);
      if (file == repeatable_files.end()) {
        info.state = row.success ? MigrationState::missing : MigrationState::failed_missing;
      } else if (!row.success) {
        info.state = MigrationState::failed;
        info.resolved_idx = file->second;
      } else if (latest_repeatable[row.description] != row_idx) {
        info.state = MigrationState::superseded;
      } else {
        info.resolved_idx = file->second;
        info.state =
            resolved[file->second].checksum.matches(row.checksum) ? MigrationState::success : MigrationState::outdated;
      }
    }
    if (row.version && !deleted[row_idx] && row.type != "DELETE" && (!highest_so_far || *highest_so_far < *row.version))
      highest_so_far = *row.version;
    infos.push_back(std::move(info));
  }

  auto const from_file = [&](std::size_t file_idx, MigrationState state) {
    auto const& migration = resolved[file_idx];
    MigrationInfo info;
    info.category =
        migration.file.kind == MigrationKind::repeatable ? MigrationCategory::repeatable : MigrationCategory::versioned;
    info.version = migration.file.version;
    info.description = migration.file.description;
    info.type = std::string(migration.file.history_type());
    info.script = migration.file.script;
    info.checksum = migration.checksum.checksum;
    info.state = state;
    info.resolved_idx = file_idx;
    return info;
  };

  for (auto const& [version, file_idx] : versioned_files) {
    if (applied_versions.contains(version)) continue;
    MigrationState state = MigrationState::pending;
    if (baseline_version && version < *baseline_version)
      state = MigrationState::below_baseline;
    else if (baseline_version && version == *baseline_version)
      state = MigrationState::baseline_ignored;
    else if (options.target && *options.target < version)
      state = MigrationState::above_target;
    else if (highest_applied && version < *highest_applied && !options.out_of_order)
      state = MigrationState::ignored;
    infos.push_back(from_file(file_idx, state));
  }
  for (std::size_t file_idx = 0; file_idx < resolved.size(); ++file_idx) {
    auto const& file = resolved[file_idx].file;
    if (file.kind != MigrationKind::repeatable) continue;
    auto const latest = latest_repeatable.find(file.description);
    if (latest == latest_repeatable.end() ||
        (applied[latest->second].success && !resolved[file_idx].checksum.matches(applied[latest->second].checksum)))
      infos.push_back(from_file(file_idx, MigrationState::pending));
  }
  return infos;
}

std::vector<std::string> validation_errors(std::span<MigrationInfo const> infos,
                                           std::span<ResolvedMigration const> resolved,
                                           std::span<AppliedMigration const> applied, bool allow_pending) {
  std::optional<MigrationVersion> baseline_version;
  for (auto const& row : applied)
    if (is_baseline_type(row.type) && row.version) baseline_version = *row.version;

  std::vector<std::string> errors;
  for (auto const& info : infos) {
    bool const repeatable = info.category == MigrationCategory::repeatable;
    switch (info.state) {
      case MigrationState::failed:
      case MigrationState::failed_missing:
        errors.push_back(repeatable
                             ? "Detected failed repeatable migration: " + info.description +
                                   ".\nPlease remove any half-completed changes then run repair to fix the "
                                   "schema history."
                             : "Detected failed migration to version " + describe(info) + " (" + info.description +
                                   ").\nPlease remove any half-completed changes then run repair to fix the "
                                   "schema history.");
        continue;
      case MigrationState::missing:
        errors.push_back("Detected applied migration not resolved locally: " + describe(info) +
                         ".\nIf you removed this migration intentionally, run repair to mark the migration as "
                         "deleted.");
        continue;
      case MigrationState::ignored:
        errors.push_back("Detected resolved migration not applied to database: " + describe(info) +
                         ".\nTo ignore this migration, set -ignoreMigrationPatterns='*:ignored'. To allow executing "
                         "this migration, set -outOfOrder=true.");
        continue;
      case MigrationState::pending:
        if (allow_pending) continue;
        if (repeatable && info.resolved_idx) {
          bool const was_applied = std::any_of(infos.begin(), infos.end(), [&](MigrationInfo const& other) {
            return other.state == MigrationState::outdated && other.description == info.description;
          });
          if (was_applied) {
            errors.push_back(
                "Detected outdated resolved repeatable migration that should be re-applied to "
                "database: " +
                info.description + ".\nRun migrate to execute this migration.");
            continue;
          }
        }
        errors.push_back("Detected resolved migration not applied to database: " + describe(info) +
                         ".\nTo fix this error, either run migrate, or set -ignoreMigrationPatterns='*:pending'.");
        continue;
      default: break;
    }
    // Mismatches: only between a versioned file and its successful row above the baseline.
    if (repeatable || !info.resolved_idx || !info.applied_idx || !info.version) continue;
    if (info.state != MigrationState::success && info.state != MigrationState::out_of_order) continue;
    if (baseline_version && !(*baseline_version < *info.version)) continue;
    auto const& file = resolved[*info.resolved_idx];
    auto const& row = applied[*info.applied_idx];
    auto const identifier = "version " + info.version->to_string();
    if (row.type != file.file.history_type())
      errors.push_back(mismatch("type", identifier, row.type, std::string(file.file.history_type())));
    if (!file.checksum.matches(row.checksum))
      errors.push_back(
          mismatch("checksum", identifier, optional_text(row.checksum), std::to_string(file.checksum.checksum)));
    if (row.description != file.file.description)
      errors.push_back(mismatch("description", identifier, row.description, file.file.description));
  }
  return errors;
}

std::string validation_failure_message(std::span<std::string const> errors) {
  std::string message = "Validate failed: Migrations have failed validation";
  for (auto const& error : errors) message += "\n" + error;
  return message;
}

}  // namespace berth::flyway
