// What `berth status` reports about the running server: version, uptime and the WAL archiver.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace berth::postgres {

struct ServerStatus {
  std::string version;  ///< server_version, e.g. "15.6 (Debian 15.6-0+deb12u1)"
  std::int64_t uptime_seconds = 0;
  std::optional<std::string> last_archived_wal;  ///< none archived since the statistics were reset
  std::int64_t last_archived_age_seconds = 0;    ///< meaningful with last_archived_wal
  std::int64_t archive_failures = 0;             ///< failed archive_command runs since the last reset
  std::optional<std::string> last_failed_wal;
};

/// Asks the server over `superuser` (a libpq connection string). Throws Error when it cannot.
ServerStatus server_status(std::string const& superuser);

}  // namespace berth::postgres
