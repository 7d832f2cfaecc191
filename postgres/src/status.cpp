#include "berth/postgres/status.hpp"

#include <pqxx/pqxx>

#include "berth/core/error.hpp"

namespace berth::postgres {

ServerStatus server_status(std::string const& superuser) {
  try {
    pqxx::connection connection(superuser);
    pqxx::nontransaction query(connection);
    auto const row = query.exec(
        "SELECT current_setting('server_version'), "
        "extract(epoch FROM now() - pg_postmaster_start_time())::bigint, "
        "last_archived_wal, extract(epoch FROM now() - last_archived_time)::bigint, failed_count, last_failed_wal "
        "FROM pg_stat_archiver")[0];
    ServerStatus status;
    status.version = row[0].as<std::string>();
    status.uptime_seconds = row[1].as<std::int64_t>();
    if (!row[2].is_null()) {
      status.last_archived_wal = row[2].as<std::string>();
      status.last_archived_age_seconds = row[3].as<std::int64_t>();
    }
    status.archive_failures = row[4].as<std::int64_t>();
    if (!row[5].is_null()) status.last_failed_wal = row[5].as<std::string>();
    return status;
  } catch (pqxx::failure const& error) {
    std::string what = error.what();
    what.erase(what.find_last_not_of(" \n") + 1);
    throw Error("cannot query the PostgreSQL server: " + what);
  }
}

}  // namespace berth::postgres
