// The application databases on berth's own cluster: what `berth serve` makes sure of at start
// (every declared database exists; migrate_on_start migrations are applied), and how the `db`
// commands reach the cluster whether or not the service is running.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "berth/appliance/config.hpp"
#include "berth/postgres/cluster.hpp"
#include "db_commands.hpp"

namespace berth::appliance {

/// Runs `job` against the cluster of config's primary volume: the service's own when `berth
/// serve` holds the volume, otherwise one this process starts (creating it on a new volume) and
/// stops after the job, holding the volume lock meanwhile. Throws Error when PostgreSQL is
/// disabled in the config or the cluster cannot be reached, and what `job` throws.
void with_cluster(Config const& config, std::function<void(postgres::Cluster&)> const& job);

/// Converges the declared databases, then applies the migrations of each migrate_on_start
/// database as its owner. A database whose migrations fail is closed to new connections and
/// logged with the reason; the others are served. Returns the names of closed databases.
/// Throws Error when convergence fails (nothing of a bad declaration is created).
std::vector<std::string> prepare_applications(Config const& config, postgres::Cluster& cluster);

/// Runs a `berth db` command on application database `app`: the target gets the URL of its owner
/// role on berth's cluster (running it for the command when the service is not running), and its
/// declared migrations folder unless `target.location` is set. With `reopens`, a database closed
/// by failed migrations at start is opened again when `command` returns 0. Throws Error when the
/// folder is needed and none is known.
int run_on_application(Config const& config, std::string const& app, DbTarget target, bool needs_location, bool reopens,
                       std::function<int(DbTarget const&)> const& command);

/// The declared database `name`, or an undeclared one owned by a role of the same name.
postgres::Database application_database(Config const& config, std::string const& name);

}  // namespace berth::appliance
