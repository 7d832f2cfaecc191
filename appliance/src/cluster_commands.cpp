#include "cluster_commands.hpp"

#include <sys/statvfs.h>

#include <cstdio>
#include <ctime>
#include <iostream>

#include <nlohmann/json.hpp>

#include "applications.hpp"
#include "berth/backup/drill.hpp"
#include "berth/backup/snapshot.hpp"
#include "berth/core/human.hpp"
#include "berth/core/version.hpp"
#include "berth/postgres/databases.hpp"
#include "berth/postgres/status.hpp"
#include "berth/postgres/wal_archive.hpp"
#include "berth/proxy/routes.hpp"
#include "berth/registry/gc.hpp"
#include "berth/registry/maintenance.hpp"
#include "volume_identity.hpp"
#include "volume_lock.hpp"

namespace berth::appliance {

namespace fs = std::filesystem;

namespace {

std::string free_space(fs::path const& path) {
  struct statvfs vfs {};
  if (::statvfs(path.c_str(), &vfs) != 0) return "unavailable";
  auto const free = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  auto const total = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  return human_size(free) + " free of " + human_size(total);
}

// The URL with its password replaced by ****: fit for a terminal and its scrollback.
std::string without_password(std::string url) {
  auto const scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  auto const at = url.find('@', scheme_end);
  auto const colon = url.find(':', scheme_end + 3);
  if (at != std::string::npos && colon < at) url.replace(colon + 1, at - colon - 1, "****");
  return url;
}

}  // namespace

int db_create(Config const& config, CreateOptions const& options, std::ostream& out) {
  auto database = application_database(config, options.name);
  if (!options.owner.empty()) database.owner = options.owner;
  for (auto const& extension : options.extensions)
    if (std::find(database.extensions.begin(), database.extensions.end(), extension) == database.extensions.end())
      database.extensions.push_back(extension);
  with_cluster(config, [&](postgres::Cluster& cluster) {
    auto const changes = postgres::converge(cluster.connection_string(), {database}, config.postgres.secrets_dir);
    for (auto const& change : changes) out << change << "\n";
    if (changes.empty()) out << "database " << database.name << " already exists; nothing changed\n";
  });
  if (find_application(config, options.name) == nullptr)
    out << "HINT: declare it under databases: in the config so that berth serve keeps it converged\n";
  out << "connection URL: "
      << without_password(postgres::connection_url(config.postgres, database.name, database.owner_role()))
      << "\n(`berth db url " << database.name << "` prints it with the password, for the app's configuration)\n";
  return 0;
}

int db_list(Config const& config, bool json, std::ostream& out) {
  with_cluster(config, [&](postgres::Cluster& cluster) {
    auto const databases = postgres::list_databases(cluster.connection_string());
    if (json) {
      auto list = nlohmann::ordered_json::array();
      for (auto const& database : databases)
        list.push_back({{"name", database.name},
                        {"owner", database.owner},
                        {"size_bytes", database.size_bytes},
                        {"connections", database.connections},
                        {"connection_limit", database.connection_limit},  // -1: no limit
                        {"declared", find_application(config, database.name) != nullptr},
                        {"open", database.allows_connections}});
      out << list.dump(2) << "\n";
      return;
    }
    char line[512];
    std::snprintf(line, sizeof line, "%-24s %-20s %10s %11s %6s %-8s %s\n", "NAME", "OWNER", "SIZE", "CONNECTIONS",
                  "LIMIT", "DECLARED", "STATE");
    out << line;
    for (auto const& database : databases) {
      auto const* app = find_application(config, database.name);
      std::snprintf(line, sizeof line, "%-24s %-20s %10s %11d %6s %-8s %s\n", database.name.c_str(),
                    database.owner.c_str(), human_size(static_cast<std::uint64_t>(database.size_bytes)).c_str(),
                    database.connections,
                    database.connection_limit < 0 ? "-" : std::to_string(database.connection_limit).c_str(),
                    app ? "yes" : "no", database.allows_connections ? "open" : "closed (migrations failed)");
      out << line;
    }
    for (auto const& app : config.databases)
      if (std::none_of(databases.begin(), databases.end(),
                       [&](auto const& database) { return database.name == app.database.name; }))
        out << app.database.name << ": declared but not created yet (berth serve or berth db create creates it)\n";
  });
  return 0;
}

int db_url(Config const& config, std::string const& name, std::ostream& out) {
  auto const database = application_database(config, name);
  out << postgres::connection_url(config.postgres, database.name, database.owner_role()) << "\n";
  return 0;
}

namespace {

// The newest `berth backup drill` result, and how long ago it started.
std::string describe_last_drill(Config const& config) {
  try {
    auto const drill = backup::last_drill(config.snapshots);
    if (!drill) return "none (berth backup drill)";
    std::tm when{};
    std::string text = "snapshot " + drill->snapshot_id + ", " + (drill->ok ? "ok" : "FAILED");
    if (!drill->ok && !drill->failures.empty()) text += " (" + drill->failures.front() + ")";
    if (::strptime(drill->started.c_str(), "%Y-%m-%dT%H:%M:%SZ", &when) != nullptr) {
      auto const age = std::time(nullptr) - ::timegm(&when);
      text += ", " + human_age(age) + " ago";
    }
    return text + ", took " + human_age(static_cast<std::int64_t>(drill->seconds + 0.5));
  } catch (std::exception const& error) {
    return std::string("unknown: ") + error.what();
  }
}

// The newest garbage collection and the namespaces' usage against their quotas.
void describe_registry(Config const& config, std::ostream& out) {
  try {
    if (!std::filesystem::is_directory(config.registry.root)) return;
    registry::Storage storage(config.registry);
    auto const gc = registry::last_gc(storage);
    out << "last gc: ";
    if (!gc) {
      out << "none yet (berth registry gc";
      if (config.registry.gc.interval.count() > 0)
        out << ", or every " << human_age(config.registry.gc.interval.count());
      out << ")\n";
    } else {
      auto const age =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - gc->finished);
      out << human_age(age.count()) << " ago, reclaimed " << human_size(gc->report.bytes_reclaimed) << " ("
          << gc->report.manifests_deleted << " manifests, " << gc->report.blobs_deleted << " blobs), took "
          << human_age(static_cast<std::int64_t>(gc->report.seconds + 0.5)) << "\n";
    }
    std::string usage_text;
    for (auto const& usage : registry::namespace_usage(storage)) {
      usage_text += (usage_text.empty() ? "" : ", ") + usage.name + "/ " + human_size(usage.bytes);
      if (usage.quota)
        usage_text += " of " + human_size(*usage.quota) + " (" +
                      std::to_string(*usage.quota ? usage.bytes * 100 / *usage.quota : 100) + "%)";
    }
    out << "registry usage: " << usage_text << "\n";
  } catch (std::exception const& error) {
    out << "registry: unreadable: " << error.what() << "\n";
  }
}

}  // namespace

