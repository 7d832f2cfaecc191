// Flyway's `${name}` placeholders (flyway-compat.md §5): the values a script may use and the
// purely textual replacement done before checksumming repeatables and before parsing SQL. The
// database-dependent built-ins (user, database, schema) are looked up by the caller.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "berth/flyway/config.hpp"

namespace berth::flyway {

/// Values of Flyway's `flyway:` built-ins. An unset value makes a script that uses it fail with
/// "Failed to populate value for default placeholder: ${flyway:x}".
struct DefaultPlaceholders {
  std::optional<std::string> default_schema;     ///< flyway:defaultSchema
  std::optional<std::string> user;               ///< flyway:user (`SELECT current_user`)
  std::optional<std::string> database;           ///< flyway:database
  std::optional<std::string> timestamp;          ///< flyway:timestamp, see format_placeholder_timestamp()
  std::optional<std::string> working_directory;  ///< flyway:workingDirectory
  std::optional<std::string> table;              ///< flyway:table
  std::optional<std::string> environment;        ///< flyway:environment
};

/// A set of placeholder values plus the prefix and suffix that mark them. Copyable value type;
/// const member functions may be called from any thread.
class Placeholders {
public:
  /// The user placeholders, prefix and suffix of `config` plus the set `defaults`.
  Placeholders(Config const& config, DefaultPlaceholders const& defaults);

  /// A copy with `flyway:filename` set to `filename` (e.g. "V2__x.sql"), as Flyway does per script.
  Placeholders for_script(std::string_view filename) const;

  /// Replaces every `<prefix>name<suffix>` in `text`, everywhere (comments and string literals
  /// too); names match case-insensitively and an empty value replaces with nothing. Throws
  /// MigrationError "No value provided for placeholder: ${x}.  Check your configuration!" for an
  /// unknown name, or "Failed to populate value for default placeholder: ${flyway:x}" for an
  /// unknown or unset name containing `flyway:`.
  std::string replace(std::string_view text) const;

private:
  std::string prefix_;
  std::string suffix_;
  std::map<std::string, std::string> values_;  ///< keys lower-cased
};

/// Formats `when` in local time as Flyway's `flyway:timestamp` (`yyyy-MM-dd HH:mm:ss`).
std::string format_placeholder_timestamp(std::chrono::system_clock::time_point when);

}  // namespace berth::flyway
