// berth.yaml → Config. The schema below is the one place a key is declared (name, form,
// range, doc, where its value goes); the parser only walks the YAML document and hands each
// scalar to the schema. Module defaults are not repeated here: they live in the module config
// structs, and a key's `show` renders whatever value a Config holds, defaults included.
// This file is not where settings are used; it only checks them and fills the structs.
#include "berth/appliance/config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "berth/flyway/version.hpp"
#include "berth/postgres/databases.hpp"
#include "berth/proxy/htpasswd.hpp"
#include "berth/proxy/robots.hpp"
#include "berth/registry/ecr_client.hpp"
#include "berth/registry/names.hpp"

namespace berth::appliance {
namespace {

namespace fs = std::filesystem;
using namespace std::string_view_literals;

enum class Kind {
  choice,    // one word from a fixed list
  path,      // a filesystem path, resolved against the config file's directory
  endpoint,  // HOST:PORT
  integer,   // a whole number in [min, max]
  size,      // bytes, with an optional B/KiB/MiB/GiB/KB/MB/GB suffix, in [min, max]
  duration,  // seconds, written as 90, 30s, 5m, 1h or 1h30m, in [min, max]
  boolean,   // true or false
  names,     // a non-empty list of distinct lowercase names (registry namespaces)
  word,      // a name of letters, digits, _ and - (an OS user), or empty
  custom,    // a list or map with its own reader (Key::read)
  grants,    // the `access:` list of grants (read by DocumentReader::parse_grants)
  hosts,     // a non-empty list of distinct host names or IP addresses
};

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
};

using Value = std::variant<std::string, std::int64_t, fs::path, Endpoint, bool, std::vector<std::string>,
                           std::vector<proxy::Grant>>;

// Where a custom reader is: the document's directory (for relative paths) and a way to report a
// problem at a node, which throws ConfigError with the node's line and column.
std::string describe_node(YAML::Node const& node);  // below, with the other readers

struct NodeContext {
  fs::path base_dir;
  std::function<void(YAML::Node const&, std::string const&)> fail;
  [[noreturn]] void error(YAML::Node const& node, std::string const& problem) const {
    fail(node, problem);
    std::abort();  // fail() always throws
  }
  /// `text`, the scalar of `node` at `where` (e.g. "routes[0].strip_prefix"), as true or false.
  bool boolean(YAML::Node const& node, std::string const& text, std::string const& where) const {
    if (text != "true" && text != "false") error(node, where + ": expected true or false, got " + describe_node(node));
    return text == "true";
  }
};

struct Key {
  std::string_view name;  // dotted path in the YAML document, e.g. "server.listen"
  Kind kind;
  std::int64_t min = 0;  // integer, size and duration only (bytes, seconds)
  std::int64_t max = 0;
  std::span<std::string_view const> choices = {};  // choice only
  std::string_view doc;                            // one line; the packaged berth.yaml says the same at more length
  void (*store)(Config&, Value const&) = nullptr;  // every kind but custom
  std::string (*show)(Config const&);
  void (*read)(Config&, YAML::Node const&, NodeContext const&) = nullptr;  // custom only
};

constexpr std::array<std::string_view, 3> metrics_access{"loopback", "authenticated", "off"};
constexpr std::array<std::string_view, 7> log_levels{"trace", "debug", "info", "warn", "error", "critical", "off"};

constexpr std::int64_t kib = 1024;
constexpr std::int64_t mib = 1024 * kib;
constexpr std::int64_t minute = 60;
constexpr std::int64_t hour = 60 * minute;

std::string format_size(std::int64_t bytes) {
  for (auto [unit, factor] : {std::pair{"GiB"sv, mib * kib}, {"MiB"sv, mib}, {"KiB"sv, kib}}) {
    if (bytes != 0 && bytes % factor == 0) return std::to_string(bytes / factor) + std::string(unit);
  }
  return std::to_string(bytes) + "B";
}

std::string format_duration(std::int64_t seconds) {
  if (seconds == 0) return "0s";
  std::string text;
  if (seconds >= hour) text += std::to_string(seconds / hour) + "h";
  if (seconds % hour >= minute) text += std::to_string(seconds % hour / minute) + "m";
  if (seconds % minute != 0) text += std::to_string(seconds % minute) + "s";
  return text;
}

std::string format_endpoint(std::string const& host, std::uint16_t port) {
  bool const ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::int64_t as_number(Value const& value) {
  return std::get<std::int64_t>(value);
}
std::chrono::seconds as_seconds(Value const& value) {
  return std::chrono::seconds{as_number(value)};
}

// Readers of the custom keys, defined below the scalar parsers they use.
void read_databases(Config& config, YAML::Node const& node, NodeContext const& context);
void read_postgres_listen(Config& config, YAML::Node const& node, NodeContext const& context);
void read_postgres_settings(Config& config, YAML::Node const& node, NodeContext const& context);
void read_routes(Config& config, YAML::Node const& node, NodeContext const& context);
void read_trusted_proxies(Config& config, YAML::Node const& node, NodeContext const& context);
void read_promotion_targets(Config& config, YAML::Node const& node, NodeContext const& context);
void read_registry_quotas(Config& config, YAML::Node const& node, NodeContext const& context);
void read_retention(Config& config, YAML::Node const& node, NodeContext const& context);
void read_immutable_tags(Config& config, YAML::Node const& node, NodeContext const& context);

std::string show_bool(bool value) {
  return value ? "true" : "false";
}

// A list value as `config check` prints it: items separated by commas, `none` when empty.
template <class Items, class Show>
std::string show_list(Items const& items, Show const& show, std::string const& none) {
  std::string text;
  for (auto const& item : items) text += (text.empty() ? "" : ",") + show(item);
  return text.empty() ? none : text;
}

// The schema. Keep it sorted by name; packaging/berth.yaml documents every entry, and
// config_test checks that it does.
std::array<Key, 53> const schema{{
    {.name = "access",
     .kind = Kind::grants,
     .doc = "who may pull, push, delete which repositories, and list the catalog",
     .store = [](Config& c, Value const& v) { c.auth.access = std::get<std::vector<proxy::Grant>>(v); },
     .show = [](Config const& c) { return std::to_string(c.auth.access.size()) + " grants"; }},
    {.name = "auth.groups",
     .kind = Kind::path,
     .doc = "group file (group: user user ...), managed by berth user add --group",
     .store = [](Config& c, Value const& v) { c.auth.groups = std::get<fs::path>(v); },
     .show = [](Config const& c) { return groups_file(c).string(); }},
    {.name = "auth.htpasswd",
     .kind = Kind::path,
     .doc = "htpasswd file of bcrypt users (berth user add, or htpasswd -B); users there turn authentication on",
     .store = [](Config& c, Value const& v) { c.auth.htpasswd = std::get<fs::path>(v); },
     .show = [](Config const& c) { return htpasswd_file(c).string(); }},
    {.name = "auth.robots",
     .kind = Kind::path,
     .doc = "robot accounts file (berth robot add): SHA-256 hashes of robot tokens, read again when it changes",
     .store = [](Config& c, Value const& v) { c.auth.robots = std::get<fs::path>(v); },
     .show = [](Config const& c) { return robots_file(c).string(); }},
    {.name = "auth.token_lifetime",
     .kind = Kind::duration,
     .min = minute,
     .max = hour,
     .doc = "how long a registry bearer token is valid",
     .store = [](Config& c, Value const& v) { c.auth.tokens.token_lifetime = as_seconds(v); },
     .show = [](Config const& c) { return format_duration(c.auth.tokens.token_lifetime.count()); }},
    {.name = "backup.keep_daily",
     .kind = Kind::integer,
     .min = 0,
     .max = 10000,
     .doc = "the newest snapshot of each of the last N days is kept by prune",
     .store = [](Config& c, Value const& v) { c.snapshots.retention.keep_daily = static_cast<unsigned>(as_number(v)); },
     .show = [](Config const& c) { return std::to_string(c.snapshots.retention.keep_daily); }},
    {.name = "backup.keep_last",
     .kind = Kind::integer,
     .min = 0,
     .max = 10000,
     .doc = "the newest N snapshots are kept by prune",
     .store = [](Config& c, Value const& v) { c.snapshots.retention.keep_last = static_cast<unsigned>(as_number(v)); },
     .show = [](Config const& c) { return std::to_string(c.snapshots.retention.keep_last); }},
    {.name = "backup.keep_monthly",
     .kind = Kind::integer,
     .min = 0,
     .max = 10000,
     .doc = "the newest snapshot of each of the last N months is kept by prune",
     .store = [](Config& c,
                 Value const& v) { c.snapshots.retention.keep_monthly = static_cast<unsigned>(as_number(v)); },
     .show = [](Config const& c) { return std::to_string(c.snapshots.retention.keep_monthly); }},
    {.name = "backup.keep_weekly",
     .kind = Kind::integer,
     .min = 0,
     .max = 10000,
     .doc = "the newest snapshot of each of the last N ISO weeks is kept by prune",
     .store = [](Config& c,
                 Value const& v) { c.snapshots.retention.keep_weekly = static_cast<unsigned>(as_number(v)); },
     .show = [](Config const& c) { return std::to_string(c.snapshots.retention.keep_weekly); }},
    {.name = "databases",
     .kind = Kind::custom,
     .doc = "application databases: name, owner, extensions, connection_limit, migrations, migrate_on_start",
     .show =
         [](Config const& c) {
           return show_list(
               c.databases, [](auto const& app) { return app.database.name; }, "none");
         },
     .read = read_databases},
    {.name = "log.access",
     .kind = Kind::boolean,
     .doc = "write one JSON line per HTTP request to the access log (logger \"access\")",
     .store = [](Config& c, Value const& v) { c.server.access_log = std::get<bool>(v); },
     .show = [](Config const& c) { return show_bool(c.server.access_log); }},
    {.name = "log.level",
     .kind = Kind::choice,
     .choices = log_levels,
     .doc = "least severe message written to the log",
     .store = [](Config& c, Value const& v) { c.log_level = std::get<std::string>(v); },
     .show = [](Config const& c) { return c.log_level; }},
    {.name = "postgres.archive_timeout",
     .kind = Kind::duration,
     .min = 0,
     .max = hour,
     .doc = "a WAL segment is archived at least this often while there are writes; 0 turns it off",
     .store = [](Config& c, Value const& v) { c.postgres.archive_timeout = as_seconds(v); },
     .show = [](Config const& c) { return format_duration(c.postgres.archive_timeout.count()); }},
    {.name = "postgres.enabled",
     .kind = Kind::boolean,
     .doc = "run berth's PostgreSQL cluster",
     .store = [](Config& c, Value const& v) { c.postgres_enabled = std::get<bool>(v); },
     .show = [](Config const& c) { return show_bool(c.postgres_enabled); }},
    {.name = "postgres.listen",
     .kind = Kind::custom,
     .doc = "TCP addresses PostgreSQL listens on besides its Unix socket",
     .show =
         [](Config const& c) {
           return show_list(
               c.postgres.listen_addresses, [](auto const& address) { return address; }, "socket only");
         },
     .read = read_postgres_listen},
    {.name = "postgres.os_user",
     .kind = Kind::word,
     .doc = "OS user the server runs as; empty: berth's own user (postgres when berth is root)",
     .store = [](Config& c, Value const& v) { c.postgres.os_user = std::get<std::string>(v); },
     .show = [](Config const& c) { return c.postgres.os_user; }},
    {.name = "postgres.port",
     .kind = Kind::integer,
     .min = 1,
     .max = 65535,
     .doc = "TCP port, which also names the Unix socket file",
     .store = [](Config& c, Value const& v) { c.postgres.port = static_cast<std::uint16_t>(as_number(v)); },
     .show = [](Config const& c) { return std::to_string(c.postgres.port); }},
    {.name = "postgres.settings",
     .kind = Kind::custom,
     .doc = "postgresql.conf parameters over berth's defaults",
     .show =
         [](Config const& c) {
           return show_list(
               c.postgres.settings, [](auto const& setting) { return setting.first + "=" + setting.second; },
               "defaults");
         },
     .read = read_postgres_settings},
    {.name = "postgres.wal_archive",
     .kind = Kind::boolean,
     .doc = "archive WAL segments to <backup volume>/wal for point-in-time recovery",
     .store = [](Config& c, Value const& v) { c.wal_archive = std::get<bool>(v); },
     .show = [](Config const& c) { return show_bool(c.wal_archive); }},
    {.name = "promotion.targets",
     .kind = Kind::custom,
     .doc = "ECR registries `berth promote --to ENV` copies to: registry, region, repository_prefix, create_repository",
     .show =
         [](Config const& c) {
           return show_list(
               c.promotion_targets, [](auto const& target) { return target.name + "=" + target.registry; }, "none");
         },
     .read = read_promotion_targets},
    {.name = "registry.delete_enabled",
     .kind = Kind::boolean,
     .doc = "allow DELETE of manifests, tags and blobs",
     .store = [](Config& c, Value const& v) { c.registry.delete_enabled = std::get<bool>(v); },
     .show = [](Config const& c) { return show_bool(c.registry.delete_enabled); }},
    {.name = "registry.gc.delete_untagged",
     .kind = Kind::boolean,
     .doc = "garbage collection also deletes untagged manifests no tag, index or subject keeps",
     .store = [](Config& c, Value const& v) { c.registry.gc.delete_untagged = std::get<bool>(v); },
     .show = [](Config const& c) { return show_bool(c.registry.gc.delete_untagged); }},
    {.name = "registry.gc.grace_period",
     .kind = Kind::duration,
     .min = minute,
     .max = 30 * 24 * hour,
     .doc = "garbage collection keeps anything pushed or referred to more recently than this",
     .store = [](Config& c, Value const& v) { c.registry.gc.grace_period = as_seconds(v); },
     .show = [](Config const& c) { return format_duration(c.registry.gc.grace_period.count()); }},
    {.name = "registry.gc.interval",
     .kind = Kind::duration,
     .min = 0,
     .max = 30 * 24 * hour,
     .doc = "how often berth serve collects garbage; 0s: never (run berth registry gc)",
     .store = [](Config& c, Value const& v) { c.registry.gc.interval = as_seconds(v); },
     .show = [](Config const& c) { return format_duration(c.registry.gc.interval.count()); }},
    {.name = "registry.immutable_tags",
     .kind = Kind::custom,
     .doc = "tags that may not be overwritten or deleted once pushed: repositories (glob), tags (regexes)",
     .show =
         [](Config const& c) {
           return show_list(
               c.registry.immutable_tags, [](auto const& rule) { return rule.repositories; }, "none");
         },
     .read = read_immutable_tags},
    {.name = "registry.max_manifest_bytes",
     .kind = Kind::size,
     .min = kib,
     .max = 64 * mib,
     .doc = "largest manifest a client may push; larger gets 413",
     .store = [](Config& c,
                 Value const& v) { c.registry.max_manifest_bytes = static_cast<std::uint64_t>(as_number(v)); },
     .show = [](Config const& c) { return format_size(static_cast<std::int64_t>(c.registry.max_manifest_bytes)); }},
    {.name = "registry.namespaces",
     .kind = Kind::names,
     .doc = "top-level namespaces every repository must live under",
     .store = [](Config& c, Value const& v) { c.registry.namespaces = std::get<std::vector<std::string>>(v); },
     .show =
         [](Config const& c) {
           return show_list(
               c.registry.namespaces, [](auto const& name) { return name; }, "");
         }},
    {.name = "registry.quotas",
     .kind = Kind::custom,
     .doc = "bytes of blobs each namespace may hold, e.g. {api: 50GiB}; others are unlimited",
     .show =
         [](Config const& c) {
           return show_list(
               c.registry.quotas,
               [](auto const& quota) {
                 return quota.first + "=" + format_size(static_cast<std::int64_t>(quota.second));
               },
               "none");
         },
     .read = read_registry_quotas},
    {.name = "registry.retention",
     .kind = Kind::custom,
     .doc = "what `berth registry retention` deletes: repositories (glob), keep_last, keep_tags, untagged_after",
     .show =
         [](Config const& c) {
           return show_list(
               c.registry.retention, [](auto const& rule) { return rule.repositories; }, "none");
         },
     .read = read_retention},
    {.name = "registry.scrub.interval",
     .kind = Kind::duration,
     .min = 0,
     .max = 90 * 24 * hour,
     .doc = "how often berth serve rehashes every blob and repairs damage from the backup pool; 0s: never",
     .store = [](Config& c, Value const& v) { c.registry.scrub.interval = as_seconds(v); },
     .show = [](Config const& c) { return format_duration(c.registry.scrub.interval.count()); }},
    {.name = "registry.scrub.rate",
     .kind = Kind::size,
     .min = mib,
     .max = 10 * 1024 * mib,
     .doc = "bytes per second a scrub reads at most",
     .store = [](Config& c,
                 Value const& v) { c.registry.scrub.bytes_per_second = static_cast<std::uint64_t>(as_number(v)); },
     .show = [](Config const& c) { return format_size(static_cast<std::int64_t>(c.registry.scrub.bytes_per_second)); }},
    {.name = "registry.upload_expiry",
     .kind = Kind::duration,
     .min = hour,
     .max = 30 * 24 * hour,
     .doc = "unfinished uploads older than this are removed at start",
     .store =
         [](Config& c, Value const& v) {
           c.registry.upload_expiry = std::chrono::duration_cast<std::chrono::hours>(as_seconds(v));
         },
     .show =
         [](Config const& c) {
           return format_duration(std::chrono::duration_cast<std::chrono::seconds>(c.registry.upload_expiry).count());
         }},
    {.name = "routes",
     .kind = Kind::custom,
     .doc = "web apps behind the front door: host, path_prefix, upstream, strip_prefix, timeout",
     .show =
         [](Config const& c) {
           return show_list(
               c.server.routes,
               [](auto const& route) { return route.host + route.path_prefix + "->" + route.upstream_url(); }, "none");
         },
     .read = read_routes},
    {.name = "server.header_timeout",
     .kind = Kind::duration,
     .min = 1,
     .max = hour,
     .doc = "time a client has to send a whole request line and headers",
     .store = [](Config& c, Value const& v) { c.server.header_timeout = as_seconds(v); },
     .show = [](Config const& c) { return format_duration(c.server.header_timeout.count()); }},
    {.name = "server.http_redirect_listen",
     .kind = Kind::endpoint,
     .doc = "HOST:PORT of a plain-HTTP listener that answers /healthz and redirects everything else to https",
     .store =
         [](Config& c, Value const& v) {
           c.http_redirect = ListenAddress{std::get<Endpoint>(v).host, std::get<Endpoint>(v).port};
         },
     .show =
         [](Config const& c) {
           return c.http_redirect ? format_endpoint(c.http_redirect->host, c.http_redirect->port) : std::string("off");
         }},
    {.name = "server.idle_timeout",
     .kind = Kind::duration,
     .min = 1,
     .max = 24 * hour,
     .doc = "a keep-alive connection with no request for this long is closed",
     .store = [](Config& c, Value const& v) { c.server.idle_timeout = as_seconds(v); },
     .show = [](Config const& c) { return format_duration(c.server.idle_timeout.count()); }},
    {.name = "server.io_timeout",
     .kind = Kind::duration,
     .min = 1,
     .max = hour,
     .doc = "a body read or write making no progress for this long is aborted",
     .store = [](Config& c, Value const& v) { c.server.io_timeout = as_seconds(v); },
     .show = [](Config const& c) { return format_duration(c.server.io_timeout.count()); }},
    {.name = "server.listen",
     .kind = Kind::endpoint,
     .doc = "HOST:PORT the HTTP front door listens on; port 0 picks a free port",
     .store =
         [](Config& c, Value const& v) {
           c.server.host = std::get<Endpoint>(v).host;
           c.server.port = std::get<Endpoint>(v).port;
         },
     .show = [](Config const& c) { return format_endpoint(c.server.host, c.server.port); }},
    {.name = "server.max_connections_per_ip",
     .kind = Kind::integer,
     .min = 0,
     .max = 1000000,
     .doc = "open connections one client address may have; more are closed at once; 0 means no cap",
     .store = [](Config& c,
                 Value const& v) { c.server.max_connections_per_ip = static_cast<std::uint32_t>(as_number(v)); },
     .show =
         [](Config const& c) {
           return c.server.max_connections_per_ip == 0 ? std::string("unlimited")
                                                       : std::to_string(c.server.max_connections_per_ip);
         }},
    {.name = "server.max_header_bytes",
     .kind = Kind::size,
     .min = kib,
     .max = mib,
     .doc = "largest request line plus headers; a larger request head gets 431",
     .store = [](Config& c, Value const& v) { c.server.max_header_bytes = static_cast<std::uint32_t>(as_number(v)); },
     .show = [](Config const& c) { return format_size(c.server.max_header_bytes); }},
    {.name = "server.metrics",
     .kind = Kind::choice,
     .choices = metrics_access,
     .doc = "who may read GET /metrics: loopback clients, signed-in users (and loopback), or nobody",
     .store =
         [](Config& c, Value const& v) {
           auto const& word = std::get<std::string>(v);
           c.server.metrics = word == "off"             ? proxy::MetricsAccess::off
                              : word == "authenticated" ? proxy::MetricsAccess::authenticated
                                                        : proxy::MetricsAccess::loopback;
         },
     .show = [](Config const& c) { return std::string(metrics_access[static_cast<std::size_t>(c.server.metrics)]); }},
    {.name = "server.rate_limit.burst",
     .kind = Kind::integer,
     .min = 0,
     .max = 1000000,
     .doc = "requests a client may send at once before server.rate_limit.requests_per_second applies; 0: the same",
     .store = [](Config& c, Value const& v) { c.server.rate_limit.burst = static_cast<std::uint32_t>(as_number(v)); },
     .show = [](Config const& c) { return std::to_string(c.server.rate_limit.burst); }},
    {.name = "server.rate_limit.requests_per_second",
     .kind = Kind::integer,
     .min = 0,
     .max = 1000000,
     .doc = "requests per second per user (per address when anonymous), answered 429 beyond; 0 turns it off",
     .store = [](Config& c, Value const& v) { c.server.rate_limit.per_second = static_cast<double>(as_number(v)); },
     .show =
         [](Config const& c) {
           return c.server.rate_limit.per_second == 0
                      ? std::string("off")
                      : std::to_string(static_cast<std::int64_t>(c.server.rate_limit.per_second));
         }},
    {.name = "server.shutdown_grace",
     .kind = Kind::duration,
     .min = 0,
     .max = hour,
     .doc = "how long in-flight requests may run on after SIGTERM",
     .store = [](Config& c, Value const& v) { c.server.shutdown_grace = as_seconds(v); },
     .show = [](Config const& c) { return format_duration(c.server.shutdown_grace.count()); }},
    {.name = "server.threads",
     .kind = Kind::integer,
     .min = 0,
     .max = 256,
     .doc = "I/O threads; 0 means one per CPU",
     .store = [](Config& c, Value const& v) { c.server.threads = static_cast<unsigned>(as_number(v)); },
     .show =
         [](Config const& c) {
           return c.server.threads == 0 ? std::string("auto") : std::to_string(c.server.threads);
         }},
    {.name = "server.tls.cert",
     .kind = Kind::path,
     .doc = "PEM certificate chain to serve (server certificate first); unset: berth's own CA issues one",
     .store = [](Config& c, Value const& v) { c.server.tls.cert_chain = std::get<fs::path>(v); },
     .show = [](Config const& c) { return c.server.tls.cert_chain.string(); }},
    {.name = "server.tls.dir",
     .kind = Kind::path,
     .doc = "where berth keeps its own CA and server certificate when server.tls.cert is unset",
     .store = [](Config& c, Value const& v) { c.tls_dir = std::get<fs::path>(v); },
     .show = [](Config const& c) { return c.tls_dir.string(); }},
    {.name = "server.tls.enabled",
     .kind = Kind::boolean,
     .doc = "serve HTTPS (TLS 1.2 and 1.3) instead of plain HTTP on server.listen",
     .store = [](Config& c, Value const& v) { c.server.tls.enabled = std::get<bool>(v); },
     .show = [](Config const& c) { return std::string(c.server.tls.enabled ? "true" : "false"); }},
    {.name = "server.tls.hostnames",
     .kind = Kind::hosts,
     .doc = "names and addresses clients use to reach berth, for the certificate berth issues itself",
     .store = [](Config& c, Value const& v) { c.tls_hostnames = std::get<std::vector<std::string>>(v); },
     .show =
         [](Config const& c) {
           return show_list(
               c.tls_hostnames, [](auto const& name) { return name; }, "auto");
         }},
    {.name = "server.tls.key",
     .kind = Kind::path,
     .doc = "PEM private key of server.tls.cert",
     .store = [](Config& c, Value const& v) { c.server.tls.private_key = std::get<fs::path>(v); },
     .show = [](Config const& c) { return c.server.tls.private_key.string(); }},
    {.name = "server.trusted_proxies",
     .kind = Kind::custom,
     .doc = "IP addresses of proxies in front of berth whose X-Forwarded-For routes extend instead of replace",
     .show =
         [](Config const& c) {
           return show_list(
               c.server.trusted_proxies, [](auto const& address) { return address; }, "none");
         },
     .read = read_trusted_proxies},
    {.name = "volumes.backup",
     .kind = Kind::path,
     .doc = "backup volume: snapshots and WAL archive, a second disk in production",
     .store = [](Config& c, Value const& v) { c.backup = std::get<fs::path>(v); },
     .show = [](Config const& c) { return c.backup.string(); }},
    {.name = "volumes.primary",
     .kind = Kind::path,
     .doc = "primary volume: registry storage, PostgreSQL data, secrets",
     .store = [](Config& c, Value const& v) { c.primary = std::get<fs::path>(v); },
     .show = [](Config const& c) { return c.primary.string(); }},
}};

Key const* find_key(std::string_view name) {
  auto const found = std::find_if(schema.begin(), schema.end(), [&](Key const& key) { return key.name == name; });
  return found == schema.end() ? nullptr : &*found;
}

std::string join(std::vector<std::string> const& words) {
  std::string text;
  for (auto const& word : words) text += (text.empty() ? "" : ", ") + word;
  return text;
}

// The names directly below `section` ("" is the top level), sorted, each once: both leaves
// ("listen") and sub-sections ("server").
std::vector<std::string> children_of(std::string_view section) {
  std::vector<std::string> names;
  for (auto const& key : schema) {
    std::string_view rest = key.name;
    if (!section.empty()) {
      if (!(rest.starts_with(section) && rest.size() > section.size() && rest[section.size()] == '.')) continue;
      rest.remove_prefix(section.size() + 1);
    }
    names.emplace_back(rest.substr(0, rest.find('.')));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

bool is_section(std::string_view name) {
  return !children_of(name).empty();
}

std::string known_keys_under(std::string_view section) {
  return "known keys under " + (section.empty() ? std::string("the top level") : std::string(section)) + ": " +
         join(children_of(section));
}

// Whole-string unsigned decimal: no sign, no spaces, no trailing characters, no overflow.
std::optional<std::int64_t> parse_unsigned(std::string_view text) {
  std::int64_t number = 0;
  if (text.empty() || text.front() == '-') return std::nullopt;
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return number;
}

std::optional<std::int64_t> parse_integer(std::string_view text) {
  std::int64_t number = 0;
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return number;
}

// Splits "16KiB" into 16 and "KiB"; the number part may be all there is.
std::optional<std::pair<std::int64_t, std::string_view>> split_number(std::string_view text) {
  auto const digits =
      std::find_if(text.begin(), text.end(), [](char ch) { return ch < '0' || ch > '9'; }) - text.begin();
  auto const number = parse_unsigned(text.substr(0, static_cast<std::size_t>(digits)));
  if (!number) return std::nullopt;
  return std::pair{*number, text.substr(static_cast<std::size_t>(digits))};
}

// Binary units (KiB = 1024) because header limits are compared with buffer sizes; the SI
// spellings (KB = 1000) are accepted as well so that "16KB" does not silently mean 16 KiB.
std::optional<std::int64_t> parse_size(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, std::int64_t>, 9> units{{
      {"", 1},
      {"B", 1},
      {"KiB", kib},
      {"MiB", mib},
      {"GiB", mib * kib},
      {"KB", 1000},
      {"kB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000 * 1000 * 1000},
  }};
  auto const split = split_number(text);
  if (!split) return std::nullopt;
  auto const [number, suffix] = *split;
  for (auto const& [unit, factor] : units) {
    if (suffix != unit) continue;
    if (number > std::numeric_limits<std::int64_t>::max() / factor) return std::nullopt;
    return number * factor;
  }
  return std::nullopt;
}

// "90" (seconds), or number+unit parts with units h, m, s, each at most once and in that
// order: "30s", "5m", "1h30m". Days are left out on purpose: no timeout here needs them.
std::optional<std::int64_t> parse_duration(std::string_view text) {
  if (auto const plain = parse_unsigned(text)) return plain;
  static constexpr std::array<std::pair<char, std::int64_t>, 3> units{{{'h', hour}, {'m', minute}, {'s', 1}}};
  std::int64_t total = 0;
  std::size_t unit_idx = 0;
  while (!text.empty()) {
    auto const split = split_number(text);
    if (!split || split->second.empty()) return std::nullopt;
    auto [number, rest] = *split;
    while (unit_idx < units.size() && units[unit_idx].first != rest.front()) ++unit_idx;
    if (unit_idx == units.size()) return std::nullopt;
    auto const factor = units[unit_idx++].second;
    if (number > (std::numeric_limits<std::int64_t>::max() - total) / factor) return std::nullopt;
    total += number * factor;
    text = rest.substr(1);
  }
  return total;
}

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. A last label
// of only digits is refused so that a mistyped address such as 10.0.0.256 is not taken as a name.
bool is_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::string_view last_label;
  for (std::size_t start = 0; start <= host.size();) {
    auto const end = std::min(host.find('.', start), host.size());
    auto const label = host.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char ch : label) {
      bool const alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
      if (!alnum && ch != '-') return false;
    }
    last_label = label;
    start = end + 1;
  }
  return !std::all_of(last_label.begin(), last_label.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

bool is_address(int family, std::string const& host) {
  std::array<unsigned char, sizeof(in6_addr)> buffer{};
  return ::inet_pton(family, host.c_str(), buffer.data()) == 1;
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  std::string host;
  std::string_view port_text;
  if (text.starts_with('[')) {
    auto const close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") return std::nullopt;
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    if (!is_address(AF_INET6, host)) return std::nullopt;
  } else {
    auto const colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (host.empty()) host = "0.0.0.0";
    if (!is_address(AF_INET, host) && !is_hostname(host)) return std::nullopt;
  }
  auto const port = parse_unsigned(port_text);
  if (!port || *port > 65535) return std::nullopt;
  return Endpoint{host, static_cast<std::uint16_t>(*port)};
}

// Advice for a listen address that did not parse, when the likely mistake is recognisable.
std::string endpoint_hint(std::string_view text) {
  if (parse_unsigned(text))
    return "HINT: write \":" + std::string(text) + "\" for all interfaces or \"127.0.0.1:" + std::string(text) +
           "\" for loopback only";
  if (!text.starts_with('[') && std::count(text.begin(), text.end(), ':') > 1) {
    return "HINT: put an IPv6 address in brackets and quote it, e.g. \"[::1]:5000\"";
  }
  auto const colon = text.rfind(':');
  if (colon != std::string_view::npos) {
    auto const port = split_number(text.substr(colon + 1));
    if (port && port->second.empty() && port->first > 65535)
      return "HINT: the port must be from 0 to 65535 (0 picks a free port)";
  }
  return {};
}

std::string expected_form(Key const& key) {
  switch (key.kind) {
    case Kind::choice: {
      std::vector<std::string> words(key.choices.begin(), key.choices.end());
      return "one of " + join(words);
    }
    case Kind::path: return "a path";
    case Kind::endpoint: return "HOST:PORT (e.g. 127.0.0.1:5000 or [::1]:5000)";
    case Kind::boolean: return "true or false";
    case Kind::grants:
      return "a list of grants, each a map like {users: [alice], groups: [ci], actions: [pull, push], "
             "repositories: [api/*]}";
    case Kind::names:
      return "a non-empty list of distinct names like [api, site, model] (lowercase letters, digits, . _ -)";
    case Kind::word: return "a name (letters, digits, _ and -) or \"\"";
    case Kind::custom: return std::string(key.doc);
    case Kind::hosts:
      return "a non-empty list of distinct host names or IP addresses like [registry.example.com, 10.0.0.5]";
    case Kind::integer: return "an integer from " + std::to_string(key.min) + " to " + std::to_string(key.max);
    case Kind::size:
      return "a size like 16KiB or 1MiB (from " + format_size(key.min) + " to " + format_size(key.max) + ")";
    case Kind::duration:
      return "a duration like 30s, 5m or 1h (from " + format_duration(key.min) + " to " + format_duration(key.max) +
             ")";
  }
  return {};
}

std::optional<std::int64_t> within(Key const& key, std::optional<std::int64_t> number) {
  if (!number || *number < key.min || *number > key.max) return std::nullopt;
  return number;
}

std::optional<Value> parse_value(Key const& key, std::string const& text, fs::path const& base_dir) {
  switch (key.kind) {
    case Kind::choice:
      if (std::find(key.choices.begin(), key.choices.end(), text) == key.choices.end()) return std::nullopt;
      return Value{text};
    case Kind::path:
      if (text.empty()) return std::nullopt;
      return Value{(base_dir / text).lexically_normal()};
    case Kind::endpoint:
      if (auto endpoint = parse_endpoint(text)) return Value{std::move(*endpoint)};
      return std::nullopt;
    case Kind::boolean:
      if (text == "true") return Value{true};
      if (text == "false") return Value{false};
      return std::nullopt;
    case Kind::names:
    case Kind::grants: return std::nullopt;  // lists, read by read_leaf
    case Kind::custom: return std::nullopt;  // read by Key::read
    case Kind::word:
      if (!std::all_of(text.begin(), text.end(),
                       [](char ch) {
                         return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                                ch == '_' || ch == '-';
                       }) ||
          text.size() > 32)
        return std::nullopt;
      return Value{text};
    case Kind::hosts: return std::nullopt;  // a list, read by read_leaf
    case Kind::integer:
      if (auto number = within(key, parse_integer(text))) return Value{*number};
      return std::nullopt;
    case Kind::size:
      if (auto number = within(key, parse_size(text))) return Value{*number};
      return std::nullopt;
    case Kind::duration:
      if (auto number = within(key, parse_duration(text))) return Value{*number};
      return std::nullopt;
  }
  return std::nullopt;
}

// A list of namespace names: each must be a valid single repository-name component.
std::optional<Value> parse_names(YAML::Node const& node) {
  if (!node.IsSequence() || node.size() == 0) return std::nullopt;
  std::vector<std::string> names;
  for (auto const& item : node) {
    if (!item.IsScalar()) return std::nullopt;
    auto const& name = item.Scalar();
    if (!registry::is_valid_repository_name(name) || name.find('/') != std::string::npos) return std::nullopt;
    if (std::find(names.begin(), names.end(), name) != names.end()) return std::nullopt;
    names.push_back(name);
  }
  return Value{std::move(names)};
}

// Names a certificate can be issued for: host names and IPv4/IPv6 literals, each once.
std::optional<Value> parse_hosts(YAML::Node const& node) {
  if (!node.IsSequence() || node.size() == 0) return std::nullopt;
  std::vector<std::string> hosts;
  for (auto const& item : node) {
    if (!item.IsScalar()) return std::nullopt;
    auto const& host = item.Scalar();
    if (!is_hostname(host) && !is_address(AF_INET, host) && !is_address(AF_INET6, host)) return std::nullopt;
    if (std::find(hosts.begin(), hosts.end(), host) != hosts.end()) return std::nullopt;
    hosts.push_back(host);
  }
  return Value{std::move(hosts)};
}

// How a value is named after "got": numbers bare, other text quoted.
std::string describe_scalar(std::string const& text) {
  if (parse_integer(text)) return text;
  std::string quoted = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') quoted += '\\';
    if (ch == '\n') {
      quoted += "\\n";
      continue;
    }
    quoted += ch;
  }
  return quoted + "\"";
}

// How a node is named after "got": scalars as above, collections by kind.
std::string describe_node(YAML::Node const& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Scalar: return describe_scalar(node.Scalar());
    default: return "an empty value";
  }
}

// "KEY: expected FORM, got VALUE", with advice when the mistake in `scalar` is recognisable.
std::string value_problem(Key const& key, std::string const& got, std::optional<std::string_view> scalar) {
  std::string problem = std::string(key.name) + ": expected " + expected_form(key) + ", got " + got;
  if (key.kind == Kind::endpoint && scalar) {
    if (auto const hint = endpoint_hint(*scalar); !hint.empty()) problem += "\n" + hint;
  }
  return problem;
}

// postgres.listen: [127.0.0.1, "::1", "*"], or [] for the Unix socket only.
void read_postgres_listen(Config& config, YAML::Node const& node, NodeContext const& context) {
  config.postgres.listen_addresses.clear();
  if (node.IsNull()) return;
  if (!node.IsSequence())
    context.error(node, "postgres.listen: expected a list of addresses like [127.0.0.1], got " + describe_node(node));
  for (auto const& item : node) {
    if (!item.IsScalar() || !(item.Scalar() == "*" || is_address(AF_INET, item.Scalar()) ||
                              is_address(AF_INET6, item.Scalar()) || is_hostname(item.Scalar())))
      context.error(item, "postgres.listen: expected an IP address, a host name or \"*\", got " + describe_node(item));
    config.postgres.listen_addresses.push_back(item.Scalar());
  }
}

// postgres.settings: {work_mem: 16MB, ...}; the server checks names and values at start.
void read_postgres_settings(Config& config, YAML::Node const& node, NodeContext const& context) {
  config.postgres.settings.clear();
  if (node.IsNull()) return;
  if (!node.IsMap())
    context.error(node, "postgres.settings: expected a map of postgresql.conf parameters like {work_mem: 16MB}, got " +
                            describe_node(node));
  for (auto const& entry : node) {
    auto const& name = entry.first.Scalar();
    bool const word = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.';
    });
    if (!entry.first.IsScalar() || !word)
      context.error(entry.first, "postgres.settings: expected a parameter name (lowercase, like work_mem), got " +
                                     describe_node(entry.first));
    if (!entry.second.IsScalar())
      context.error(entry.second,
                    "postgres.settings." + name + ": expected a single value, got " + describe_node(entry.second));
    if (!config.postgres.settings.emplace(name, entry.second.Scalar()).second)
      context.error(entry.first, "postgres.settings: duplicate parameter " + name);
  }
}

// server.trusted_proxies: [10.0.0.2, "::1"]: addresses as the server sees its peers.
void read_trusted_proxies(Config& config, YAML::Node const& node, NodeContext const& context) {
  config.server.trusted_proxies.clear();
  if (node.IsNull()) return;
  if (!node.IsSequence())
    context.error(
        node, "server.trusted_proxies: expected a list of IP addresses like [10.0.0.2], got " + describe_node(node));
  for (auto const& item : node) {
    if (!item.IsScalar() || !(is_address(AF_INET, item.Scalar()) || is_address(AF_INET6, item.Scalar())))
      context.error(item, "server.trusted_proxies: expected an IP address, got " + describe_node(item));
    config.server.trusted_proxies.push_back(item.Scalar());
  }
}

// An upstream URL: http://HOST:PORT with an IP literal ([::1] for IPv6) or a host name, no path.
std::optional<Endpoint> parse_upstream(std::string_view text) {
  constexpr std::string_view scheme = "http://";
  if (!text.starts_with(scheme)) return std::nullopt;
  text.remove_prefix(scheme.size());
  if (text.ends_with('/')) text.remove_suffix(1);
  auto endpoint = parse_endpoint(text);
  if (!endpoint || endpoint->port == 0 || text.starts_with(':')) return std::nullopt;
  return endpoint;
}

// routes: a list of {host, path_prefix, upstream, strip_prefix, timeout}.
void read_routes(Config& config, YAML::Node const& node, NodeContext const& context) {
  auto& routes = config.server.routes;
  routes.clear();
  if (node.IsNull()) return;
  if (!node.IsSequence())
    context.error(node,
                  "routes: expected a list of routes like \"- host: app.example.com\", got " + describe_node(node));
  static constexpr std::array<std::string_view, 5> fields{"host", "path_prefix", "upstream", "strip_prefix", "timeout"};
  for (auto const& item : node) {
    std::string const where = "routes[" + std::to_string(routes.size()) + "]";
    if (!item.IsMap())
      context.error(item, where + ": expected a map with host: and upstream:, got " + describe_node(item));
    proxy::Route route;
    bool has_upstream = false;
    auto scalar = [&](YAML::Node const& value, std::string const& field) {
      if (!value.IsScalar())
        context.error(value, where + "." + field + ": expected a single value, got " + describe_node(value));
      return value.Scalar();
    };
    for (auto const& entry : item) {
      auto const field = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
      auto const& value = entry.second;
      if (field == "host") {
        auto host = scalar(value, field);
        std::transform(host.begin(), host.end(), host.begin(), [](unsigned char ch) { return std::tolower(ch); });
        if (!is_hostname(host) && !is_address(AF_INET, host) && !is_address(AF_INET6, host))
          context.error(value, where + ".host: expected a host name like app.example.com, got " + describe_node(value));
        route.host = host;
      } else if (field == "path_prefix") {
        auto const prefix = scalar(value, field);
        bool const plausible = prefix.starts_with('/') && std::none_of(prefix.begin(), prefix.end(), [](char ch) {
                                 return ch == '?' || ch == '#' || ch == ' ' || ch < 0x21 || ch == 0x7f;
                               });
        if (!plausible)
          context.error(value, where + ".path_prefix: expected a path starting with / like /grafana, got " +
                                   describe_node(value));
        route.path_prefix = prefix;
      } else if (field == "upstream") {
        auto const upstream = parse_upstream(scalar(value, field));
        if (!upstream)
          context.error(value, where + ".upstream: expected http://HOST:PORT like http://127.0.0.1:3000, got " +
                                   describe_node(value));
        route.upstream_host = upstream->host;
        route.upstream_port = upstream->port;
        has_upstream = true;
      } else if (field == "strip_prefix") {
        route.strip_prefix = context.boolean(value, scalar(value, field), where + ".strip_prefix");
      } else if (field == "timeout") {
        auto const seconds = parse_duration(scalar(value, field));
        if (!seconds || *seconds < 1 || *seconds > hour)
          context.error(value, where + ".timeout: expected a duration like 30s, 5m or 1h (from 1s to 1h), got " +
                                   describe_node(value));
        route.timeout = std::chrono::seconds(*seconds);
      } else {
        std::vector<std::string> known(fields.begin(), fields.end());
        context.error(entry.first,
                      "unknown key \"" + where + "." + field + "\" (known keys of a route: " + join(known) + ")");
      }
    }
    if (route.host.empty()) context.error(item, where + ": expected a host: (the name clients use for the app)");
    if (!has_upstream) context.error(item, where + ": expected an upstream: like http://127.0.0.1:3000");
    for (auto const& other : routes)
      if (other.host == route.host && other.path_prefix == route.path_prefix)
        context.error(item, where + ": host " + route.host + " with path_prefix " + route.path_prefix +
                                " is already routed to " + other.upstream_url());
    routes.push_back(std::move(route));
  }
}

// The pieces of registry.retention and registry.immutable_tags rules.
std::string read_scalar(YAML::Node const& value, std::string const& where, NodeContext const& context) {
  if (!value.IsScalar()) context.error(value, where + ": expected a single value, got " + describe_node(value));
  return value.Scalar();
}

std::string read_repository_glob(YAML::Node const& value, std::string const& where, NodeContext const& context) {
  auto const pattern = read_scalar(value, where, context);
  bool const plausible = !pattern.empty() && pattern.front() != '/' && pattern.back() != '/' &&
                         std::all_of(pattern.begin(), pattern.end(), [](char ch) {
                           return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                                  std::string_view("._-/*?").find(ch) != std::string_view::npos;
                         });
  if (!plausible)
    context.error(value,
                  where + ": expected a namespace, repository or glob like api, api/orders, api/* or model/**, got " +
                      describe_node(value));
  return pattern;
}

// A list of ECMAScript regular expressions, each compiled here so a typo is reported at its line.
std::vector<std::string> read_tag_patterns(YAML::Node const& value, std::string const& where,
                                           NodeContext const& context) {
  if (!value.IsSequence())
    context.error(value, where +
                             ": expected a list of regular expressions like ['^v\\d+\\.\\d+\\.\\d+$', latest], got " +
                             describe_node(value));
  std::vector<std::string> patterns;
  for (auto const& item : value) {
    auto const pattern = read_scalar(item, where, context);
    try {
      std::regex const compiled(pattern, std::regex::ECMAScript);
    } catch (std::regex_error const& error) {
      context.error(item, where + ": invalid regular expression " + describe_scalar(pattern) + ": " + error.what() +
                              "\nHINT: an ECMAScript regular expression matching a whole tag, quoted in single "
                              "quotes, e.g. '^v\\d+\\.\\d+\\.\\d+$'");
    }
    patterns.push_back(pattern);
  }
  return patterns;
}

template <class Rule, class ReadField>
std::vector<Rule> read_rules(YAML::Node const& node, std::string const& key, std::vector<std::string> const& fields,
                             NodeContext const& context, ReadField const& read_field) {
  std::vector<Rule> rules;
  if (node.IsNull()) return rules;
  if (!node.IsSequence())
    context.error(node, key + ": expected a list of rules like \"- repositories: api/*\", got " + describe_node(node));
  for (auto const& item : node) {
    std::string const where = key + "[" + std::to_string(rules.size()) + "]";
    if (!item.IsMap())
      context.error(item, where + ": expected a map with repositories: and more, got " + describe_node(item));
    Rule rule;
    for (auto const& entry : item) {
      auto const field = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
      if (field == "repositories")
        rule.repositories = read_repository_glob(entry.second, where + ".repositories", context);
      else if (std::find(fields.begin(), fields.end(), field) == fields.end() ||
               !read_field(rule, field, entry.second, where + "." + field))
        context.error(entry.first,
                      "unknown key \"" + where + "." + field + "\" (known keys: repositories, " + join(fields) + ")");
    }
    if (rule.repositories.empty())
      context.error(item, where + ": expected repositories: (a glob like api/* or model/**)");
    rules.push_back(std::move(rule));
  }
  return rules;
}

// registry.retention: a list of {repositories, keep_last, keep_tags, untagged_after}.
void read_retention(Config& config, YAML::Node const& node, NodeContext const& context) {
  config.registry.retention = read_rules<registry::RetentionRule>(
      node, "registry.retention", {"keep_last", "keep_tags", "untagged_after"}, context,
      [&](registry::RetentionRule& rule, std::string const& field, YAML::Node const& value, std::string const& where) {
        if (field == "keep_last") {
          auto const count = parse_unsigned(read_scalar(value, where, context));
          if (!count || *count > 1000000)
            context.error(value, where + ": expected a number of tags from 0 to 1000000, got " + describe_node(value));
          rule.keep_last = static_cast<std::size_t>(*count);
        } else if (field == "keep_tags") {
          rule.keep_tags = read_tag_patterns(value, where, context);
        } else if (field == "untagged_after") {
          // Days are the natural unit here; the other units are those of every duration.
          auto const text = read_scalar(value, where, context);
          std::optional<std::int64_t> seconds;
          if (text.ends_with('d')) {
            if (auto const days = parse_unsigned(std::string_view(text).substr(0, text.size() - 1));
                days && *days <= 3650)
              seconds = *days * 24 * hour;
          } else {
            seconds = parse_duration(text);
          }
          if (!seconds || *seconds < hour || *seconds > 3650 * 24 * hour)
            context.error(value, where + ": expected a duration like 7d, 36h or 1h30m (from 1h to 3650d), got " +
                                     describe_node(value));
          rule.untagged_after = std::chrono::seconds(*seconds);
        } else {
          return false;
        }
        return true;
      });
}

// registry.immutable_tags: a list of {repositories, tags}.
void read_immutable_tags(Config& config, YAML::Node const& node, NodeContext const& context) {
  config.registry.immutable_tags =
      read_rules<registry::ImmutableTagRule>(node, "registry.immutable_tags", {"tags"}, context,
                                             [&](registry::ImmutableTagRule& rule, std::string const& field,
                                                 YAML::Node const& value, std::string const& where) {
                                               if (field != "tags") return false;
                                               rule.tags = read_tag_patterns(value, where, context);
                                               return true;
                                             });
}

// promotion.targets: {ENV: {registry, region, repository_prefix, create_repository, api_endpoint, ca_file}}.
void read_registry_quotas(Config& config, YAML::Node const& node, NodeContext const& context) {
  config.registry.quotas.clear();
  if (node.IsNull()) return;
  if (!node.IsMap())
    context.error(node, "registry.quotas: expected a map of namespace to size like {api: 50GiB, model: 200GiB}, got " +
                            describe_node(node));
  for (auto const& entry : node) {
    auto const name = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
    auto const size = entry.second.IsScalar() ? parse_size(entry.second.Scalar()) : std::nullopt;
    if (!size || *size <= 0)
      context.error(entry.second,
                    "registry.quotas." + name + ": expected a size like 50GiB, got " + describe_node(entry.second));
    config.registry.quotas[name] = static_cast<std::uint64_t>(*size);
  }
}

// Every quota names a configured namespace: a typo would silently leave a namespace unlimited.
void check_quotas_name_namespaces(Config const& config, std::string const& display_name) {
  auto const& namespaces = config.registry.namespaces;
  for (auto const& [name, bytes] : config.registry.quotas) {
    if (std::find(namespaces.begin(), namespaces.end(), name) != namespaces.end()) continue;
    std::string known;
    for (auto const& ns : namespaces) known += (known.empty() ? "" : ", ") + ns;
    throw ConfigError(display_name + ": registry.quotas: \"" + name + "\" is not one of registry.namespaces (" + known +
                      ")\nHINT: fix the name or add it to registry.namespaces");
  }
}

void read_promotion_targets(Config& config, YAML::Node const& node, NodeContext const& context) {
  config.promotion_targets.clear();
  if (node.IsNull()) return;
  if (!node.IsMap())
    context.error(node,
                  "promotion.targets: expected a map of targets like {prod: {registry: "
                  "ACCOUNT.dkr.ecr.REGION.amazonaws.com, region: REGION}}, got " +
                      describe_node(node));
  static constexpr std::array<std::string_view, 6> fields{"registry",          "region",       "repository_prefix",
                                                          "create_repository", "api_endpoint", "ca_file"};
  for (auto const& entry : node) {
    auto const name = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
    bool const word = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    });
    if (!word)
      context.error(entry.first,
                    "promotion.targets: expected a target name (lowercase letters, digits, _ and -), got " +
                        describe_node(entry.first));
    std::string const where = "promotion.targets." + name;
    if (!entry.second.IsMap())
      context.error(entry.second,
                    where + ": expected a map with registry: and region:, got " + describe_node(entry.second));
    registry::PromotionTarget target;
    target.name = name;
    auto scalar = [&](YAML::Node const& value, std::string const& field) {
      if (!value.IsScalar())
        context.error(value, where + "." + field + ": expected a single value, got " + describe_node(value));
      return value.Scalar();
    };
    for (auto const& item : entry.second) {
      auto const field = item.first.IsScalar() ? item.first.Scalar() : std::string();
      auto const& value = item.second;
      if (field == "registry") {
        target.registry = scalar(value, field);
        if (target.registry.empty() || target.registry.find_first_of("/ \t") != std::string::npos)
          context.error(value, where +
                                   ".registry: expected a host like 123456789012.dkr.ecr.eu-west-1.amazonaws.com, "
                                   "got " +
                                   describe_node(value));
      } else if (field == "region") {
        target.region = scalar(value, field);
      } else if (field == "repository_prefix") {
        target.repository_prefix = scalar(value, field);
        if (!target.repository_prefix.empty() && !target.repository_prefix.ends_with('/'))
          target.repository_prefix += '/';
      } else if (field == "create_repository") {
        auto const text = scalar(value, field);
        if (text != "true" && text != "false")
          context.error(value, where + ".create_repository: expected true or false, got " + describe_node(value));
        target.create_repository = text == "true";
      } else if (field == "api_endpoint") {
        target.api_endpoint = scalar(value, field);
        if (!target.api_endpoint.starts_with("https://"))
          context.error(value, where + ".api_endpoint: expected an https:// URL, got " + describe_node(value));
      } else if (field == "ca_file") {
        auto const text = scalar(value, field);
        if (text.empty()) context.error(value, where + ".ca_file: expected a path");
        target.ca_file = (context.base_dir / text).lexically_normal();
      } else {
        std::vector<std::string> known(fields.begin(), fields.end());
        context.error(item.first,
                      "unknown key \"" + where + "." + field + "\" (known keys of a target: " + join(known) + ")");
      }
    }
    if (target.registry.empty())
      context.error(entry.second, where + ": expected a registry: (ACCOUNT.dkr.ecr.REGION.amazonaws.com)");
    if (target.region.empty()) {
      // ACCOUNT.dkr.ecr.REGION.amazonaws.com names its region.
      auto const dkr = target.registry.find(".dkr.ecr.");
      if (dkr != std::string::npos) {
        auto const start = dkr + 9;
        target.region = target.registry.substr(start, target.registry.find('.', start) - start);
      }
    }
    if (target.region.empty()) context.error(entry.second, where + ": expected a region: (e.g. eu-west-1)");
    try {
      registry::ecr::validate_target({.registry_host = target.registry,
                                      .region = target.region,
                                      .api_endpoint = target.api_endpoint,
                                      .ca_file = std::nullopt,
                                      .create_repository = target.create_repository});
    } catch (Error const& e) {
      std::string const message = e.what();
      context.error(entry.second, where + ": " + message.substr(0, message.find('\n')));
    }
    config.promotion_targets.push_back(std::move(target));
  }
}

