// File-name parsing follows Flyway's ResourceNameParser, ordering its ResolvedMigrationComparator
// and duplicate detection CompositeMigrationResolver.checkForIncompatibilities, so that a
// directory Flyway accepts resolves to the same list here and one it rejects fails the same way.
#include "berth/flyway/migration_files.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "berth/flyway/error.hpp"
#include "utf.hpp"

namespace berth::flyway {
namespace {

namespace fs = std::filesystem;

// Flyway's callback events. A script named after one is a callback, never a migration, even
// when a configured migration prefix also matches it.
constexpr std::string_view callback_events[] = {
    "beforeMigrate",
    "beforeRepeatables",
    "beforeEachMigrate",
    "beforeEachMigrateStatement",
    "afterEachMigrateStatement",
    "afterEachMigrateStatementError",
    "afterEachMigrate",
    "afterEachMigrateError",
    "afterMigrate",
    "afterMigrateApplied",
    "afterVersioned",
    "afterMigrateError",
    "beforeUndo",
    "beforeEachUndo",
    "beforeEachUndoStatement",
    "afterEachUndoStatement",
    "afterEachUndoStatementError",
    "afterEachUndo",
    "afterEachUndoError",
    "afterUndo",
    "afterUndoError",
    "beforeClean",
    "afterClean",
    "afterCleanError",
    "beforeInfo",
    "afterInfo",
    "afterInfoError",
    "beforeValidate",
    "afterValidate",
    "afterValidateError",
    "beforeBaseline",
    "afterBaseline",
    "afterBaselineError",
    "beforeRepair",
    "afterRepair",
    "afterRepairError",
    "createSchema",
    "beforeCreateSchema",
};

char to_lower_ascii(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool ends_with_ignoring_case(std::string_view text, std::string_view suffix) {
  if (suffix.size() > text.size()) return false;
  auto tail = text.substr(text.size() - suffix.size());
  return std::equal(tail.begin(), tail.end(), suffix.begin(), suffix.end(),
                    [](char a, char b) { return to_lower_ascii(a) == to_lower_ascii(b); });
}

int group_of(MigrationKind kind) {
  switch (kind) {
    case MigrationKind::versioned:
    case MigrationKind::baseline: return 0;
    case MigrationKind::repeatable: return 1;
    case MigrationKind::undo: return 2;
  }
  return 3;
}

std::string_view kind_name(MigrationKind kind) {
  switch (kind) {
    case MigrationKind::versioned:
    case MigrationKind::repeatable: return "SQL";
    case MigrationKind::baseline: return "SQL_BASELINE";
    case MigrationKind::undo: return "UNDO_SQL";
  }
  return "SQL";
}

std::string trim(std::string_view text) {
  auto first = text.find_first_not_of(" \t\f\r\n");
  if (first == std::string_view::npos) return {};
  auto last = text.find_last_not_of(" \t\f\r\n");
  return std::string(text.substr(first, last - first + 1));
}

bool parse_conf_boolean(std::string const& key, std::string const& value) {
  std::string lower;
  for (char c : value) lower += to_lower_ascii(c);
  if (lower == "true") return true;
  if (lower == "false") return false;
  throw MigrationError("Invalid value for " + key + " (should be either true or false): " + value);
}

// A `.conf` file is a Java properties file; only the keys SqlScriptMetadata knows are accepted.
ScriptSettings read_script_settings(fs::path const& conf_path) {
  std::ifstream in(conf_path, std::ios::binary);
  if (!in) throw MigrationError("cannot read migration settings " + conf_path.string());
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw MigrationError("cannot read migration settings " + conf_path.string());

  ScriptSettings settings;
  std::istringstream lines(content.str());
  for (std::string raw_line; std::getline(lines, raw_line);) {
    auto line = trim(raw_line);
    if (line.empty() || line.front() == '#' || line.front() == '!') continue;
    auto separator = line.find_first_of("=:");
    auto key = trim(line.substr(0, separator));
    auto value = separator == std::string::npos ? std::string() : trim(line.substr(separator + 1));
    if (key == "executeInTransaction") {
      settings.execute_in_transaction = parse_conf_boolean(key, value);
    } else if (key == "placeholderReplacement") {
      settings.placeholder_replacement = parse_conf_boolean(key, value);
    } else if (key == "encoding") {
      std::string lower;
      for (char c : value) lower += to_lower_ascii(c);
      if (lower != "utf-8" && lower != "utf8")
        throw MigrationError("unsupported encoding " + value + " in " + conf_path.string() +
                             ": berth reads migrations as UTF-8 only\nHINT: convert the script to UTF-8 and remove "
                             "the encoding setting.");
      settings.encoding = value;
    } else {
      throw MigrationError("Unknown script configuration property in " + conf_path.string() + ": " + key);
    }
  }
  return settings;
}

}  // namespace

std::string_view MigrationFile::history_type() const {
  return kind_name(kind);
}

std::optional<MigrationName> parse_migration_name(std::string_view filename, Config const& config) {
  std::optional<std::string_view> suffix;
  for (auto const& candidate : config.sql_migration_suffixes)
    if (ends_with_ignoring_case(filename, candidate)) {
      suffix = candidate;
      break;
    }
  if (!suffix) return std::nullopt;
  auto stem = filename.substr(0, filename.size() - suffix->size());

  // The longest matching prefix wins, callbacks included.
  std::optional<MigrationKind> kind;
  std::size_t prefix_length = 0;
  bool is_callback = false;
  auto consider = [&](std::string_view prefix, std::optional<MigrationKind> prefix_kind) {
    if (prefix.empty() || !stem.starts_with(prefix) || prefix.size() <= prefix_length) return;
    prefix_length = prefix.size();
    kind = prefix_kind;
    is_callback = !prefix_kind;
  };
  consider(config.sql_migration_prefix, MigrationKind::versioned);
  consider(config.undo_sql_migration_prefix, MigrationKind::undo);
  consider(config.repeatable_sql_migration_prefix, MigrationKind::repeatable);
  consider(config.baseline_migration_prefix, MigrationKind::baseline);
  for (auto event : callback_events) consider(event, std::nullopt);
  if (is_callback || !kind || stem.size() <= prefix_length) return std::nullopt;

  auto rest = stem.substr(prefix_length);
  auto separator = rest.find(config.sql_migration_separator);
  auto version_text = separator == std::string_view::npos ? rest : rest.substr(0, separator);
  auto raw_description = separator == std::string_view::npos
                             ? std::string_view()
                             : rest.substr(separator + config.sql_migration_separator.size());

  MigrationName name{*kind, std::nullopt, std::string(raw_description)};
  std::replace(name.description.begin(), name.description.end(), '_', ' ');
  if (*kind == MigrationKind::repeatable) {
    if (!version_text.empty()) return std::nullopt;
    return name;
  }
  if (version_text.empty()) return std::nullopt;
  try {
    name.version = MigrationVersion::parse(version_text);
  } catch (MigrationError const&) {
    return std::nullopt;  // Flyway skips invalid names unless validateMigrationNaming is set
  }
  return name;
}

bool resolves_before(MigrationFile const& a, MigrationFile const& b) {
  int group_a = group_of(a.kind), group_b = group_of(b.kind);
  if (group_a != group_b) return group_a < group_b;
  if (group_a == 1) return utf16_less(a.description, b.description);
  if (auto order = *a.version <=> *b.version; order != 0) return order < 0;
  // A baseline migration stands in for the versioned migrations up to its own version, so
  // `B5` and `V5` may coexist.
  return a.kind == MigrationKind::baseline && b.kind == MigrationKind::versioned;
}

std::vector<MigrationFile> discover_migrations(fs::path const& root, Config const& config) {
  std::vector<MigrationFile> migrations;
  std::set<fs::path> conf_files;  // noted while listing, so no migration costs an extra stat
  std::error_code error;
  fs::recursive_directory_iterator entries(root, error);
  if (error) throw MigrationError("cannot read migrations directory " + root.string() + ": " + error.message());
  for (auto end = fs::recursive_directory_iterator(); entries != end; entries.increment(error)) {
    if (error) break;
    if (!entries->is_regular_file(error)) continue;
    auto const& path = entries->path();
    if (path.extension() == ".conf") conf_files.insert(path);
    auto name = parse_migration_name(path.filename().string(), config);
    if (!name) continue;
    migrations.push_back({name->kind,
                          std::move(name->version),
                          std::move(name->description),
                          path.lexically_relative(root).generic_string(),
                          path,
                          {}});
  }
  if (error) throw MigrationError("cannot read migrations directory " + root.string() + ": " + error.message());
  for (auto& migration : migrations) {
    auto conf_path = fs::path(migration.path.string() + ".conf");
    if (conf_files.contains(conf_path)) migration.settings = read_script_settings(conf_path);
  }

  // Sort by script first so that the order, and which file a duplicate message names first,
  // does not depend on the order the directory lists its entries in.
  std::sort(migrations.begin(), migrations.end(),
            [](MigrationFile const& a, MigrationFile const& b) { return a.script < b.script; });
  std::stable_sort(migrations.begin(), migrations.end(), resolves_before);

  for (std::size_t idx = 0; idx + 1 < migrations.size(); ++idx) {
    auto const& current = migrations[idx];
    auto const& next = migrations[idx + 1];
    if (resolves_before(current, next) || resolves_before(next, current)) continue;
    std::string offenders = "\nOffenders:\n-> " + current.path.string() + " (" + std::string(current.history_type()) +
                            ")\n-> " + next.path.string() + " (" + std::string(next.history_type()) + ")";
    if (current.version)
      throw MigrationError("Found more than one migration with version " + current.version->to_string() + offenders);
    throw MigrationError("Found more than one repeatable migration with description " + current.description +
                         offenders);
  }
  return migrations;
}

}  // namespace berth::flyway
