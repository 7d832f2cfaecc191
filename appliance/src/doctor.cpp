// `berth doctor`: each check is a function adding findings; examine() runs them in the order an
// operator would look. Thresholds are the ones the issue names: 15% free space, 36 hours since
// the last snapshot (a nightly timer that missed a night), 21 days of certificate validity.
#include "doctor.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <tuple>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <nlohmann/json.hpp>

#include "berth/backup/snapshot.hpp"
#include "berth/core/human.hpp"
#include "berth/postgres/cluster.hpp"
#include "berth/postgres/databases.hpp"
#include "berth/postgres/installation.hpp"
#include "berth/postgres/status.hpp"
#include "berth/postgres/wal_archive.hpp"
#include "volume_identity.hpp"
#include "volume_lock.hpp"

namespace berth::appliance {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;
using namespace std::chrono_literals;

constexpr double min_free_fraction = 0.15;
constexpr auto max_snapshot_age = 36h;
constexpr auto max_wal_age = 36h;  // every snapshot's base backup archives a segment
constexpr auto certificate_warning = 24h * 21;

class Report {
public:
  void ok(std::string check, std::string what) {
    findings_.push_back({Severity::ok, std::move(check), std::move(what), {}});
  }
  void warn(std::string check, std::string what, std::string fix) {
    findings_.push_back({Severity::warn, std::move(check), std::move(what), std::move(fix)});
  }
  void error(std::string check, std::string what, std::string fix) {
    findings_.push_back({Severity::error, std::move(check), std::move(what), std::move(fix)});
  }
  std::vector<Finding> take() { return std::move(findings_); }

private:
  std::vector<Finding> findings_;
};

std::optional<struct stat> stat_of(fs::path const& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  return info;
}

std::string user_name(uid_t uid) {
  if (auto const* entry = ::getpwuid(uid)) return entry->pw_name;
  return std::to_string(uid);
}

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::int64_t seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::seconds>(to - from).count();
}

// Both volumes must exist before anything else about them means something.
bool check_volumes(Config const& config, Report& report) {
  bool usable = true;
  for (auto const& [name, path, key] : {std::tuple{"primary", config.primary, "volumes.primary"},
                                        std::tuple{"backup", config.backup, "volumes.backup"}}) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      report.ok("volumes", std::string(name) + " volume " + path.string() + " exists");
      continue;
    }
    usable = false;
    report.error("volumes", std::string(name) + " volume " + path.string() + " is missing",
                 std::string(name) == "backup"
                     ? "mount the backup disk at " + path.string() + " (or set " + key +
                           "), then: install -d -m 0750 -o berth -g berth " + path.string()
                     : "install -d -m 0750 -o berth -g berth " + path.string() + " (or set " + key + ")");
  }
  return usable;
}

