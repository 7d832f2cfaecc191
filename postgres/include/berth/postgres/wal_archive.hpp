// The WAL archive on the backup volume: what `berth archive-wal` does when the server's
// archive_command hands it a finished segment. A segment is written to a temporary file, fsync'ed
// and linked into place only under a free name, so a crash leaves either nothing or the whole
// segment, and an archived segment is never overwritten by different content.
#pragma once

#include <filesystem>
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

/// True for the names the server archives: 24 hex digits, optionally followed by ".partial" or by
/// ".XXXXXXXX.backup", and 8 hex digits + ".history".
bool is_wal_file_name(std::string const& name);

}  // namespace berth::postgres
