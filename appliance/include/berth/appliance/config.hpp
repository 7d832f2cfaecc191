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
#include "berth/proxy/config.hpp"
#include "berth/registry/config.hpp"

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
  postgres::Config postgres;
  flyway::Config flyway;
  backup::Config snapshots;
};

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

/// Recomputes the module paths (registry root, PostgreSQL data and socket directories, backup
/// volume) from `primary` and `backup`, e.g. after a command-line override, and sets `tls_dir`
/// when it is unset (next to the config file, else on the primary volume).
void derive_paths(Config& config);

/// Which file to read: `explicit_path` (--config), else $BERTH_CONFIG, else ./berth.dev.yaml,
/// else /etc/berth/berth.yaml; nullopt means "use the built-in defaults". An explicitly named
/// file that does not exist is a ConfigError.
std::optional<std::filesystem::path> find_config_file(std::optional<std::filesystem::path> const& explicit_path);

/// A short human-readable summary of the effective settings, for `berth config check` and the
/// start-up log. Contains no secrets.
std::string describe(Config const& config);

}  // namespace berth::appliance