// databases: a list of {name, owner, extensions, connection_limit, migrations, migrate_on_start,
// baseline_on_migrate, baseline_version}.
void read_databases(Config& config, YAML::Node const& node, NodeContext const& context) {
  config.databases.clear();
  if (node.IsNull()) return;
  if (!node.IsSequence())
    context.error(node, "databases: expected a list of databases like \"- name: shop\", got " + describe_node(node));
  static constexpr std::array<std::string_view, 8> fields{
      "name",       "owner",           "extensions",          "connection_limit",
      "migrations", "migrate_on_start", "baseline_on_migrate", "baseline_version"};
  for (auto const& item : node) {
    if (!item.IsMap()) context.error(item, "databases: expected a map with at least name:, got " + describe_node(item));
    Application app;
    std::string const where = "databases[" + std::to_string(config.databases.size()) + "]";
    auto scalar = [&](YAML::Node const& value, std::string const& field) {
      if (!value.IsScalar())
        context.error(value, where + "." + field + ": expected a single value, got " + describe_node(value));
      return value.Scalar();
    };
    for (auto const& entry : item) {
      auto const field = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
      auto const& value = entry.second;
      if (field == "name") {
        app.database.name = scalar(value, field);
      } else if (field == "owner") {
        app.database.owner = scalar(value, field);
      } else if (field == "extensions") {
        if (!value.IsSequence())
          context.error(value, where + ".extensions: expected a list like [pgcrypto], got " + describe_node(value));
        for (auto const& extension : value) app.database.extensions.push_back(scalar(extension, field));
      } else if (field == "connection_limit") {
        auto const limit = parse_integer(scalar(value, field));
        if (!limit || *limit < -1 || *limit > 100000)
          context.error(value, where + ".connection_limit: expected an integer from -1 (no limit) to 100000, got " +
                                   describe_node(value));
        app.database.connection_limit = static_cast<int>(*limit);
      } else if (field == "migrations") {
        auto const text = scalar(value, field);
        if (text.empty()) context.error(value, where + ".migrations: expected a path");
        app.migrations = (context.base_dir / text).lexically_normal();
      } else if (field == "migrate_on_start") {
        app.migrate_on_start = context.boolean(value, scalar(value, field), where + ".migrate_on_start");
      } else if (field == "baseline_on_migrate") {
        app.baseline_on_migrate = context.boolean(value, scalar(value, field), where + ".baseline_on_migrate");
      } else if (field == "baseline_version") {
        auto const text = scalar(value, field);
        try {
          flyway::MigrationVersion::parse(text);
        } catch (std::exception const&) {
          context.error(value, where + ".baseline_version: expected a version like 1 or 2.1, got " + describe_node(value));
        }
        app.baseline_version = text;
      } else {
        std::vector<std::string> known(fields.begin(), fields.end());
        context.error(entry.first,
                      "unknown key \"" + where + "." + field + "\" (known keys of a database: " + join(known) + ")");
      }
    }
    if (app.database.name.empty()) context.error(item, where + ": expected a name: for the database");
    if (app.migrate_on_start && app.migrations.empty())
      context.error(item, where + ": migrate_on_start needs migrations: (the folder of V1__init.sql...)");
    try {
      postgres::check_databases({app.database});
    } catch (Error const& e) {
      context.error(item, where + ": " + std::string(e.what()).substr(std::string("invalid databases:\n  ").size()));
    }
    if (find_application(config, app.database.name) != nullptr)
      context.error(item, where + ": database " + app.database.name + " is declared twice");
    config.databases.push_back(std::move(app));
  }
}

