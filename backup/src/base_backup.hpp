// The PostgreSQL part of a snapshot: pg_basebackup over the Unix socket, written as one
// compressed tar (WAL fetched into it, so it restores on its own). Private to the backup module.
#pragma once

#include <filesystem>
#include <string>

#include "berth/backup/snapshot.hpp"

namespace berth::backup::detail {

struct BaseBackup {
  std::string file;       ///< the archive's name in the folder: postgres.tar.zst, or .tar.gz before 15
  std::string version;    ///< server version of pg_basebackup's installation, "15.6"
  std::string start_lsn;  ///< "0/2000028"
  std::string stop_lsn;
  std::string timeline;
  std::string start_wal;  ///< the first WAL segment the backup needs
};

/// Runs pg_basebackup -D - -Ft -X fetch into a file in `folder`, compressed with zstd level 1
/// (PostgreSQL 15 and later; gzip before), and fsyncs it. The password goes through PGPASSWORD in
/// the child's environment only. Throws Error with pg_basebackup's output when it fails.
BaseBackup take_base_backup(DatabaseSource const& source, std::filesystem::path const& folder);

}  // namespace berth::backup::detail
