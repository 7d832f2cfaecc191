// berth.yaml: where it is found, how it is read, and the typed settings it becomes. This is the
// only place that knows YAML; every module receives its own plain config struct from here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "berth/backup/config.hpp"
#include "berth/core/error.hpp"
#include "berth/flyway/config.hpp"
#include "berth/postgres/config.hpp"
#include "berth/proxy/access.hpp"
#include "berth/proxy/auth.hpp"
#include "berth/proxy/config.hpp"
#include "berth/registry/config.hpp"
#include "berth/registry/promotion_target.hpp"

namespace berth::appliance {

/// A configuration file that cannot be used. The message starts with "FILE:LINE:COLUMN: "
/// when the problem has a place in the file, names the key, and says what form was expected.
class ConfigError : public Error {
public:
  using Error::Error;
};

/// HOST:PORT of an extra listener.
struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;
};

/// An application's database under `databases:`, with its Flyway migrations.
struct Application {
  postgres::Database database;
  std::filesystem::path migrations;  ///< folder of V1__init.sql...; empty: none
  bool migrate_on_start = false;     ///< `berth serve` applies pending migrations before serving
  /// Flyway's baselineOnMigrate: a first migrate of a database that already has tables (and no
  /// history table) baselines it at baseline_version instead of refusing.
  bool baseline_on_migrate = false;
  std::string baseline_version;  ///< empty: Flyway's default, "1"
};

/// The whole configuration, with defaults that are the development defaults (data under
/// ./var, plain HTTP on 127.0.0.1:5000). The packaged /etc/berth/berth.yaml sets production
/// values explicitly.
struct Config {
  std::filesystem::path source;                 ///< the file read; empty when built-in defaults are used
  std::string log_level = "info";               ///< trace, debug, info, warn, error, critical or off
  std::filesystem::path primary = "var";        ///< primary volume
  std::filesystem::path backup = "var/backup";  ///< backup volume
  proxy::ServerConfig server;
  std::filesystem::path tls_dir;               ///< berth's own CA and certificate; derived when empty
  std::vector<std::string> tls_hostnames;      ///< names for that certificate; empty: host name, localhost, loopback
  std::optional<ListenAddress> http_redirect;  ///< plain-HTTP listener redirecting to https
  registry::Config registry;
  bool postgres_enabled = true;  ///< berth runs its PostgreSQL cluster
  bool wal_archive = true;       ///< the cluster archives WAL to <backup>/wal
  postgres::Config postgres;
  std::vector<Application> databases;
  flyway::Config flyway;
  backup::Config snapshots;
  std::vector<registry::PromotionTarget> promotion_targets;  ///< promotion.targets, by name
  /// Users, groups and grants. Empty file paths mean the development default under
  /// <primary>/secrets; read them through htpasswd_file() and groups_file().
  struct Auth {
    std::filesystem::path htpasswd;
    std::filesystem::path groups;
    std::filesystem::path robots;
    std::vector<proxy::Grant> access;
    proxy::AuthConfig tokens;
  } auth;
};

/// The htpasswd file (auth.htpasswd, else <primary>/secrets/htpasswd).
std::filesystem::path htpasswd_file(Config const& config);
/// The group file (auth.groups, else <primary>/secrets/groups).
std::filesystem::path groups_file(Config const& config);
/// The robots file (auth.robots, else "robots" next to the htpasswd file).
std::filesystem::path robots_file(Config const& config);
/// Where `berth serve` records when each robot last signed in: <primary>/run/robots-last-used.
std::filesystem::path robot_last_use_file(Config const& config);
/// Where the registry token signing key is kept: <primary>/secrets/token-signing-key.pem.
std::filesystem::path token_key_file(Config const& config);

/// Built-in defaults, with module paths derived from the volumes.
Config default_config();

/// Reads `file` over the defaults. Relative paths in it are taken relative to the file's
/// directory. Throws ConfigError (unknown key, wrong type, out of range, YAML syntax error,
/// unreadable file).
Config load_config(std::filesystem::path const& file);

/// Sets one key from the command line (e.g. key "server.listen" from --listen), validated as
/// in a file; relative paths are taken relative to the current directory. Call derive_paths()
/// afterwards. Throws ConfigError naming `origin` (e.g. "--listen") instead of a file position.
void set_option(Config& config, std::string const& key, std::string const& value, std::string const& origin);

/// Recomputes the module paths (registry root, PostgreSQL data, socket and secrets directories,
/// WAL archive, backup volume) from `primary` and `backup`, e.g. after a command-line override,
/// and sets `tls_dir` when it is unset (next to the config file, else on the primary volume).
void derive_paths(Config& config);

/// Which file to read: `explicit_path` (--config), else $BERTH_CONFIG, else ./berth.local.yaml,
/// else ./berth.dev.yaml, else /etc/berth/berth.yaml; nullopt means "use the built-in defaults". An explicitly named
/// file that does not exist is a ConfigError.
std::optional<std::filesystem::path> find_config_file(std::optional<std::filesystem::path> const& explicit_path);

/// The application declared as `name` under `databases:`, or nullptr.
Application const* find_application(Config const& config, std::string const& name);

/// A short human-readable summary of the effective settings, for `berth config check` and the
/// start-up log. Contains no secrets.
std::string describe(Config const& config);

}  // namespace berth::appliance