// Levenshtein distance, for "did you mean".
std::size_t edit_distance(std::string_view from, std::string_view to) {
  std::vector<std::size_t> row(to.size() + 1);
  for (std::size_t col = 0; col <= to.size(); ++col) row[col] = col;
  for (std::size_t from_idx = 1; from_idx <= from.size(); ++from_idx) {
    std::size_t diagonal = row[0];
    row[0] = from_idx;
    for (std::size_t to_idx = 1; to_idx <= to.size(); ++to_idx) {
      std::size_t const above = row[to_idx];
      std::size_t const cost = from[from_idx - 1] == to[to_idx - 1] ? 0 : 1;
      row[to_idx] = std::min({above + 1, row[to_idx - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[to.size()];
}

std::string_view last_segment(std::string_view name) {
  return name.substr(name.rfind('.') + 1);
}

// The known key or section most like `unknown`, comparing whole dotted names (a typo) and
// last segments (a key put in the wrong section), or "" when nothing is close.
std::string closest_known(std::string const& unknown) {
  std::vector<std::string> candidates;
  for (auto const& key : schema) {
    candidates.emplace_back(key.name);
    candidates.emplace_back(key.name.substr(0, key.name.find('.')));
  }
  auto const section = [](std::string_view name) { return name.substr(0, name.rfind('.') + 1); };
  std::string best;
  // One edit per three letters, at least one: "servr" finds "server", "foo" finds nothing.
  std::size_t const limit = std::max<std::size_t>(1, last_segment(unknown).size() / 3) + 1;
  // Ties go to the key in the same section, then to the whole name closest to what was written
  // ("listen" at the top suggests server.listen over postgres.listen).
  std::tuple<std::size_t, bool, std::size_t> best_rank{limit, true, 0};
  for (auto const& candidate : candidates) {
    auto const whole = edit_distance(unknown, candidate);
    auto const distance = std::min(whole, edit_distance(last_segment(unknown), last_segment(candidate)));
    std::tuple<std::size_t, bool, std::size_t> rank{distance, section(unknown) != section(candidate), whole};
    if (distance < limit && (best.empty() || rank < best_rank)) {
      best = candidate;
      best_rank = rank;
    }
  }
  return best;
}

// The column (1-based) of a quote that opens a value on `line` and is not closed on it. YAML lets a
// quoted value run on over the next lines, so a forgotten closing quote swallows them or breaks
// the map far below; either way, the place to point at is the opening quote.
std::optional<int> open_quote_column(std::string_view line) {
  char open = 0;
  int column = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char const c = line[i];
    if (open == 0 && c == '#' && (i == 0 || line[i - 1] == ' ')) break;  // a comment
    if (open == 0 && (c == '"' || c == '\'')) {
      // A quote opens a scalar only where one starts: at the line's start, after ":", "-", "[", "{" or ",".
      auto before = i;
      while (before > 0 && line[before - 1] == ' ') --before;
      if (before == 0 || std::string_view(":-[{,").find(line[before - 1]) != std::string_view::npos) {
        open = c;
        column = static_cast<int>(i) + 1;
      }
    } else if (open == '"' && c == '\\') {
      ++i;  // an escape inside double quotes
    } else if (open != 0 && c == open) {
      if (open == '\'' && i + 1 < line.size() && line[i + 1] == '\'')
        ++i;  // '' is a quote inside single quotes
      else
        open = 0;
    }
  }
  if (open == 0) return std::nullopt;
  return column;
}

std::string_view line_of(std::string const& text, int line_number) {  // 1-based; empty past the end
  std::size_t start = 0;
  for (int line = 1; line < line_number; ++line) {
    start = text.find('\n', start);
    if (start == std::string::npos) return {};
    ++start;
  }
  auto const end = std::min(text.find('\n', start), text.size());
  return std::string_view(text).substr(start, end - start);
}

constexpr char unclosed_quote_problem[] =
    "YAML syntax error: this quote is never closed on its line (YAML reads the lines below into the value)"
    "\nHINT: end the value with the same quote on the same line";

class DocumentReader {
public:
  DocumentReader(std::string display_name, fs::path base_dir, Config& config, std::string const& text)
      : display_name_(std::move(display_name)), base_dir_(std::move(base_dir)), config_(config), text_(text) {}

  void read_root(YAML::Node const& root) {
    if (root.IsNull()) return;  // empty, or only comments: all defaults
    if (!root.IsMap()) {
      fail(root.Mark(), "expected a map at the top level (" + known_keys_under("") + "), got " + describe_node(root));
    }
    read_section(root, "");
    // Every key is read even after one is wrong, so that one run names every mistake.
    if (!errors_.empty()) {
      std::string all;
      for (auto const& error : errors_) all += (all.empty() ? "" : "\n") + error;
      throw ConfigError(all);
    }
  }

  [[noreturn]] void fail(YAML::Mark const& mark, std::string const& problem) const {
    if (mark.is_null()) throw ConfigError(display_name_ + ": " + problem);
    throw ConfigError(display_name_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) +
                      ": " + problem);
  }

private:
  void read_section(YAML::Node const& map, std::string const& section) {
    // yaml-cpp keeps every entry of a mapping but lookups find the first, so a repeated key
    // would be silently ignored; catch it while walking.
    std::map<std::string, int> seen_on_line;
    for (auto const& entry : map) {
      try {
        try {
          read_entry(entry, section, seen_on_line);
        } catch (ConfigError const&) {
          // A value that is wrong because its quote never closed: say that, where the quote opens.
          auto const& value = entry.second;
          if (value.IsScalar() && !value.Mark().is_null())
            if (auto const column = open_quote_column(line_of(text_, value.Mark().line + 1))) {
              YAML::Mark mark = value.Mark();
              mark.column = *column - 1;
              fail(mark, unclosed_quote_problem);
            }
          throw;
        }
      } catch (ConfigError const& error) {
        errors_.push_back(error.what());
      }
    }
  }

  void read_entry(auto const& entry, std::string const& section, std::map<std::string, int>& seen_on_line) {
    {
      YAML::Node const& key_node = entry.first;
      YAML::Node const& value = entry.second;
      if (!key_node.IsScalar()) fail(key_node.Mark(), "expected a key name, got " + describe_node(key_node));
      std::string const name = section.empty() ? key_node.Scalar() : section + "." + key_node.Scalar();

      auto const [previous, inserted] = seen_on_line.emplace(name, key_node.Mark().line + 1);
      if (!inserted) {
        fail(key_node.Mark(), "duplicate key \"" + name + "\" on lines " + std::to_string(previous->second) + " and " +
                                  std::to_string(key_node.Mark().line + 1));
      }

      // A dotted key written flat ("server.listen: x") would otherwise match the schema and
      // dodge the duplicate check against the nested form.
      bool const flat_dotted = key_node.Scalar().find('.') != std::string::npos;
      if (Key const* key = flat_dotted ? nullptr : find_key(name)) {
        read_leaf(*key, key_node, value);
      } else if (!flat_dotted && is_section(name)) {
        if (value.IsNull()) return;  // "server:" with every key commented out
        if (!value.IsMap()) {
          fail(value.Mark(), name + ": expected a map (" + known_keys_under(name) + "), got " + describe_node(value));
        }
        read_section(value, name);
      } else {
        std::string problem = "unknown key \"" + name + "\" (" + known_keys_under(section) + ")";
        if (flat_dotted) {
          problem +=
              "\nHINT: nest keys instead of joining them with dots, e.g. \"server:\" and an "
              "indented \"listen:\" below it";
        } else if (auto const suggestion = closest_known(name); !suggestion.empty()) {
          problem += "\nHINT: did you mean " + suggestion + "?";
        }
        fail(key_node.Mark(), problem);
      }
    }
  }

  void read_leaf(Key const& key, YAML::Node const& key_node, YAML::Node const& value) {
    // An empty value's mark points past it, at the next line; the key is the better place.
    auto const mark = value.IsNull() ? key_node.Mark() : value.Mark();
    if (key.kind == Kind::custom) {
      NodeContext context{base_dir_,
                          [this](YAML::Node const& node, std::string const& problem) { fail(node.Mark(), problem); }};
      key.read(config_, value, context);
      return;
    }
    std::optional<Value> parsed;
    if (key.kind == Kind::names)
      parsed = parse_names(value);
    else if (key.kind == Kind::grants)
      parsed = parse_grants(key, value);
    else if (key.kind == Kind::hosts)
      parsed = parse_hosts(value);
    else if (value.IsScalar())
      parsed = parse_value(key, value.Scalar(), base_dir_);
    if (!parsed) {
      auto const scalar = value.IsScalar() ? std::optional<std::string_view>(value.Scalar()) : std::nullopt;
      fail(mark, value_problem(key, describe_node(value), scalar));
    }
    key.store(config_, *parsed);
  }

  // `access:` entries. Each problem is reported at the entry or value it concerns.
  std::optional<Value> parse_grants(Key const& key, YAML::Node const& list) const {
    if (list.IsNull()) return Value{std::vector<proxy::Grant>{}};
    if (!list.IsSequence()) return std::nullopt;
    std::vector<proxy::Grant> grants;
    auto const words = [&](YAML::Node const& node, std::string const& field) {
      if (!node.IsSequence() || node.size() == 0)
        fail(node.Mark(),
             std::string(key.name) + "." + field + ": expected a non-empty list, got " + describe_node(node));
      std::vector<std::string> items;
      for (auto const& item : node) {
        if (!item.IsScalar())
          fail(item.Mark(), std::string(key.name) + "." + field + ": expected names, got " + describe_node(item));
        items.push_back(item.Scalar());
      }
      return items;
    };
    for (auto const& entry : list) {
      std::string const where = std::string(key.name) + " entry";
      if (!entry.IsMap())
        fail(entry.Mark(), value_problem(key, "an entry that is " + describe_node(entry), std::nullopt));
      proxy::Grant grant;
      for (auto const& field : entry) {
        auto const name = field.first.Scalar();
        auto const& value = field.second;
        if (name == "users" || name == "groups") {
          for (auto const& account : words(value, name)) {
            // Robots are granted by their login, "robot+NAME".
            bool const robot = name == "users" && proxy::robot_name_of(account);
            if (!proxy::is_valid_account_name(account) && !robot)
              fail(value.Mark(), std::string(key.name) + "." + name + ": invalid name " + describe_scalar(account));
            (name == "users" ? grant.users : grant.groups).push_back(account);
          }
        } else if (name == "anonymous") {
          if (!value.IsScalar() || (value.Scalar() != "true" && value.Scalar() != "false"))
            fail(value.Mark(),
                 std::string(key.name) + ".anonymous: expected true or false, got " + describe_node(value));
          grant.anonymous = value.Scalar() == "true";
        } else if (name == "actions") {
          for (auto const& word : words(value, name)) {
            auto const action = proxy::parse_action(word);
            if (!action)
              fail(value.Mark(), std::string(key.name) + ".actions: expected pull, push, delete or catalog, got " +
                                     describe_scalar(word));
            grant.actions.push_back(*action);
          }
        } else if (name == "repositories") {
          for (auto const& pattern : words(value, name)) {
            bool const plausible = !pattern.empty() && pattern.front() != '/' && pattern.back() != '/' &&
                                   std::all_of(pattern.begin(), pattern.end(), [](char ch) {
                                     return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                                            std::string_view("._-/*?").find(ch) != std::string_view::npos;
                                   });
            if (!plausible)
              fail(value.Mark(), std::string(key.name) +
                                     ".repositories: expected a namespace, repository or glob "
                                     "like api, api/orders, api/* or model/**, got " +
                                     describe_scalar(pattern));
            grant.repositories.push_back(pattern);
          }
        } else {
          fail(field.first.Mark(), "unknown key \"" + name + "\" in an " + where +
                                       " (known keys: users, groups, anonymous, actions, repositories)");
        }
      }
      if (grant.users.empty() && grant.groups.empty() && !grant.anonymous)
        fail(entry.Mark(), where + ": names nobody\nHINT: add users: [...], groups: [...] or anonymous: true");
      if (grant.actions.empty()) fail(entry.Mark(), where + ": has no actions\nHINT: add e.g. actions: [pull]");
      bool const needs_repositories = std::any_of(grant.actions.begin(), grant.actions.end(), [](proxy::Action action) {
        return action != proxy::Action::catalog;
      });
      if (needs_repositories && grant.repositories.empty())
        fail(entry.Mark(), where + ": has no repositories\nHINT: add e.g. repositories: [api/*]");
      if (grant.anonymous && (grant.actions.size() != 1 || grant.actions.front() != proxy::Action::pull))
        fail(entry.Mark(), where + ": anonymous clients may only pull\nHINT: give push and delete to users or groups");
      grants.push_back(std::move(grant));
    }
    return Value{std::move(grants)};
  }

  std::string display_name_;
  fs::path base_dir_;
  Config& config_;
  std::string const& text_;          // the file, for pointing at a quote left open
  std::vector<std::string> errors_;  // one per key that was wrong, in file order
};



// Reads the whole file with POSIX calls so that the failure carries errno (iostreams lose it,
// and opening a directory "succeeds" with them).
std::string read_file(fs::path const& file) {
  auto const fail = [&](int error) {
    std::string message = "cannot read config " + file.string() + ": " + std::strerror(error);
    if (error == ENOENT) {
      message += "\nHINT: check the path given by --config or BERTH_CONFIG";
    } else if (error == EACCES) {
      message += "\nHINT: make the file readable by the user berth runs as";
    } else {
      message += "\nHINT: the config must be a readable YAML file";
    }
    return ConfigError(message);
  };
  int const fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail(errno);
  std::string text;
  std::array<char, 8192> buffer{};
  for (;;) {
    auto const count = ::read(fd, buffer.data(), buffer.size());
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) {
      int const error = errno;
      ::close(fd);
      throw fail(error);
    }
    if (count == 0) break;
    text.append(buffer.data(), static_cast<std::size_t>(count));
  }
  ::close(fd);
  return text;
}

bool file_exists(fs::path const& path) {
  std::error_code ignored;
  return fs::exists(path, ignored);
}

// Routes come before berth's own paths, so a route on one of berth's names must not take the
// registry's /v2/ or /token (docker would then talk to the app). Checked once the whole file is
// read, since routes: and server.tls.hostnames may come in either order.
void check_routes_leave_registry(Config const& config, std::string const& display_name) {
  std::vector<std::string> names = config.tls_hostnames;
  if (names.empty()) names = {"localhost", "127.0.0.1", "::1"};
  for (std::size_t route_idx = 0; route_idx < config.server.routes.size(); ++route_idx) {
    auto const& route = config.server.routes[route_idx];
    if (std::find(names.begin(), names.end(), route.host) == names.end()) continue;
    for (auto path : {"/v2/"sv, "/token"sv}) {
      if (proxy::match_route({route}, route.host, path) == nullptr) continue;
      throw ConfigError(display_name + ": routes[" + std::to_string(route_idx) + "]: host " + route.host +
                        " with path_prefix " + route.path_prefix + " would take " + std::string(path) +
                        " from berth's registry\nHINT: give the app its own host name, or a path_prefix like /" +
                        "app/ that leaves /v2/ and /token to berth");
    }
  }
}

}  // namespace

Config default_config() {
  Config config;
  derive_paths(config);
  return config;
}

Config load_config(fs::path const& file) {
  std::string const display_name = file.string();
  std::string const text = read_file(file);
  Config config;
  config.source = fs::absolute(file).lexically_normal();
  DocumentReader reader(display_name, config.source.parent_path(), config, text);

  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (YAML::ParserException const& error) {
    for (int line = 1; !error.mark.is_null() && line <= error.mark.line + 1; ++line)
      if (auto const column = open_quote_column(line_of(text, line))) {
        YAML::Mark mark;
        mark.line = line - 1;
        mark.column = *column - 1;
        reader.fail(mark, unclosed_quote_problem);
      }
    reader.fail(error.mark, "YAML syntax error: " + error.msg);
  }
  // A plain Load would silently ignore everything after a second "---"; a trailing "---"
  // with nothing after it is harmless.
  for (std::size_t document_idx = 1; document_idx < documents.size(); ++document_idx) {
    if (!documents[document_idx].IsNull()) {
      reader.fail(documents[document_idx].Mark(), "expected one YAML document, found a second one");
    }
  }
  if (!documents.empty()) reader.read_root(documents.front());
  check_routes_leave_registry(config, display_name);
  check_quotas_name_namespaces(config, display_name);

  derive_paths(config);
  return config;
}

void set_option(Config& config, std::string const& key_name, std::string const& value, std::string const& origin) {
  Key const* key = find_key(key_name);
  if (key == nullptr) throw ConfigError(origin + ": unknown key \"" + key_name + "\"");
  if (key->kind == Kind::custom) throw ConfigError(origin + ": " + key_name + " can only be set in the config file");
  auto const parsed = parse_value(*key, value, fs::current_path());
  if (!parsed) throw ConfigError(origin + ": " + value_problem(*key, describe_scalar(value), value));
  key->store(config, *parsed);
}

void derive_paths(Config& config) {
  config.registry.root = config.primary / "registry";
  config.postgres.data_dir = config.primary / "postgres";
  config.postgres.socket_dir = config.primary / "run" / "postgres";
  config.postgres.secrets_dir = config.primary / "secrets";
  config.postgres.wal_archive_dir = config.wal_archive ? config.backup / "wal" : fs::path();
  config.snapshots.volume = config.backup;
  // Next to the config file (/etc/berth/tls) unless set; on the primary volume without a file.
  if (config.tls_dir.empty())
    config.tls_dir = (config.source.empty() ? config.primary : config.source.parent_path()) / "tls";
}

Application const* find_application(Config const& config, std::string const& name) {
  for (auto const& app : config.databases)
    if (app.database.name == name) return &app;
  return nullptr;
}

fs::path htpasswd_file(Config const& config) {
  return config.auth.htpasswd.empty() ? config.primary / "secrets" / "htpasswd" : config.auth.htpasswd;
}

fs::path groups_file(Config const& config) {
  return config.auth.groups.empty() ? config.primary / "secrets" / "groups" : config.auth.groups;
}

fs::path robots_file(Config const& config) {
  return config.auth.robots.empty() ? htpasswd_file(config).parent_path() / "robots" : config.auth.robots;
}

fs::path robot_last_use_file(Config const& config) {
  return config.primary / "run" / "robots-last-used";
}

fs::path token_key_file(Config const& config) {
  return config.primary / "secrets" / "token-signing-key.pem";
}

std::optional<fs::path> find_config_file(std::optional<fs::path> const& explicit_path) {
  auto const must_exist = [](fs::path const& path, std::string_view given_by) {
    if (!file_exists(path)) {
      throw ConfigError("config file " + path.string() + " does not exist (given by " + std::string(given_by) + ")");
    }
    return path;
  };
  if (explicit_path) return must_exist(*explicit_path, "--config");
  if (char const* from_env = std::getenv("BERTH_CONFIG"); from_env != nullptr && *from_env != '\0') {
    return must_exist(from_env, "BERTH_CONFIG");
  }
  // berth.local.yaml is a developer's own copy of berth.dev.yaml, untracked (.gitignore).
  for (fs::path candidate : {"./berth.local.yaml", "./berth.dev.yaml", "/etc/berth/berth.yaml"}) {
    if (file_exists(candidate)) return candidate;
  }
  return std::nullopt;
}

std::string describe(Config const& config) {
  std::string text =
      "config=" + (config.source.empty() ? std::string("built-in defaults") : config.source.string()) + "\n";
  for (auto name : {"server.listen"sv, "volumes.primary"sv, "volumes.backup"sv, "log.level"sv, "server.threads"sv,
                    "registry.namespaces"sv, "postgres.enabled"sv, "databases"sv}) {
    text += std::string(name) + "=" + find_key(name)->show(config) + "\n";
  }
  return text;
}

}  // namespace berth::appliance
