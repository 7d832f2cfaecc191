#include "applications.hpp"

#include <algorithm>

#include "berth/core/log.hpp"
#include "berth/flyway/engine.hpp"
#include "berth/postgres/databases.hpp"
#include "volume_lock.hpp"

namespace berth::appliance {

void with_cluster(Config const& config, std::function<void(postgres::Cluster&)> const& job) {
  if (!config.postgres_enabled)
    throw Error("PostgreSQL is disabled in " +
                (config.source.empty() ? std::string("the built-in defaults") : config.source.string()) +
                "\nHINT: set postgres.enabled: true");
  postgres::Cluster cluster(config.postgres);
  auto const lock = VolumeLock::try_acquire(config.primary / "run" / "berth.lock");
  if (!lock) {
    job(cluster);  // the service runs the server; its socket is the way in
    return;
  }
  cluster.start();
  cluster.wait_ready();
  job(cluster);
  cluster.stop();
}

int run_on_application(Config const& config, std::string const& app, DbTarget target, bool needs_location, bool reopens,
                       std::function<int(DbTarget const&)> const& command) {
  auto const database = application_database(config, app);
  if (auto const* declared = find_application(config, app)) {
    target.baseline_on_migrate = target.baseline_on_migrate || declared->baseline_on_migrate;
    if (!target.baseline_version && !declared->baseline_version.empty())
      target.baseline_version = declared->baseline_version;
  }
  if (target.location.empty()) {
    if (auto const* declared = find_application(config, app)) target.location = declared->migrations;
    if (needs_location && target.location.empty())
      throw Error("database " + app + " has no migrations folder" +
                  "\nHINT: set migrations: for it under databases: in the config, or give --location");
  }
  int code = 1;
  with_cluster(config, [&](postgres::Cluster& cluster) {
    auto const superuser = cluster.connection_string();
    auto const databases = postgres::list_databases(superuser);
    // A database that failed its migrations at start is closed (see prepare_applications); the
    // command needs in. It stays open only after a successful migrate.
    bool const closed = std::any_of(databases.begin(), databases.end(), [&](auto const& info) {
      return info.name == database.name && !info.allows_connections;
    });
    if (closed) postgres::allow_connections(superuser, database.name, true);
    target.url = postgres::connection_url(config.postgres, database.name, database.owner_role());
    try {
      code = command(target);
    } catch (...) {
      if (closed) postgres::allow_connections(superuser, database.name, false);
      throw;
    }
    if (closed && (code != 0 || !reopens)) postgres::allow_connections(superuser, database.name, false);
    if (closed && code == 0 && reopens)
      logger("postgres")->info("database {} reopened after a successful migrate", database.name);
  });
  return code;
}

postgres::Database application_database(Config const& config, std::string const& name) {
  if (auto const* app = find_application(config, name)) return app->database;
  postgres::check_identifier("database", name);
  return postgres::Database{.name = name};
}

std::vector<std::string> prepare_applications(Config const& config, postgres::Cluster& cluster) {
  auto log = logger("postgres");
  std::vector<postgres::Database> databases;
  for (auto const& app : config.databases) databases.push_back(app.database);
  postgres::converge(cluster.connection_string(), databases, config.postgres.secrets_dir);

  std::vector<std::string> closed;
  for (auto const& app : config.databases) {
    if (!app.migrate_on_start) continue;
    auto const& name = app.database.name;
    try {
      // A database closed by an earlier failed start gets another chance with today's files.
      postgres::allow_connections(cluster.connection_string(), name, true);
      auto flyway_config = config.flyway;
      flyway_config.baseline_on_migrate = flyway_config.baseline_on_migrate || app.baseline_on_migrate;
      if (!app.baseline_version.empty()) flyway_config.baseline_version = app.baseline_version;
      flyway::Engine engine(postgres::connection_url(config.postgres, name, app.database.owner_role()), flyway_config,
                            app.migrations);
      auto const result = engine.migrate();
      log->info("database {} migrated applied={} location={}", name, result.executed.size(), app.migrations.string());
    } catch (std::exception const& error) {
      log->error("database {} is closed: its migrations in {} failed: {}", name, app.migrations.string(), error.what());
      log->error("HINT: fix the migration, then run `berth db migrate {}` (it reopens the database on success)", name);
      try {
        postgres::allow_connections(cluster.connection_string(), name, false);
      } catch (std::exception const& close_error) {
        log->error("{}", close_error.what());
      }
      closed.push_back(name);
    }
  }
  return closed;
}

}  // namespace berth::appliance
