// Flyway's migration checksum (flyway-compat.md §4): CRC-32 over a script's lines without their
// terminators, as the signed 32-bit value stored in `flyway_schema_history.checksum`. Line
// endings, a trailing newline and a UTF-8 BOM never change it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "berth/flyway/config.hpp"
#include "berth/flyway/migration_files.hpp"
#include "berth/flyway/placeholders.hpp"

namespace berth::flyway {

/// The checksum of a script's bytes, which must be UTF-8. Throws MigrationError "Unable to
/// calculate checksum of <name>: ..." for malformed UTF-8. Thread-safe (pure).
std::int32_t checksum_of(std::string_view bytes, std::string_view name);

/// The checksum of several resources (a script plus those it references): CRC-32 over each
/// checksum's 4-byte big-endian form. Thread-safe (pure).
std::int32_t combine_checksums(std::span<std::int32_t const> checksums);

/// A migration's checksum as Flyway stores it, plus the "equivalent" raw-text checksum that
/// repeatables with placeholder replacement also accept.
struct MigrationChecksum {
  std::int32_t checksum;
  std::optional<std::int32_t> equivalent;  ///< set for repeatables whose placeholders were replaced

  /// Whether a history row's stored checksum matches this migration; a NULL matches anything.
  bool matches(std::optional<std::int32_t> stored) const {
    return !stored || *stored == checksum || (equivalent && *stored == *equivalent);
  }
};

/// Reads `migration` and computes its checksum: of the raw file for versioned, baseline and undo
/// migrations; for repeatables with placeholder replacement enabled (Config, overridden by the
/// `.conf`), of the text after replacement with `flyway:filename` set, the raw one being the
/// equivalent. Throws MigrationError when the file cannot be read, is not UTF-8, or uses an
/// unknown placeholder. Thread-safe; reads the filesystem.
MigrationChecksum checksum_migration(MigrationFile const& migration, Config const& config,
                                     Placeholders const& placeholders);

}  // namespace berth::flyway