int status(Config const& config, std::ostream& out) {
  out << "berth " << berth::version << "\n";
  out << "primary volume: " << config.primary.string() << " (" << free_space(config.primary) << ")\n";
  out << "backup volume:  " << config.backup.string() << " (" << free_space(config.backup) << ")\n";
  if (backup_volume_is_foreign(config.primary, config.backup))
    out << "backup volume:  NOT THIS VOLUME'S: " << foreign_backup_volume_problem(config.primary, config.backup) << "\n";
  try {
    auto const snapshots = backup::list_snapshots(config.snapshots);
    if (snapshots.empty())
      out << "newest snapshot: none yet (berth backup run)\n";
    else
      out << "newest snapshot: " << snapshots.back().id << ", finished " << snapshots.back().finished << " ("
          << snapshots.size() << (snapshots.size() == 1 ? " snapshot" : " snapshots") << " on the backup volume)\n";
  } catch (std::exception const& error) {
    out << "newest snapshot: unreadable: " << error.what() << "\n";
  }
  out << "last drill: " << describe_last_drill(config) << "\n";
  describe_registry(config, out);
  auto const pid = VolumeLock::holder(config.primary / "run" / "berth.lock");
  if (!pid) {
    out << "service: not running\n";
    return 3;
  }
  out << "service: running, pid " << *pid << ", listening on " << config.server.host << ":" << config.server.port
      << "\n";
  for (auto const& route : config.server.routes) {
    auto const problem = proxy::probe_upstream(route, std::chrono::seconds(2));
    out << "route " << route.host << route.path_prefix << " -> " << route.upstream_url() << ": "
        << (problem ? "DOWN (" + *problem + ")" : std::string("up")) << "\n";
  }
  if (!config.postgres_enabled) {
    out << "postgres: disabled\n";
    return 0;
  }
  try {
    postgres::Cluster cluster(config.postgres);
    auto const superuser = cluster.connection_string();
    auto const server = postgres::server_status(superuser);
    out << "postgres: running, PostgreSQL " << server.version << ", up " << human_age(server.uptime_seconds) << "\n";
    if (config.postgres.wal_archive_dir.empty()) {
      out << "wal archive: off\n";
    } else if (server.last_archived_wal) {
      out << "wal archive: " << config.postgres.wal_archive_dir.string() << ", last segment "
          << *server.last_archived_wal << ", " << human_age(server.last_archived_age_seconds) << " ago\n";
    } else {
      out << "wal archive: " << config.postgres.wal_archive_dir.string() << ", nothing archived yet\n";
    }
    if (auto const failing = postgres::read_archive_failure(postgres::archive_failure_file(config.postgres.socket_dir)))
      out << "wal archive: " << postgres::describe(*failing) << "\n";
    else if (server.archive_failures > 0)
      out << "wal archive: working; " << server.archive_failures << " failed attempts earlier, the last on "
          << server.last_failed_wal.value_or("?") << "\n";
    for (auto const& database : postgres::list_databases(superuser))
      out << "database " << database.name << ": " << human_size(static_cast<std::uint64_t>(database.size_bytes)) << ", "
          << database.connections << " connections"
          << (database.allows_connections ? "" : ", CLOSED (migrations failed)") << "\n";
  } catch (std::exception const& error) {
    out << "postgres: not answering: " << error.what() << "\n";
    return 1;
  }
  return 0;
}

int archive_wal(std::string const& archive_dir, std::string const& state, std::string const& path,
                std::string const& name) {
  try {
    postgres::archive_wal_file(path, name, archive_dir);
    if (!state.empty()) postgres::clear_archive_failure(state);
    return 0;
  } catch (std::exception const& error) {
    if (!state.empty()) postgres::record_archive_failure(state, name, error.what());
    std::cerr << "berth archive-wal: " << error.what() << "\n";
    return 1;
  }
}

}  // namespace berth::appliance