// Secrets are 0600 files in 0700 folders, owned by the service user; the volume itself is
// closed to other users. `service_uid` is the primary volume's owner, i.e. who berth runs as.
void check_modes(Config const& config, Report& report) {
  auto const primary = stat_of(config.primary);
  if (!primary) return;
  uid_t const service_uid = primary->st_uid;
  std::string const owner = user_name(service_uid);
  std::size_t problems = 0;
  auto const restrict_mode = [&](fs::path const& path, mode_t forbidden, std::string const& wanted, Severity level) {
    auto const info = stat_of(path);
    if (!info || (info->st_mode & forbidden) == 0) return;
    ++problems;
    std::string what = path.string() + " has mode " + octal(info->st_mode) + ", open to " +
                       ((info->st_mode & forbidden & 0007) ? "every user" : "its group");
    std::string fix = "chmod " + wanted + " " + path.string();
    level == Severity::error ? report.error("modes", what, fix) : report.warn("modes", what, fix);
  };
  auto const owned_by_service = [&](fs::path const& path) {
    auto const info = stat_of(path);
    if (!info || info->st_uid == service_uid) return;
    ++problems;
    report.error("owner",
                 path.string() + " belongs to " + user_name(info->st_uid) + ", but the primary volume to " + owner,
                 "chown -R " + owner + ": " + path.string());
  };

  // Group access to the volume is how operators in group berth read logs; others get nothing.
  restrict_mode(config.primary, S_IROTH | S_IWOTH, "0750", Severity::warn);
  for (auto const* part : {"registry", "secrets", "run"}) owned_by_service(config.primary / part);
  // PostgreSQL runs as another OS user only when berth runs as root.
  if (service_uid != 0) owned_by_service(config.postgres.data_dir);
  restrict_mode(config.postgres.data_dir, S_IRWXO | S_IWGRP, "0700", Severity::error);

  auto const secrets = config.primary / "secrets";
  restrict_mode(secrets, S_IRWXG | S_IRWXO, "0700", Severity::warn);
  std::error_code ec;
  for (auto const& entry : fs::directory_iterator(secrets, ec))
    if (entry.is_regular_file(ec)) restrict_mode(entry.path(), S_IRWXG | S_IRWXO, "0600", Severity::error);

  // The htpasswd file is root:berth 0640 in the package: the group may read, others never. The
  // robots file holds token hashes: the same rule.
  for (auto const& file : {htpasswd_file(config), groups_file(config), robots_file(config)})
    if (file.parent_path() != secrets) restrict_mode(file, S_IRWXO, "o-rwx", Severity::error);
  if (config.server.tls.enabled) {
    if (config.server.tls.private_key.empty()) {
      restrict_mode(config.tls_dir, S_IRWXG | S_IRWXO, "0700", Severity::warn);
      for (auto const* key : {"ca.key", "server.key"})
        restrict_mode(config.tls_dir / key, S_IRWXG | S_IRWXO, "0600", Severity::error);
    } else {
      restrict_mode(config.server.tls.private_key, S_IRWXO, "0600", Severity::error);
    }
  }
  // Snapshots hold every secret too.
  restrict_mode(config.backup, S_IROTH | S_IWOTH, "0750", Severity::warn);
  if (problems == 0) report.ok("modes", "volumes, secrets and keys are owned by " + owner + " and closed to others");
}

void check_space(Config const& config, Report& report) {
  for (auto const& [name, path] : {std::pair{"primary", config.primary}, std::pair{"backup", config.backup}}) {
    struct statvfs vfs {};
    if (::statvfs(path.c_str(), &vfs) != 0 || vfs.f_blocks == 0) continue;
    auto const free = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    auto const total = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    auto const fraction = static_cast<double>(vfs.f_bavail) / static_cast<double>(vfs.f_blocks);
    std::string what = std::string(name) + " volume " + path.string() + ": " + human_size(free) + " free of " +
                       human_size(total) + " (" + std::to_string(static_cast<int>(fraction * 100)) + "%)";
    if (fraction < min_free_fraction)
      report.warn("space", what + ", under 15%",
                  std::string(name) == "primary"
                      ? "free space: `berth registry gc` after deleting unused tags, or grow the volume"
                      : "free space: `berth backup prune` with smaller backup.keep_* values, or a bigger disk");
    else
      report.ok("space", what);
  }
}

void check_separate_disk(Config const& config, Report& report) {
  auto const primary = stat_of(config.primary);
  auto const backup = stat_of(config.backup);
  if (!primary || !backup) return;
  if (primary->st_dev == backup->st_dev)
    report.warn("backup disk",
                "backup volume " + config.backup.string() + " is on the same filesystem as the primary volume " +
                    config.primary.string() + ": a failing disk takes the snapshots with it",
                "mount a second disk at " + config.backup.string() + " (or point volumes.backup at one)");
  else
    report.ok("backup disk", "backup volume is a separate filesystem from the primary volume");
}

std::optional<Clock::time_point> parse_utc(std::string const& text) {
  std::tm parts{};
  if (!::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &parts)) return std::nullopt;
  return Clock::from_time_t(::timegm(&parts));
}

void check_snapshots(Config const& config, Clock::time_point now, Report& report) {
  std::vector<backup::SnapshotInfo> snapshots;
  try {
    snapshots = backup::list_snapshots(config.snapshots);
  } catch (std::exception const& failure) {
    report.error("snapshot", std::string("cannot list the snapshots: ") + failure.what(),
                 "check the backup volume " + config.backup.string() + " (berth backup verify --all)");
    return;
  }
  auto const take_one = "berth backup run (or systemctl start berth-backup), and keep berth-backup.timer enabled";
  if (snapshots.empty()) {
    report.warn("snapshot", "no snapshot on " + config.backup.string() + " yet", take_one);
    return;
  }
  auto const& newest = snapshots.back();
  auto const finished = parse_utc(newest.finished);
  if (!finished) {
    report.error("snapshot", "snapshot " + newest.id + " has an unreadable finish time \"" + newest.finished + "\"",
                 "berth backup verify " + newest.id);
    return;
  }
  auto const age = seconds_between(*finished, now);
  std::string what = "newest snapshot " + newest.id + " finished " + human_age(age) + " ago";
  if (*finished + max_snapshot_age < now)
    report.warn("snapshot", what + ", over 36h", std::string(take_one) + "; see journalctl -u berth-backup");
  else
    report.ok("snapshot", what);
}

