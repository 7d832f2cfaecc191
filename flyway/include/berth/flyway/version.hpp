// Flyway's migration versions (flyway-compat.md §3): the text stored in the history table and
// the numeric ordering that decides which migration runs first. Not for baselines' "latest" or
// "current" targets, which belong to the commands.
#pragma once

#include <compare>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::flyway {

class MigrationVersion {
public:
  /// Parses a version as written in a file name or in the history table: `_` becomes `.`,
  /// the rest is kept verbatim (`1_1` → `1.1`, `005.0` stays `005.0`). Throws MigrationError
  /// "Version may only contain 0..9 and . (dot). Invalid version: X" for anything but digit
  /// groups separated by single dots. Thread-safe (pure).
  static MigrationVersion parse(std::string_view text);

  /// The text stored in the `version` column.
  std::string const& to_string() const { return text_; }

  /// Numeric, part-wise order with arbitrary-size parts: leading zeros and trailing zero parts
  /// do not count, so `1 == 1.0 == 001` and `1.2.9 < 1.2.10`.
  friend std::strong_ordering operator<=>(MigrationVersion const& a, MigrationVersion const& b);
  friend bool operator==(MigrationVersion const& a, MigrationVersion const& b) { return (a <=> b) == 0; }

private:
  MigrationVersion(std::string text, std::vector<std::string> parts)
      : text_(std::move(text)), parts_(std::move(parts)) {}
  std::string text_;
  std::vector<std::string> parts_;  ///< digits without leading zeros ("0" for zero); no trailing "0" parts
};

}  // namespace berth::flyway
