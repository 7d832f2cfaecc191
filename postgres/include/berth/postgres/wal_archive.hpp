// The WAL archive on the backup volume: what `berth archive-wal` does when the server's
// archive_command hands it a finished segment. A segment is written to a temporary file, fsync'ed
// and linked into place only under a free name, so a crash leaves either nothing or the whole
// segment, and an archived segment is never overwritten by different content.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "berth/core/error.hpp"

namespace berth::postgres {

enum class Archived { copied, already_present };

/// Copies `source` (the server's %p, relative to its data directory, which is the archiver's
/// working directory) to `archive_dir`/`name` (%f) durably. Returns already_present when a file of
/// that name holds the same bytes (the server retries after a crash between copy and
/// acknowledgement). Throws Error when `name` is not a WAL file name (segment, .history, .backup or
/// .partial), when the archive already holds different content under that name (the server then
/// keeps the segment and retries; nothing is lost), or on I/O errors such as a full disk.
Archived archive_wal_file(std::filesystem::path const& source, std::string const& name,
                          std::filesystem::path const& archive_dir);

/// While archiving fails, `berth archive-wal --state FILE` keeps a record of it in FILE, and
/// removes it once a segment is archived: what `berth status`, `berth doctor` and /metrics read.
/// FILE lives in the server's socket directory (postgres::Config::socket_dir), which the server's
/// OS user can write and no base backup copies.
struct ArchiveFailure {
  std::string since;  ///< UTC, ISO 8601: the first failure of this run of failures
  std::string last;   ///< UTC, ISO 8601
  std::uint64_t attempts = 0;
  std::string wal;     ///< the segment that failed last
  std::string reason;  ///< the error, on one line
};

std::filesystem::path archive_failure_file(std::filesystem::path const& socket_dir);

/// "WAL archiving failing since T: reason (N attempts, the last at T2, segment S)".
std::string describe(ArchiveFailure const& failure);

/// Records a failed attempt, keeping `since` and counting on from an existing record. Never
/// throws: archiving's own error is what matters to the server.
void record_archive_failure(std::filesystem::path const& file, std::string const& wal, std::string const& reason);
/// Removes the record after a success (a stat when there is none). Never throws.
void clear_archive_failure(std::filesystem::path const& file);
/// The record, or nullopt when archiving does not fail (or the file cannot be read).
std::optional<ArchiveFailure> read_archive_failure(std::filesystem::path const& file);

/// True for the names the server archives: 24 hex digits, optionally followed by ".partial" or by
/// ".XXXXXXXX.backup", and 8 hex digits + ".history".
bool is_wal_file_name(std::string const& name);

}  // namespace berth::postgres