void check_wal_archive(Config const& config, Clock::time_point now, Report& report) {
  if (!config.postgres_enabled || config.postgres.wal_archive_dir.empty()) return;
  auto const dir = config.postgres.wal_archive_dir;
  std::optional<fs::file_time_type> newest;
  std::string newest_name;
  std::error_code ec;
  for (auto const& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    auto const written = entry.last_write_time(ec);
    if (!ec && (!newest || written > *newest)) {
      newest = written;
      newest_name = entry.path().filename().string();
    }
  }
  if (!newest) {
    report.warn("wal archive", "nothing archived in " + dir.string() + " yet",
                "start berth (PostgreSQL archives a segment at least every postgres.archive_timeout when there are "
                "writes, and at every snapshot); `berth status` shows archiver failures");
    return;
  }
  auto const written =
      std::chrono::time_point_cast<Clock::duration>(*newest - fs::file_time_type::clock::now() + Clock::now());
  auto const age = seconds_between(written, now);
  std::string what = "last archived WAL file " + newest_name + " written " + human_age(age) + " ago";
  if (written + max_wal_age < now)
    report.warn("wal archive", what + ", over 36h",
                "check archiving: `berth status` (archiver failures) and journalctl -u berth; a snapshot archives a "
                "segment");
  else
    report.ok("wal archive", what);
}

struct Validity {
  Clock::time_point not_before;
  Clock::time_point not_after;
};

std::optional<Validity> certificate_validity(fs::path const& file) {
  std::unique_ptr<FILE, int (*)(FILE*)> stream(std::fopen(file.c_str(), "r"), &std::fclose);
  if (!stream) return std::nullopt;
  std::unique_ptr<X509, void (*)(X509*)> certificate(PEM_read_X509(stream.get(), nullptr, nullptr, nullptr),
                                                     &X509_free);
  if (!certificate) return std::nullopt;
  std::tm before{}, after{};
  if (ASN1_TIME_to_tm(X509_get0_notBefore(certificate.get()), &before) != 1 ||
      ASN1_TIME_to_tm(X509_get0_notAfter(certificate.get()), &after) != 1)
    return std::nullopt;
  return Validity{Clock::from_time_t(::timegm(&before)), Clock::from_time_t(::timegm(&after))};
}

// The year this binary was built: a clock before it is certainly wrong.
int build_year() {
  std::string_view const date = __DATE__;  // "Nov 27 2026"
  return std::stoi(std::string(date.substr(date.size() - 4)));
}

