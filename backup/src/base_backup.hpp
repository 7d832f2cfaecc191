// The PostgreSQL part of a snapshot: pg_basebackup over the Unix socket, written as one gzip'ed
// tar (WAL fetched into it, so it restores on its own). Private to the backup module.
#pragma once

#include <filesystem>
#include <string>

#include "berth/backup/snapshot.hpp"

namespace berth::backup::detail {

struct BaseBackup {
  std::string version;    ///< server version of pg_basebackup's installation, "15.6"
  std::string start_lsn;  ///< "0/2000028"
  std::string stop_lsn;
  std::string timeline;
  std::string start_wal;  ///< the first WAL segment the backup needs
};

/// Runs pg_basebackup -D - -Ft -z -X fetch into `file`. The password goes through PGPASSWORD in
/// the child's environment only. Throws Error with pg_basebackup's output when it fails.
BaseBackup take_base_backup(DatabaseSource const& source, std::filesystem::path const& file);

}  // namespace berth::backup::detail
