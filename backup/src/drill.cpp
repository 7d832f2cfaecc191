// Restore drills (see drill.hpp). The throwaway server runs with no archiving (its WAL must never
// reach the real archive) and no autovacuum (nothing but the drill assigns transaction ids, which
// keeps the committed-xid comparison of row_counts.hpp exact).
#include "berth/backup/drill.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <set>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "berth/backup/snapshot.hpp"
#include "berth/core/file_lock.hpp"
#include "berth/core/human.hpp"
#include "berth/core/log.hpp"
#include "berth/postgres/cluster.hpp"
#include "berth/registry/maintenance.hpp"
#include "io.hpp"
#include "row_counts.hpp"
#include "snapshot_layout.hpp"

namespace berth::backup {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::system_clock;

namespace {

std::string one_line(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  for (auto& c : text)
    if (c == '\n') c = ' ';
  return text;
}

// Transaction ids from `from` up to the cluster's next one that committed, or nullopt when the
// range is too wide to list.
std::optional<std::set<std::uint64_t>> committed_since(pqxx::nontransaction& query, std::uint64_t from) {
  auto const next =
      query.exec("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")[0][0].as<std::uint64_t>();
  if (next < from || next - from > detail::max_tracked_xids) return std::nullopt;
  std::set<std::uint64_t> committed;
  for (auto const& row :
       query.exec("SELECT g FROM generate_series(" + std::to_string(from) + "::bigint, " + std::to_string(next) +
                  "::bigint - 1) g WHERE pg_xact_status(g::text::xid8) = 'committed'"))
    committed.insert(row[0].as<std::uint64_t>());
  return committed;
}

// Opens every database of the restored cluster, reads every table fully and compares the counts
// with the manifest's.
void check_databases(postgres::Cluster& cluster, json const& counts, DrillResult& result,
                     ProgressFunction const& tell) {
  std::optional<std::set<std::uint64_t>> restored_committed;
  std::vector<std::string> names;
  {
    pqxx::connection connection(cluster.connection_string("postgres"));
    pqxx::nontransaction query(connection);
    // First, before the drill itself assigns any transaction id.
    if (counts.contains("xmin_before"))
      restored_committed = committed_since(query, counts.at("xmin_before").get<std::uint64_t>());
    for (auto const& row :
         query.exec("SELECT datname, datallowconn FROM pg_database WHERE NOT datistemplate ORDER BY 1")) {
      names.push_back(row[0].as<std::string>());
      // A database closed after failed migrations still has to be readable: open it on this copy.
      if (!row[1].as<bool>())
        query.exec("ALTER DATABASE " + query.quote_name(names.back()) + " ALLOW_CONNECTIONS true");
    }
  }
  json const recorded = counts.value("databases", json::object());
  bool all_exact = restored_committed.has_value() && !recorded.empty();
  auto const exact_for = [&](json const& database) {
    if (!restored_committed || !database.contains("committed_xids") || database.at("committed_xids").is_null())
      return false;
    auto const listed = database.at("committed_xids").get<std::vector<std::uint64_t>>();
    return std::set<std::uint64_t>(listed.begin(), listed.end()) == *restored_committed;
  };
  // A difference is damage when the counts are provably comparable, a warning otherwise.
  auto const report = [&](bool exact, std::string const& message) {
    (exact ? result.failures : result.warnings).push_back(message);
  };

  std::set<std::string> const present(names.begin(), names.end());
  for (auto const& [name, database] : recorded.items()) {
    if (!present.count(name)) {
      bool const exact = exact_for(database);
      all_exact = all_exact && exact;
      report(exact, "database " + name + " is in the snapshot's counts but not in the restored cluster");
    }
  }
  for (auto const& name : names) {
    ++result.databases;
    json const database = recorded.value(name, json());
    bool const exact = !database.is_null() && exact_for(database);
    if (database.is_null()) {
      result.warnings.push_back("database " + name +
                                " has no recorded counts (it was closed or made after the snapshot)");
    }
    all_exact = all_exact && exact;
    json expected = database.is_null() ? json::object() : database.value("tables", json::object());
    try {
      pqxx::connection connection(cluster.connection_string(name));
      pqxx::nontransaction query(connection);
      // Read the heap itself (checksums are verified on every page read), not an index.
      query.exec("SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off");
      for (auto const& row : query.exec(detail::user_tables_query)) {
        auto const schema = row[0].as<std::string>();
        auto const table = row[1].as<std::string>();
        auto const label = schema + "." + table;
        ++result.tables;
        tell({"tables", result.tables, 0, 0});
        std::uint64_t rows = 0;
        try {
          // Casting each row to text detoasts every value: TOAST pages are read and checked too.
          rows = query
                     .exec("SELECT count(*) FROM " + detail::quoted_table(schema, table) +
                           " AS r WHERE length(r::text) >= 0")[0][0]
                     .as<std::uint64_t>();
        } catch (std::exception const& e) {
          result.failures.push_back("database " + name + ": table " + label + " cannot be read: " + one_line(e.what()));
          expected.erase(label);
          continue;
        }
        result.rows += rows;
        if (database.is_null()) continue;
        if (!expected.contains(label)) {
          report(exact, "database " + name + ": table " + label + " is not in the snapshot's counts");
          continue;
        }
        auto const recorded_rows = expected.at(label).get<std::uint64_t>();
        if (rows != recorded_rows)
          report(exact, "database " + name + ": table " + label + " has " + std::to_string(rows) +
                            " rows, the snapshot recorded " + std::to_string(recorded_rows));
        expected.erase(label);
      }
    } catch (std::exception const& e) {
      result.failures.push_back("database " + name + " cannot be opened: " + one_line(e.what()));
      continue;
    }
    for (auto const& [label, rows] : expected.items())
      report(exact,
             "database " + name + ": table " + label + " is missing (the snapshot recorded " + rows.dump() + " rows)");
  }
  result.counts_exact = all_exact;
}

json to_json(DrillResult const& result) {
  return {{"snapshot", result.snapshot_id},      {"started", result.started},     {"ok", result.ok},
          {"seconds", result.seconds},           {"failures", result.failures},   {"warnings", result.warnings},
          {"databases", result.databases},       {"tables", result.tables},       {"rows", result.rows},
          {"counts_exact", result.counts_exact}, {"manifests", result.manifests}, {"blobs", result.blobs}};
}

void append_durably(fs::path const& file, std::string const& line) {
  bool const created = !fs::exists(file);
  int const fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) throw Error(detail::errno_message("cannot open " + file.string()));
  std::size_t written = 0;
  while (written < line.size()) {
    auto const n = ::write(fd, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto const message = detail::errno_message("cannot append to " + file.string());
      ::close(fd);
      throw Error(message);
    }
    written += static_cast<std::size_t>(n);
  }
  int const rc = ::fsync(fd);
  auto const message = detail::errno_message("cannot fsync " + file.string());
  ::close(fd);
  if (rc != 0) throw Error(message);
  if (created) detail::fsync_path(file.parent_path());
}

// Removes a folder when the drill ends, however it ends.
struct RemovedAtEnd {
  fs::path path;
  ~RemovedAtEnd() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
    if (ec) logger("backup")->error("cannot remove drill scratch {}: {}", path.string(), ec.message());
  }
};

}  // namespace

