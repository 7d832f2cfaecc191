// Row counts a snapshot records so that a drill can tell a sound restore from a damaged one.
// Private to the backup module.
//
// Why the counts are comparable at all. A base backup is a physical copy that is consistent as
// of its end point (stop LSN): the restored cluster holds exactly the transactions that committed
// before it. No SQL transaction can read that view while the server runs, so the counts are taken
// in one REPEATABLE READ transaction per database started right after pg_basebackup returns (S1).
// S1 sees everything the restore holds; it differs from it only by transactions that committed in
// the short window between the stop LSN and S1. Whether any did is decided with transaction ids,
// not guessed:
//   - xmin_before, the oldest running xid just before the backup starts: every xid below it had
//     ended before the backup began, so it has the same fate in S1 and in the restore;
//   - for xids from xmin_before up to S1's xmax, the snapshot records the set S1 sees as
//     committed (pg_xact_status, leaving out S1's in-progress list);
//   - the drill computes the same set on the restored cluster (xids from xmin_before up to its
//     own next xid). Equal sets mean S1 and the restore see the same transactions, so every count
//     must match exactly and any difference is damage. Unequal sets mean writes landed in the
//     window; counts may then differ legitimately and the drill reports differences as warnings.
// A busy cluster (more than max_tracked_xids in the range) records no set: counts are warnings.
// Independently of the counts, the drill reads every row of every table (heap and TOAST, with
// data checksums on), so a damaged page fails the drill either way. Unlogged tables are not in a
// base backup's data and are left out; so are templates and databases closed to connections.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "berth/backup/snapshot.hpp"

namespace berth::backup::detail {

/// Ranges of transaction ids wider than this are not tracked (counts then only warn).
constexpr std::uint64_t max_tracked_xids = 100000;

/// A libpq connection string to `database` on `source` (holds the password: never log it).
/// Throws Error when the password file cannot be read.
std::string connection_string(DatabaseSource const& source, std::string const& database);

/// The oldest transaction id running on the cluster now (its next xid when none runs).
/// Throws on a connection or query failure.
std::uint64_t oldest_running_xid(std::string const& conninfo);

/// The counts of every permanent user table of every database that accepts connections
/// (templates left out), each database in its own REPEATABLE READ transaction, with the
/// committed-xid set described above: {"xmin_before": N, "databases": {name: {"snapshot": ...,
/// "committed_xids": [...] or null, "tables": {"schema.table": rows}}}}. Throws on failure.
nlohmann::json count_rows(DatabaseSource const& source, std::uint64_t xmin_before);

/// Name of a table for SQL: "schema"."table", each part quoted.
std::string quoted_table(std::string const& schema, std::string const& table);

/// The query listing permanent user tables (columns: schema, table), ordered.
extern char const* const user_tables_query;

}  // namespace berth::backup::detail