void check_clock_and_certificates(Config const& config, Clock::time_point now, Report& report) {
  auto const now_t = Clock::to_time_t(now);
  std::tm utc{};
  ::gmtime_r(&now_t, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
  bool clock_ok = true;
  auto const sync_clock = "set the clock: timedatectl set-ntp true (and check timedatectl status)";
  if (utc.tm_year + 1900 < build_year()) {
    clock_ok = false;
    report.error(
        "clock",
        std::string("the clock says ") + stamp + ", before this berth was built (" + std::to_string(build_year()) + ")",
        sync_clock);
  }

  if (!config.server.tls.enabled) {
    report.ok("tls", "TLS is off (server.tls.enabled: false)");
    if (clock_ok) report.ok("clock", std::string("the clock says ") + stamp);
    return;
  }
  bool const own_ca = config.server.tls.cert_chain.empty();
  std::vector<std::pair<std::string, fs::path>> certificates;
  if (own_ca)
    certificates = {{"server certificate", config.tls_dir / "server.crt"},
                    {"CA certificate", config.tls_dir / "ca.crt"}};
  else
    certificates = {{"server certificate", config.server.tls.cert_chain}};
  for (auto const& [name, file] : certificates) {
    std::error_code ec;
    if (!fs::exists(file, ec)) {
      if (own_ca)
        report.warn("tls", name + " " + file.string() + " does not exist yet",
                    "start berth: it makes it on first start");
      else
        report.error("tls", name + " " + file.string() + " does not exist",
                     "put the certificate there, or fix server.tls.cert");
      continue;
    }
    auto const validity = certificate_validity(file);
    if (!validity) {
      report.error("tls", name + " " + file.string() + " is not a readable PEM certificate",
                   own_ca ? "remove it and restart berth, which issues a new one" : "replace it (server.tls.cert)");
      continue;
    }
    auto const renew = own_ca && name == "server certificate"
                           ? std::string("systemctl reload berth (berth renews its own certificate 30 days ahead)")
                       : own_ca ? std::string("a new local CA: move " + config.tls_dir.string() +
                                              " aside, restart berth, and make clients trust the new ca.crt")
                                : std::string("renew it, then systemctl reload berth");
    auto const days_left = seconds_between(now, validity->not_after) / 86400;
    if (validity->not_after <= now)
      report.error(
          "tls",
          name + " " + file.string() + " expired " + human_age(seconds_between(validity->not_after, now)) + " ago",
          renew);
    else if (validity->not_after - now < certificate_warning)
      report.warn("tls", name + " " + file.string() + " expires in " + std::to_string(days_left) + " days", renew);
    else
      report.ok("tls", name + " " + file.string() + " valid for " + std::to_string(days_left) + " more days");
    if (now < validity->not_before) {
      clock_ok = false;
      report.error("clock",
                   std::string("the clock says ") + stamp + ", before " + name + " " + file.string() + " was issued",
                   sync_clock);
    }
  }
  if (clock_ok) report.ok("clock", std::string("the clock says ") + stamp);
}

// The releases the package is built and tested for (README, "Supported systems").
struct OsRelease {
  std::string id, version_id, pretty_name;
};

OsRelease read_os_release() {
  OsRelease os;
  std::ifstream in("/etc/os-release");
  if (!in) in.open("/usr/lib/os-release");
  for (std::string line; std::getline(in, line);) {
    auto const equals = line.find('=');
    if (equals == std::string::npos) continue;
    auto value = line.substr(equals + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    auto const key = line.substr(0, equals);
    if (key == "ID") os.id = value;
    if (key == "VERSION_ID") os.version_id = value;
    if (key == "PRETTY_NAME") os.pretty_name = value;
  }
  return os;
}

void check_platform(Config const& config, Report& report) {
  auto const os = read_os_release();
  auto const name = os.pretty_name.empty() ? std::string("this system (no /etc/os-release)") : os.pretty_name;
  bool const supported = (os.id == "debian" && (os.version_id == "12" || os.version_id == "13")) ||
                         (os.id == "ubuntu" && (os.version_id == "24.04" || os.version_id == "26.04"));
  if (supported)
    report.ok("platform", name + ": supported");
  else
    report.warn("platform", name + " is not a release berth is tested on (Debian 12 or 13, Ubuntu 24.04 or 26.04)",
                "it may work; run `berth backup drill` after the first snapshot to be sure restores work here");
  if (!config.postgres_enabled) return;
  try {
    auto const installation = postgres::find_installation_for(config.postgres.data_dir, config.postgres.bin_dir);
    auto const major = std::atoi(installation.major.c_str());
    auto const what = "PostgreSQL " + installation.version + " (" + installation.bin_dir.string() + ")";
    if (major >= 15 && major <= 18)
      report.ok("platform", what + ": supported (15 to 18)");
    else
      report.warn("platform", what + " is not a major berth is tested with (15 to 18)",
                  "install the distribution's default server: apt-get install postgresql");
  } catch (postgres::InstallationNotFound const& missing) {
    report.error("platform", missing.what(), "apt-get install postgresql");
  }
}

void check_postgres(Config const& config, Report& report) {
  if (!config.postgres_enabled) return;
  auto const pid = VolumeLock::holder(config.primary / "run" / "berth.lock");
  if (!pid) {
    report.warn("postgres", "berth is not running, so neither is its PostgreSQL", "systemctl start berth");
    return;
  }
  try {
    postgres::Cluster cluster(config.postgres);
    auto const server = postgres::server_status(cluster.connection_string());
    report.ok("postgres", "PostgreSQL " + server.version + " answers (berth pid " + std::to_string(*pid) + "), up " +
                              human_age(server.uptime_seconds));
    // migrate_on_start closes a database whose migrations fail, so no app writes to a half-migrated
    // schema: that is an outage of that app until someone acts.
    for (auto const& database : postgres::list_databases(cluster.connection_string()))
      if (!database.allows_connections)
        report.error("databases",
                     "database " + database.name + " is closed to connections: its migrations failed at start",
                     "fix the migration (the log says which and why), then `berth db migrate " + database.name +
                         "`, which reopens it on success");
    if (auto const failing = postgres::read_archive_failure(postgres::archive_failure_file(config.postgres.socket_dir)))
      report.error("wal archive", postgres::describe(*failing),
                   "fix what the reason names (a full or read-only backup volume, its owner); the server "
                   "retries by itself and keeps every segment until it is archived");
    else if (server.archive_failures > 0)
      report.warn("wal archive",
                  "archiving works, after " + std::to_string(server.archive_failures) +
                      " failed attempts earlier (the last on " + server.last_failed_wal.value_or("?") + ")",
                  "journalctl -u berth (archive-wal lines) says why they failed");
  } catch (std::exception const& failure) {
    report.error("postgres",
                 std::string("berth runs (pid ") + std::to_string(*pid) +
                     ") but its PostgreSQL does not answer: " + failure.what(),
                 "journalctl -u berth; systemctl restart berth");
  }
}

char const* level_name(Severity level) {
  switch (level) {
    case Severity::ok: return "ok";
    case Severity::warn: return "warn";
    case Severity::error: return "error";
  }
  return "?";
}

}  // namespace

std::vector<Finding> examine(Config const& config, Clock::time_point now) {
  Report report;
  bool const volumes = check_volumes(config, report);
  check_modes(config, report);
  if (volumes) {
    check_space(config, report);
    check_separate_disk(config, report);
    check_snapshots(config, now, report);
    check_wal_archive(config, now, report);
  }
  check_clock_and_certificates(config, now, report);
  check_platform(config, report);
  if (backup_volume_is_foreign(config.primary, config.backup)) {
    auto const problem = foreign_backup_volume_problem(config.primary, config.backup);
    auto const hint = problem.find("\nHINT: ");
    report.error("backup owner", problem.substr(0, hint), problem.substr(hint + 7));
  }
  check_postgres(config, report);
  return report.take();
}

int doctor(std::function<Config()> const& load, bool json, std::ostream& out) {
  std::vector<Finding> findings;
  std::optional<Config> config;
  try {
    config = load();
  } catch (std::exception const& failure) {
    // Without a configuration nothing else can be checked.
    findings.push_back({Severity::error, "config", failure.what(), "fix the file, then run `berth config check`"});
  }
  if (config) {
    findings.push_back({Severity::ok,
                        "config",
                        config->source.empty() ? "no configuration file: built-in development defaults"
                                               : "configuration " + config->source.string() + " is valid",
                        {}});
    try {
      auto more = examine(*config, Clock::now());
      findings.insert(findings.end(), more.begin(), more.end());
    } catch (std::exception const& failure) {
      findings.push_back({Severity::error, "doctor", std::string("a check failed: ") + failure.what(),
                          "run it again with --log-level debug and report it"});
    }
  }

  std::size_t errors = 0, warnings = 0;
  for (auto const& finding : findings) {
    errors += finding.level == Severity::error;
    warnings += finding.level == Severity::warn;
  }
  if (json) {
    auto list = nlohmann::json::array();
    for (auto const& finding : findings)
      list.push_back({{"level", level_name(finding.level)},
                      {"check", finding.check},
                      {"what", finding.what},
                      {"fix", finding.fix}});
    out << nlohmann::json{{"findings", list}, {"errors", errors}, {"warnings", warnings}}.dump(2) << "\n";
  } else {
    for (auto const& finding : findings) {
      char head[64];
      std::snprintf(head, sizeof head, "%-5s %-12s ", level_name(finding.level), finding.check.c_str());
      out << head << finding.what << "\n";
      if (!finding.fix.empty()) out << std::string(19, ' ') << "fix: " << finding.fix << "\n";
    }
    out << errors << " error(s), " << warnings << " warning(s)\n";
  }
  return errors > 0 ? 1 : 0;
}

}  // namespace berth::appliance