DrillResult drill_snapshot(Config const& config, std::string const& id, DrillOptions const& options) {
  auto const log = logger("backup");
  auto const began = std::chrono::steady_clock::now();
  ProgressFunction const tell = [&](Progress const& state) {
    if (options.progress) options.progress(state);
  };
  DrillResult result;
  result.snapshot_id = id;
  result.started = utc_time(std::chrono::system_clock::now());
  auto const manifest = detail::read_manifest(config, id);
  FileLock lock(config.volume / ".lock");
  if (!lock.locked())
    throw Busy("another backup job holds " + (config.volume / ".lock").string() +
               "\nHINT: wait for it to finish, then run the drill again");
  detail::VolumeOwner(config.volume).give(config.volume / ".lock");

  auto const scratch_root = options.scratch.empty() ? config.volume : options.scratch;
  fs::create_directories(scratch_root);
  // A killed drill leaves its scratch copy: we hold the lock, so any one found now is stale.
  // The service user cannot remove what a drill run as root left: that costs disk space, not
  // the drill, which goes on in a folder of its own.
  std::error_code ec;
  for (auto const& entry : fs::directory_iterator(scratch_root, ec)) {
    if (entry.path().filename().string().rfind(".drill-", 0) != 0) continue;
    std::error_code removal;
    fs::remove_all(entry.path(), removal);
    if (!removal) continue;
    result.warnings.push_back("the stale drill folder " + entry.path().string() +
                              " (left by a killed drill) cannot be removed: " + removal.message() +
                              "; HINT: remove it as its owner: sudo rm -rf " + entry.path().string());
    log->warn("stale drill folder not removed path={} error=\"{}\"", entry.path().string(), removal.message());
  }
  auto const scratch = scratch_root / (".drill-" + id + "-" + std::to_string(::getpid()));
  RemovedAtEnd scratch_removal{scratch};
  RemovedAtEnd socket_removal;
  log->info("drill started id={} scratch={}", id, scratch.string());
  try {
    fs::create_directories(scratch);
    // The server's OS user (when berth is root) must pass through to its data directory.
    fs::permissions(scratch, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    bool restored = false;
    tell({"restore", 0, 0, 0});
    try {
      restore_snapshot(config, id, scratch, false, options.postgres_os_user);
      restored = true;
    } catch (std::exception const& e) {
      result.failures.push_back("restore failed: " + one_line(e.what()));
    }
    if (restored && manifest.contains("postgres")) {
      if (!fs::exists(scratch / "postgres" / "PG_VERSION")) {
        result.failures.push_back("the restored PostgreSQL data directory has no PG_VERSION");
      } else {
        postgres::Config server;
        server.data_dir = scratch / "postgres";
        server.secrets_dir = scratch / "secrets";
        server.socket_dir = scratch / "run";
        // A socket path longer than sockaddr_un allows gets a short private folder instead.
        if ((fs::absolute(server.socket_dir) / ".s.PGSQL.5432").string().size() >= sizeof(sockaddr_un{}.sun_path)) {
          char name[] = "/tmp/berth-drill-XXXXXX";
          if (::mkdtemp(name) == nullptr) throw Error(detail::errno_message("cannot make a socket folder in /tmp"));
          server.socket_dir = name;
          socket_removal.path = name;
        }
        server.os_user = options.postgres_os_user;
        server.bin_dir = options.postgres_bin_dir;
        server.settings = {{"autovacuum", "off"}};
        server.start_timeout = std::chrono::seconds(120);  // recovery replays the WAL the backup fetched
        tell({"postgres", 0, 0, 0});
        try {
          postgres::Cluster cluster(server);
          cluster.start();
          cluster.wait_ready();
          check_databases(cluster, manifest.at("postgres").value("counts", json::object()), result, tell);
        } catch (std::exception const& e) {
          result.failures.push_back("the restored PostgreSQL cluster cannot be started: " + one_line(e.what()));
        }
      }
    }
    if (restored) {
      registry::Config registry_config;
      registry_config.root = scratch / "registry";
      registry::Storage storage(registry_config);
      Progress checked{"registry fsck", 0, manifest.at("blobs").size(), 0};
      auto const report = registry::fsck(storage, [&](registry::Digest const&, std::uint64_t bytes) {
        ++checked.done;
        checked.bytes += bytes;
        tell(checked);
      });
      result.manifests = report.manifests_checked;
      result.blobs = report.blobs_checked;
      for (auto const& problem : report.problems) result.failures.push_back("registry: " + problem);
    }
  } catch (std::exception const& e) {
    result.failures.push_back(one_line(e.what()));
  }
  result.ok = result.failures.empty();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  append_durably(config.volume / "drills.jsonl", to_json(result).dump() + "\n");
  // Run as root on a volume the service user owns, the log stays writable for the weekly timer.
  detail::VolumeOwner(config.volume).give(config.volume / "drills.jsonl");
  if (result.ok)
    log->info("drill passed id={} databases={} tables={} rows={} manifests={} blobs={} warnings={} seconds={:.1f}", id,
              result.databases, result.tables, result.rows, result.manifests, result.blobs, result.warnings.size(),
              result.seconds);
  else
    log->error("drill failed id={} problems={} first={}", id, result.failures.size(), result.failures.front());
  return result;
}

std::optional<DrillResult> last_drill(Config const& config) {
  auto const file = config.volume / "drills.jsonl";
  if (!fs::exists(file)) return std::nullopt;
  auto const text = detail::read_text(file);
  auto end = text.find_last_not_of('\n');
  if (end == std::string::npos) return std::nullopt;
  auto const begin = text.rfind('\n', end);
  auto const line =
      text.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin == std::string::npos ? 0 : begin + 1));
  try {
    auto const record = json::parse(line);
    DrillResult result;
    result.snapshot_id = record.at("snapshot");
    result.started = record.at("started");
    result.ok = record.at("ok");
    result.seconds = record.at("seconds");
    result.failures = record.at("failures").get<std::vector<std::string>>();
    result.warnings = record.at("warnings").get<std::vector<std::string>>();
    result.databases = record.value("databases", 0u);
    result.tables = record.value("tables", 0u);
    result.rows = record.value("rows", std::uint64_t{0});
    result.counts_exact = record.value("counts_exact", false);
    result.manifests = record.value("manifests", 0u);
    result.blobs = record.value("blobs", 0u);
    return result;
  } catch (json::exception const& e) {
    throw Error("cannot read the last drill in " + file.string() + ": " + e.what());
  }
}

}  // namespace berth::backup
