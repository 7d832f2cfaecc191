// Tests of berth.yaml loading: every key, the exact operator-facing error messages, the order in
// which the config file is looked for, and that the shipped example and dev configs are valid.
// Each test writes its YAML into a fresh temp dir; none touches /etc or the real environment.
#include "berth/appliance/config.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace berth::appliance {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A directory under $TMPDIR that exists for one test and is removed with everything in it.
class TempDir {
public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "berth-config-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("cannot create temp dir: " + std::string(std::strerror(errno)));
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(TempDir const&) = delete;
  TempDir& operator=(TempDir const&) = delete;

  fs::path const& path() const { return path_; }

  fs::path write(fs::path const& name, std::string_view text) const {
    auto const file = path_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

private:
  fs::path path_;
};

// Sets or unsets an environment variable for one scope, then puts the old value back.
class ScopedEnv {
public:
  ScopedEnv(char const* name, char const* value) : name_(name) {
    if (char const* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(ScopedEnv const&) = delete;
  ScopedEnv& operator=(ScopedEnv const&) = delete;

private:
  std::string name_;
  std::optional<std::string> old_;
};

// Changes the working directory for one scope.
class ScopedCwd {
public:
  explicit ScopedCwd(fs::path const& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~ScopedCwd() {
    std::error_code ignored;
    fs::current_path(old_, ignored);
  }
  ScopedCwd(ScopedCwd const&) = delete;
  ScopedCwd& operator=(ScopedCwd const&) = delete;

private:
  fs::path old_;
};

Config load_yaml(std::string_view yaml) {
  TempDir dir;
  return load_config(dir.write("berth.yaml", yaml));
}

// The ConfigError message for `file`, or "(no error)".
std::string error_loading(fs::path const& file) {
  try {
    load_config(file);
  } catch (ConfigError const& error) {
    return error.what();
  }
  return "(no error)";
}

// The ConfigError message for `yaml`, with the temp file's path (which differs per run)
// written as FILE; everything after it is compared exactly.
std::string error_for(std::string_view yaml) {
  TempDir dir;
  auto const file = dir.write("berth.yaml", yaml);
  auto message = error_loading(file);
  if (message.starts_with(file.string())) message.replace(0, file.string().size(), "FILE");
  return message;
}

std::string read_text(fs::path const& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every leaf key of the schema, by its last name segment, as written in a YAML file.
constexpr std::string_view leaf_keys[] = {
    "keep_last",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "level",
    "primary",
    "backup",
    "listen",
    "threads",
    "max_header_bytes",
    "header_timeout",
    "idle_timeout",
    "io_timeout",
    "shutdown_grace",
    "access",
    "max_connections_per_ip",
    "metrics",
    "burst",
    "requests_per_second",
    "namespaces",
    "delete_enabled",
    "max_manifest_bytes",
    "upload_expiry",
    "interval",
    "grace_period",
    "delete_untagged",
    "quotas",
    "rate",
    "retention",
    "immutable_tags",
    "enabled",
    "os_user",
    "port",
    "wal_archive",
    "archive_timeout",
    "settings",
    "databases",
    "access",
    "htpasswd",
    "groups",
    "token_lifetime",
    "http_redirect_listen",
    "enabled",
    "cert",
    "key",
    "dir",
    "hostnames",
    "trusted_proxies",
    "routes",
    "targets",
};

TEST(Config, DefaultsAreTheDevelopmentSettings) {
  auto const config = default_config();
  EXPECT_TRUE(config.source.empty());
  EXPECT_EQ(config.log_level, "info");
  EXPECT_EQ(config.primary, "var");
  EXPECT_EQ(config.backup, "var/backup");
  EXPECT_EQ(config.server.host, "127.0.0.1");
  EXPECT_EQ(config.server.port, 5000);
  EXPECT_EQ(config.server.threads, 0u);
  EXPECT_EQ(config.server.max_header_bytes, 16u * 1024);
  EXPECT_EQ(config.server.header_timeout, 30s);
  EXPECT_EQ(config.server.idle_timeout, 120s);
  EXPECT_EQ(config.server.io_timeout, 60s);
  EXPECT_EQ(config.server.shutdown_grace, 25s);
  EXPECT_EQ(config.server.max_connections_per_ip, 64u);
  EXPECT_EQ(config.server.rate_limit.per_second, 0);
  EXPECT_TRUE(config.server.access_log);
  EXPECT_EQ(config.server.metrics, proxy::MetricsAccess::loopback);
  EXPECT_EQ(config.registry.root, "var/registry");
  EXPECT_EQ(config.postgres.data_dir, "var/postgres");
  EXPECT_EQ(config.postgres.socket_dir, "var/run/postgres");
  EXPECT_EQ(config.postgres.secrets_dir, "var/secrets");
  EXPECT_EQ(config.postgres.wal_archive_dir, "var/backup/wal");
  EXPECT_EQ(config.snapshots.volume, "var/backup");
}

TEST(Config, DerivePathsFollowsTheVolumes) {
  Config config;
  config.primary = "/data/berth";
  config.backup = "/mnt/second-disk";
  derive_paths(config);
  EXPECT_EQ(config.registry.root, "/data/berth/registry");
  EXPECT_EQ(config.postgres.data_dir, "/data/berth/postgres");
  EXPECT_EQ(config.postgres.socket_dir, "/data/berth/run/postgres");
  EXPECT_EQ(config.snapshots.volume, "/mnt/second-disk");
}

TEST(Config, LoadsEveryKey) {
  TempDir dir;
  auto const file = dir.write("berth.yaml", R"(
log:
  level: debug
  access: false
volumes:
  primary: /data/berth
  backup: /mnt/backup
server:
  max_connections_per_ip: 0
  metrics: authenticated
  rate_limit:
    requests_per_second: 20
    burst: 100
  listen: 10.1.2.3:8080
  threads: 8
  max_header_bytes: 64KiB
  header_timeout: 10s
  idle_timeout: 2m
  io_timeout: 59m30s
  shutdown_grace: 0
)");
  auto const config = load_config(file);
  EXPECT_EQ(config.source, file);
  EXPECT_EQ(config.log_level, "debug");
  EXPECT_EQ(config.primary, "/data/berth");
  EXPECT_EQ(config.backup, "/mnt/backup");
  EXPECT_EQ(config.server.host, "10.1.2.3");
  EXPECT_EQ(config.server.port, 8080);
  EXPECT_EQ(config.server.threads, 8u);
  EXPECT_EQ(config.server.max_header_bytes, 64u * 1024);
  EXPECT_EQ(config.server.header_timeout, 10s);
  EXPECT_EQ(config.server.idle_timeout, 120s);
  EXPECT_EQ(config.server.io_timeout, 3570s);
  EXPECT_EQ(config.server.shutdown_grace, 0s);
  EXPECT_FALSE(config.server.access_log);
  EXPECT_EQ(config.server.max_connections_per_ip, 0u);
  EXPECT_EQ(config.server.metrics, proxy::MetricsAccess::authenticated);
  EXPECT_EQ(config.server.rate_limit.per_second, 20);
  EXPECT_EQ(config.server.rate_limit.burst, 100u);
  EXPECT_EQ(config.registry.root, "/data/berth/registry");
  EXPECT_EQ(config.postgres.data_dir, "/data/berth/postgres");
  EXPECT_EQ(config.postgres.socket_dir, "/data/berth/run/postgres");
  EXPECT_EQ(config.snapshots.volume, "/mnt/backup");
}

TEST(Config, KeysLeftOutKeepTheirDefaults) {
  auto const config = load_yaml("server:\n  threads: 3\n");
  EXPECT_EQ(config.server.threads, 3u);
  EXPECT_EQ(config.server.host, "127.0.0.1");
  EXPECT_EQ(config.server.port, 5000);
  EXPECT_EQ(config.log_level, "info");
  EXPECT_EQ(config.server.idle_timeout, 120s);
  // Only paths written in the file are taken relative to it; defaults stay as built in.
  EXPECT_EQ(config.primary, "var");
  EXPECT_EQ(config.registry.root, "var/registry");
}

TEST(Config, ResolvesRelativeVolumesAgainstTheConfigFilesDirectory) {
  TempDir dir;
  auto const file = dir.write("etc/berth.yaml", "volumes:\n  primary: ./data/../state\n  backup: ../backup\n");
  auto const config = load_config(file);
  EXPECT_EQ(config.primary, dir.path() / "etc/state");
  EXPECT_EQ(config.backup, dir.path() / "backup");
  EXPECT_EQ(config.registry.root, dir.path() / "etc/state/registry");
  EXPECT_EQ(config.snapshots.volume, dir.path() / "backup");
}

TEST(Config, ResolvesRelativeVolumesWhenTheConfigPathIsRelative) {
  TempDir dir;
  dir.write("berth.yaml", "volumes:\n  primary: var\n");
  ScopedCwd cwd(dir.path());
  auto const config = load_config("berth.yaml");
  EXPECT_EQ(config.primary, (fs::current_path() / "var").lexically_normal());
  EXPECT_EQ(config.source, (fs::current_path() / "berth.yaml").lexically_normal());
}

TEST(Config, KeepsAbsoluteVolumesAsWritten) {
  auto const config = load_yaml("volumes:\n  primary: /var/lib/berth/\n  backup: /srv//berth-backup\n");
  EXPECT_EQ(config.primary, "/var/lib/berth/");
  EXPECT_EQ(config.backup, "/srv/berth-backup");
}

TEST(Config, ParsesListenAddresses) {
  struct Case {
    std::string_view yaml_value;
    std::string_view host;
    std::uint16_t port;
  };
  for (auto const& [yaml_value, host, port] : {
           Case{"127.0.0.1:5000", "127.0.0.1", 5000},
           Case{"\"[::1]:5000\"", "::1", 5000},
           Case{"'[2001:db8::17]:443'", "2001:db8::17", 443},
           Case{"\"[::]:0\"", "::", 0},
           Case{"0.0.0.0:65535", "0.0.0.0", 65535},
           Case{"localhost:0", "localhost", 0},
           Case{"registry.example.com:5000", "registry.example.com", 5000},
           Case{":5000", "0.0.0.0", 5000},
       }) {
    SCOPED_TRACE(yaml_value);
    auto const config = load_yaml("server:\n  listen: " + std::string(yaml_value) + "\n");
    EXPECT_EQ(config.server.host, host);
    EXPECT_EQ(config.server.port, port);
  }
}

TEST(Config, AcceptsPortZeroToPickAFreePort) {
  auto const config = load_yaml("server:\n  listen: 127.0.0.1:0\n");
  EXPECT_EQ(config.server.port, 0);
}

TEST(Config, RejectsListenWithoutPort) {
  EXPECT_EQ(error_for("log:\n  level: info\nserver:\n  listen: localhost\n"),
            "FILE:4:11: server.listen: expected HOST:PORT (e.g. 127.0.0.1:5000 or [::1]:5000), got "
            "\"localhost\"");
}

TEST(Config, RejectsBarePortWithAHint) {
  EXPECT_EQ(error_for("server:\n  listen: 5000\n"),
            "FILE:2:11: server.listen: expected HOST:PORT (e.g. 127.0.0.1:5000 or [::1]:5000), got "
            "5000\nHINT: write \":5000\" for all interfaces or \"127.0.0.1:5000\" for loopback only");
}

TEST(Config, RejectsUnbracketedIpv6WithAHint) {
  EXPECT_EQ(error_for("server:\n  listen: \"::1:5000\"\n"),
            "FILE:2:11: server.listen: expected HOST:PORT (e.g. 127.0.0.1:5000 or [::1]:5000), got "
            "\"::1:5000\"\nHINT: put an IPv6 address in brackets and quote it, e.g. \"[::1]:5000\"");
}

TEST(Config, RejectsPortAbove65535) {
  EXPECT_EQ(error_for("server:\n  listen: 127.0.0.1:65536\n"),
            "FILE:2:11: server.listen: expected HOST:PORT (e.g. 127.0.0.1:5000 or [::1]:5000), got "
            "\"127.0.0.1:65536\"\nHINT: the port must be from 0 to 65535 (0 picks a free port)");
}

TEST(Config, RejectsMalformedListenAddresses) {
  for (std::string_view bad :
       {"\"127.0.0.1:\"", "127.0.0.1:-1", "127.0.0.1:50a", "10.0.0.256:80", "\"[::1]\"", "\"[::1]5000\"",
        "\"[fe80::zz]:80\"", "bad_host:80", "-host:80", "\"host name:80\"", "\"\""}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(error_for("server:\n  listen: " + std::string(bad) + "\n")
                    .starts_with("FILE:2:11: server.listen: expected HOST:PORT"));
  }
}

TEST(Config, RejectsUnknownTopLevelKeyAndSuggestsTheClosest) {
  EXPECT_EQ(error_for("log:\n  level: info\nservr:\n  listen: 127.0.0.1:5000\n"),
            "FILE:3:1: unknown key \"servr\" (known keys under the top level: access, auth, backup, databases, log, "
            "postgres, promotion, "
            "registry, routes, server, "
            "volumes)\nHINT: did you mean server?");
}

TEST(Config, RejectsUnknownNestedKeyListingItsSiblings) {
  EXPECT_EQ(
      error_for("server:\n  threads: 2\n  listn: 127.0.0.1:5000\n"),
      "FILE:3:3: unknown key \"server.listn\" (known keys under server: header_timeout, "
      "http_redirect_listen, idle_timeout, io_timeout, listen, max_connections_per_ip, max_header_bytes, metrics, "
      "rate_limit, shutdown_grace, threads, tls, trusted_proxies)\n"
      "HINT: did you mean server.listen?");
}

TEST(Config, SuggestsTheRightSectionForAMisplacedKey) {
  EXPECT_EQ(error_for("listen: 127.0.0.1:5000\n"),
            "FILE:1:1: unknown key \"listen\" (known keys under the top level: access, auth, backup, databases, log, "
            "postgres, promotion, "
            "registry, routes, server, "
            "volumes)\nHINT: did you mean server.listen?");
}

TEST(Config, RejectsUnknownKeyWithoutASuggestionWhenNothingIsClose) {
  EXPECT_EQ(
      error_for("monitoring:\n  ecr: [alice]\n"),
      "FILE:1:1: unknown key \"monitoring\" (known keys under the top level: access, auth, backup, databases, log, "
      "postgres, promotion, registry, routes, server, "
      "volumes)");
}

TEST(Config, RejectsDottedKeysWrittenFlat) {
  EXPECT_EQ(
      error_for("server.listen: 127.0.0.1:5000\n"),
      "FILE:1:1: unknown key \"server.listen\" (known keys under the top level: access, auth, backup, databases, log, "
      "postgres, promotion, registry, routes, server, "
      "volumes)\nHINT: nest keys instead of joining them with dots, e.g. \"server:\" and an "
      "indented \"listen:\" below it");
}

TEST(Config, RejectsThreadsOutOfRange) {
  EXPECT_EQ(error_for("server:\n  listen: 127.0.0.1:5000\n  header_timeout: 30s\n  io_timeout: "
                      "1m\n  threads: 999\n"),
            "FILE:5:12: server.threads: expected an integer from 0 to 256, got 999");
}

TEST(Config, ParsesThreadsAtItsEdgesAndRejectsNonIntegers) {
  EXPECT_EQ(load_yaml("server:\n  threads: 0\n").server.threads, 0u);
  EXPECT_EQ(load_yaml("server:\n  threads: 256\n").server.threads, 256u);
  EXPECT_EQ(error_for("server:\n  threads: -1\n"),
            "FILE:2:12: server.threads: expected an integer from 0 to 256, got -1");
  for (std::string_view bad : {"257", "4x", "+4", "0x10", "2.5", "99999999999999999999999", "\" 4\"", "many"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(error_for("server:\n  threads: " + std::string(bad) + "\n")
                    .starts_with("FILE:2:12: server.threads: expected an integer from 0 to 256, got "));
  }
}

TEST(Config, RejectsAnUnknownLogLevel) {
  EXPECT_EQ(error_for("log:\n  level: loud\n"),
            "FILE:2:10: log.level: expected one of trace, debug, info, warn, error, critical, off, "
            "got \"loud\"");
  EXPECT_EQ(load_yaml("log:\n  level: off\n").log_level, "off");
}

TEST(Config, RejectsAnEmptyVolumePath) {
  EXPECT_EQ(error_for("volumes:\n  primary: \"\"\n"), "FILE:2:12: volumes.primary: expected a path, got \"\"");
}

TEST(Config, ParsesDurationsWithinEachKeysRange) {
  struct Case {
    std::string_view key;
    std::string_view text;
    std::chrono::seconds expected;
  };
  for (auto const& [key, text, expected] : {
           Case{"header_timeout", "30s", 30s},
           Case{"header_timeout", "5m", 300s},
           Case{"header_timeout", "1h", 3600s},
           Case{"header_timeout", "1s", 1s},
           Case{"header_timeout", "45", 45s},
           Case{"header_timeout", "59m60s", 3600s},
           Case{"idle_timeout", "1h30m", 5400s},
           Case{"idle_timeout", "24h", 86400s},
           Case{"idle_timeout", "2m5s", 125s},
           Case{"io_timeout", "3600", 3600s},
           Case{"shutdown_grace", "0", 0s},
           Case{"shutdown_grace", "0s", 0s},
       }) {
    SCOPED_TRACE(std::string(key) + ": " + std::string(text));
    auto const config = load_yaml("server:\n  " + std::string(key) + ": " + std::string(text) + "\n");
    auto const& server = config.server;
    auto const actual = key == "header_timeout" ? server.header_timeout
                        : key == "idle_timeout" ? server.idle_timeout
                        : key == "io_timeout"   ? server.io_timeout
                                                : server.shutdown_grace;
    EXPECT_EQ(actual, expected);
  }
}

TEST(Config, RejectsDurationsThatAreMalformedOrOutOfRange) {
  EXPECT_EQ(error_for("server:\n  header_timeout: soon\n"),
            "FILE:2:19: server.header_timeout: expected a duration like 30s, 5m or 1h (from 1s to "
            "1h), got \"soon\"");
  EXPECT_EQ(error_for("server:\n  header_timeout: 0s\n"),
            "FILE:2:19: server.header_timeout: expected a duration like 30s, 5m or 1h (from 1s to "
            "1h), got \"0s\"");
  EXPECT_EQ(error_for("server:\n  idle_timeout: 24h1s\n"),
            "FILE:2:17: server.idle_timeout: expected a duration like 30s, 5m or 1h (from 1s to "
            "24h), got \"24h1s\"");
  EXPECT_EQ(error_for("server:\n  shutdown_grace: 3601\n"),
            "FILE:2:19: server.shutdown_grace: expected a duration like 30s, 5m or 1h (from 0s to "
            "1h), got 3601");
  for (std::string_view bad : {"1h1s", "-5s", "5 s", "1.5h", "5x", "1d", "5m1h", "1m1m", "1h30", "s", "\"\"",
                               "99999999999999999999s", "9223372036854775807h"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(error_for("server:\n  io_timeout: " + std::string(bad) + "\n")
                    .starts_with("FILE:2:15: server.io_timeout: expected a duration like 30s, 5m or "
                                 "1h (from 1s to 1h), got "));
  }
}

TEST(Config, ParsesSizesInBytesBinaryAndDecimalUnits) {
  struct Case {
    std::string_view text;
    std::uint32_t expected;
  };
  for (auto const& [text, expected] : {
           Case{"1024", 1024},
           Case{"1024B", 1024},
           Case{"1KiB", 1024},
           Case{"16KiB", 16 * 1024},
           Case{"2KB", 2000},
           Case{"2kB", 2000},
           Case{"1MB", 1000 * 1000},
           Case{"1MiB", 1024 * 1024},
           Case{"1048576", 1024 * 1024},
       }) {
    SCOPED_TRACE(text);
    auto const config = load_yaml("server:\n  max_header_bytes: " + std::string(text) + "\n");
    EXPECT_EQ(config.server.max_header_bytes, expected);
  }
}

TEST(Config, RejectsSizesThatAreMalformedOrOutOfRange) {
  EXPECT_EQ(error_for("server:\n  max_header_bytes: 1023\n"),
            "FILE:2:21: server.max_header_bytes: expected a size like 16KiB or 1MiB (from 1KiB to "
            "1MiB), got 1023");
  EXPECT_EQ(error_for("server:\n  max_header_bytes: big\n"),
            "FILE:2:21: server.max_header_bytes: expected a size like 16KiB or 1MiB (from 1KiB to "
            "1MiB), got \"big\"");
  for (std::string_view bad : {"1048577", "1025KiB", "1GiB", "2MB", "1kiB", "16 KiB", "-1KiB", "1.5KiB", "KiB",
                               "16KiBs", "99999999999999999999", "9999999999GiB"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(error_for("server:\n  max_header_bytes: " + std::string(bad) + "\n")
                    .starts_with("FILE:2:21: server.max_header_bytes: expected a size like 16KiB "
                                 "or 1MiB (from 1KiB to 1MiB), got "));
  }
}

TEST(Config, RejectsAListWhereAValueIsExpected) {
  EXPECT_EQ(error_for("server:\n  threads: [1, 2]\n"),
            "FILE:2:12: server.threads: expected an integer from 0 to 256, got a list");
}

TEST(Config, RejectsAMapWhereAValueIsExpected) {
  EXPECT_EQ(error_for("log:\n  level:\n    name: info\n"),
            "FILE:3:5: log.level: expected one of trace, debug, info, warn, error, critical, off, "
            "got a map");
}

TEST(Config, RejectsAnEmptyValueAtItsKey) {
  EXPECT_EQ(error_for("server:\n  threads:\n  listen: 127.0.0.1:5000\n"),
            "FILE:2:3: server.threads: expected an integer from 0 to 256, got an empty value");
}

TEST(Config, RejectsAValueWhereASectionIsExpected) {
  EXPECT_EQ(
      error_for("server: 127.0.0.1:5000\n"),
      "FILE:1:9: server: expected a map (known keys under server: header_timeout, "
      "http_redirect_listen, idle_timeout, io_timeout, listen, max_connections_per_ip, max_header_bytes, metrics, "
      "rate_limit, shutdown_grace, threads, tls, trusted_proxies), got "
      "\"127.0.0.1:5000\"");
}

TEST(Config, RejectsATopLevelThatIsNotAMap) {
  EXPECT_EQ(error_for("- server\n- log\n"),
            "FILE:1:1: expected a map at the top level (known keys under the top level: access, auth, backup, "
            "databases, log, "
            "postgres, promotion, "
            "registry, routes, server, volumes), got a list");
  EXPECT_EQ(error_for("just text\n"),
            "FILE:1:1: expected a map at the top level (known keys under the top level: access, auth, backup, "
            "databases, log, "
            "postgres, promotion, "
            "registry, routes, server, volumes), got \"just text\"");
}

TEST(Config, RejectsDuplicateKeysNamingBothLines) {
  EXPECT_EQ(error_for("server:\n  listen: 127.0.0.1:5000\n  threads: 2\n  listen: 0.0.0.0:80\n"),
            "FILE:4:3: duplicate key \"server.listen\" on lines 2 and 4");
  EXPECT_EQ(error_for("log:\n  level: info\nserver:\n  threads: 2\nlog:\n  level: debug\n"),
            "FILE:5:1: duplicate key \"log\" on lines 1 and 5");
}

TEST(Config, ReportsYamlSyntaxErrorsWithTheirPlace) {
  EXPECT_EQ(error_for("server:\n  threads: [1, 2\n"), "FILE:3:1: YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(error_for("server:\n  listen: [::1]:5000\n"), "FILE:2:16: YAML syntax error: end of map not found");
}

TEST(Config, ReportsAQuoteLeftOpenWhereItOpens) {
  EXPECT_EQ(error_for("log:\n  level: info\nserver:\n  listen: \"127.0.0.1:5000\n  threads: 4\n"),
            "FILE:4:11: YAML syntax error: this quote is never closed on its line (YAML reads the lines below into "
            "the value)\nHINT: end the value with the same quote on the same line");
  EXPECT_EQ(error_for("server:\n  listen: '127.0.0.1:5000\n"),
            "FILE:2:11: YAML syntax error: this quote is never closed on its line (YAML reads the lines below into "
            "the value)\nHINT: end the value with the same quote on the same line");
  // ...also where the open quote breaks the structure further down.
  EXPECT_EQ(error_for("server:\n  listen: \"127.0.0.1:5000\n  threads: [1\nlog:\n  level: info\n")
                .substr(0, 47),
            "FILE:2:11: YAML syntax error: this quote is nev");
  // Quotes inside values and comments are not openings.
  EXPECT_EQ(error_for("server:\n  listen: [::1]:5000  # it's \"quoted\n"),
            "FILE:2:16: YAML syntax error: end of map not found");
}

// One run names every mistake, each with its place, in file order.
TEST(Config, ReportsEveryWrongKeyNotOnlyTheFirst) {
  auto const message = error_for("server:\n  threads: many\n  colour: blue\nlog:\n  level: loud\n");
  auto const threads = message.find("FILE:2:12: ");
  auto const colour = message.find(".yaml:3:3: unknown key \"server.colour\"");
  auto const level = message.find(".yaml:5:10: ");
  EXPECT_NE(threads, std::string::npos) << message;
  EXPECT_NE(colour, std::string::npos) << message;
  EXPECT_NE(level, std::string::npos) << message;
  EXPECT_LT(threads, colour);
  EXPECT_LT(colour, level);
}

TEST(Config, RejectsASecondYamlDocument) {
  EXPECT_EQ(error_for("log:\n  level: info\n---\nlog:\n  level: debug\n"),
            "FILE:4:1: expected one YAML document, found a second one");
  EXPECT_EQ(load_yaml("---\nlog:\n  level: warn\n---\n").log_level, "warn");
}

TEST(Config, ReportsAMissingFileWithAHint) {
  TempDir dir;
  auto const file = dir.path() / "missing.yaml";
  EXPECT_EQ(error_loading(file), "cannot read config " + file.string() + ": " + std::strerror(ENOENT) +
                                     "\nHINT: check the path given by --config or BERTH_CONFIG");
}

TEST(Config, ReportsADirectoryAsUnreadable) {
  TempDir dir;
  EXPECT_EQ(error_loading(dir.path()), "cannot read config " + dir.path().string() + ": " + std::strerror(EISDIR) +
                                           "\nHINT: the config must be a readable YAML file");
}

TEST(Config, TreatsAnEmptyFileAsAllDefaults) {
  auto const config = load_yaml("");
  EXPECT_EQ(config.server.port, 5000);
  EXPECT_EQ(config.log_level, "info");
  EXPECT_FALSE(config.source.empty());
}

TEST(Config, TreatsACommentOnlyFileAsAllDefaults) {
  auto const config = load_yaml("# berth.yaml\n\n# server:\n#   listen: 0.0.0.0:80\n");
  EXPECT_EQ(config.server.host, "127.0.0.1");
  EXPECT_EQ(config.server.port, 5000);
}

TEST(Config, TreatsASectionWithEveryKeyCommentedOutAsDefaults) {
  auto const config = load_yaml("server:\n  # threads: 4\nlog:\n  level: warn\n");
  EXPECT_EQ(config.server.threads, 0u);
  EXPECT_EQ(config.log_level, "warn");
}

TEST(Config, FindsTheExplicitPathFirst) {
  TempDir dir;
  auto const explicit_file = dir.write("explicit.yaml", "");
  auto const env_file = dir.write("env.yaml", "");
  dir.write("berth.dev.yaml", "");
  ScopedEnv env("BERTH_CONFIG", env_file.c_str());
  ScopedCwd cwd(dir.path());
  EXPECT_EQ(find_config_file(explicit_file), explicit_file);
}

TEST(Config, RejectsAnExplicitPathThatDoesNotExist) {
  TempDir dir;
  auto const missing = dir.path() / "missing.yaml";
  try {
    find_config_file(missing);
    FAIL() << "expected ConfigError";
  } catch (ConfigError const& error) {
    EXPECT_EQ(std::string(error.what()), "config file " + missing.string() + " does not exist (given by --config)");
  }
}

TEST(Config, FindsBerthConfigFromTheEnvironmentBeforeTheWorkingDirectory) {
  TempDir dir;
  auto const env_file = dir.write("env.yaml", "");
  dir.write("berth.dev.yaml", "");
  ScopedEnv env("BERTH_CONFIG", env_file.c_str());
  ScopedCwd cwd(dir.path());
  EXPECT_EQ(find_config_file(std::nullopt), env_file);
}

TEST(Config, RejectsABerthConfigThatDoesNotExist) {
  TempDir dir;
  auto const missing = dir.path() / "missing.yaml";
  ScopedEnv env("BERTH_CONFIG", missing.c_str());
  try {
    find_config_file(std::nullopt);
    FAIL() << "expected ConfigError";
  } catch (ConfigError const& error) {
    EXPECT_EQ(std::string(error.what()), "config file " + missing.string() + " does not exist (given by BERTH_CONFIG)");
  }
}

TEST(Config, FindsTheDevConfigInTheWorkingDirectory) {
  TempDir dir;
  dir.write("berth.dev.yaml", "");
  ScopedEnv env("BERTH_CONFIG", nullptr);
  ScopedCwd cwd(dir.path());
  EXPECT_EQ(find_config_file(std::nullopt), fs::path("./berth.dev.yaml"));
}

// A developer's own settings live in an untracked berth.local.yaml, which wins over the tracked
// berth.dev.yaml (and loses to BERTH_CONFIG and --config).
TEST(Config, FindsTheLocalConfigBeforeTheDevConfig) {
  TempDir dir;
  dir.write("berth.dev.yaml", "");
  dir.write("berth.local.yaml", "");
  ScopedEnv env("BERTH_CONFIG", nullptr);
  ScopedCwd cwd(dir.path());
  EXPECT_EQ(find_config_file(std::nullopt), fs::path("./berth.local.yaml"));
  auto const env_file = dir.write("env.yaml", "");
  ScopedEnv from_env("BERTH_CONFIG", env_file.c_str());
  EXPECT_EQ(find_config_file(std::nullopt), env_file);
}

TEST(Config, FindsNothingWithoutAnyConfigFile) {
  if (fs::exists("/etc/berth/berth.yaml")) GTEST_SKIP() << "/etc/berth/berth.yaml exists here";
  TempDir dir;
  ScopedEnv env("BERTH_CONFIG", nullptr);
  ScopedCwd cwd(dir.path());
  EXPECT_EQ(find_config_file(std::nullopt), std::nullopt);
}

TEST(Config, SetOptionOverridesOneKeyLikeTheFileWould) {
  auto config = default_config();
  set_option(config, "server.listen", "[::1]:0", "--listen");
  set_option(config, "server.idle_timeout", "1h30m", "--idle-timeout");
  EXPECT_EQ(config.server.host, "::1");
  EXPECT_EQ(config.server.port, 0);
  EXPECT_EQ(config.server.idle_timeout, 5400s);
}

TEST(Config, SetOptionTakesRelativePathsFromTheWorkingDirectory) {
  TempDir dir;
  ScopedCwd cwd(dir.path());
  auto config = default_config();
  set_option(config, "volumes.primary", "data/../state", "--data");
  derive_paths(config);
  EXPECT_EQ(config.primary, fs::current_path() / "state");
  EXPECT_EQ(config.registry.root, fs::current_path() / "state/registry");
}

TEST(Config, SetOptionNamesTheOriginInErrors) {
  auto config = default_config();
  try {
    set_option(config, "server.listen", "5000", "--listen");
    FAIL() << "expected ConfigError";
  } catch (ConfigError const& error) {
    EXPECT_EQ(std::string(error.what()),
              "--listen: server.listen: expected HOST:PORT (e.g. 127.0.0.1:5000 or [::1]:5000), "
              "got 5000\nHINT: write \":5000\" for all interfaces or \"127.0.0.1:5000\" for "
              "loopback only");
  }
  try {
    set_option(config, "server.listn", "x", "--listn");
    FAIL() << "expected ConfigError";
  } catch (ConfigError const& error) {
    EXPECT_EQ(std::string(error.what()), "--listn: unknown key \"server.listn\"");
  }
  EXPECT_EQ(config.server.port, 5000);
}

TEST(Config, DescribesTheEffectiveSettings) {
  EXPECT_EQ(describe(default_config()),
            "config=built-in defaults\nserver.listen=127.0.0.1:5000\nvolumes.primary=var\n"
            "volumes.backup=var/"
            "backup\nlog.level=info\nserver.threads=auto\nregistry.namespaces=api,site,model\npostgres.enabled="
            "true\ndatabases=none\n");
  TempDir dir;
  auto const file = dir.write("berth.yaml", "server:\n  listen: \"[::1]:0\"\n  threads: 4\nlog:\n  level: warn\n");
  EXPECT_EQ(describe(load_config(file)), "config=" + file.string() +
                                             "\nserver.listen=[::1]:0\nvolumes.primary=var\nvolumes.backup=var/backup\n"
                                             "log.level=warn\nserver.threads=4\nregistry.namespaces=api,site,"
                                             "model\npostgres.enabled=true\ndatabases=none\n");
}

TEST(Config, LoadsPostgresKeysAndDatabases) {
  TempDir dir;
  auto const file = dir.write("berth.yaml", R"(
postgres:
  enabled: false
  os_user: pg-runner
  port: 5433
  listen: [127.0.0.1, "::1"]
  archive_timeout: 5m
  wal_archive: false
  settings:
    work_mem: 16MB
    pg_stat_statements.max: 1000
databases:
  - name: shop
    owner: shop_owner
    extensions: [pgcrypto, uuid-ossp]
    connection_limit: 20
    migrations: db/shop
    migrate_on_start: true
  - name: billing
)");
  auto const config = load_config(file);
  EXPECT_FALSE(config.postgres_enabled);
  EXPECT_EQ(config.postgres.os_user, "pg-runner");
  EXPECT_EQ(config.postgres.port, 5433);
  EXPECT_EQ(config.postgres.listen_addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(config.postgres.archive_timeout, 300s);
  EXPECT_EQ(config.postgres.wal_archive_dir, "");
  EXPECT_EQ(config.postgres.settings,
            (std::map<std::string, std::string>{{"pg_stat_statements.max", "1000"}, {"work_mem", "16MB"}}));
  ASSERT_EQ(config.databases.size(), 2u);
  EXPECT_EQ(config.databases[0].database.name, "shop");
  EXPECT_EQ(config.databases[0].database.owner_role(), "shop_owner");
  EXPECT_EQ(config.databases[0].database.extensions, (std::vector<std::string>{"pgcrypto", "uuid-ossp"}));
  EXPECT_EQ(config.databases[0].database.connection_limit, 20);
  EXPECT_EQ(config.databases[0].migrations, dir.path() / "db/shop");
  EXPECT_TRUE(config.databases[0].migrate_on_start);
  EXPECT_EQ(config.databases[1].database.owner_role(), "billing");
  EXPECT_EQ(config.databases[1].database.connection_limit, -1);
  EXPECT_FALSE(config.databases[1].migrate_on_start);
  EXPECT_EQ(find_application(config, "billing"), &config.databases[1]);
  EXPECT_EQ(find_application(config, "nope"), nullptr);
}

TEST(Config, RejectsBadDatabaseDeclarationsWithTheirPlace) {
  EXPECT_EQ(error_for("databases:\n  - name: shop\n    colour: blue\n"),
            "FILE:3:5: unknown key \"databases[0].colour\" (known keys of a database: name, owner, extensions, "
            "connection_limit, migrations, migrate_on_start, baseline_on_migrate, baseline_version)");
  EXPECT_EQ(error_for("databases:\n  - owner: x\n"), "FILE:2:5: databases[0]: expected a name: for the database");
  EXPECT_NE(error_for("databases:\n  - name: shop\n    baseline_version: not-a-version\n")
                .find("FILE:3:23: databases[0].baseline_version: expected a version like 1 or 2.1"),
            std::string::npos);
  EXPECT_NE(error_for("databases:\n  - name: shop\n    baseline_on_migrate: yes please\n")
                .find("FILE:3:26: databases[0].baseline_on_migrate: expected true or false"),
            std::string::npos);
  EXPECT_EQ(error_for("databases:\n  - name: shop\n  - name: shop\n"),
            "FILE:3:5: databases[1]: database shop is declared twice");
  EXPECT_EQ(error_for("databases:\n  - name: shop\n    migrate_on_start: true\n"),
            "FILE:2:5: databases[0]: migrate_on_start needs migrations: (the folder of V1__init.sql...)");
  EXPECT_EQ(error_for("databases:\n  - name: shop\n    connection_limit: -5\n"),
            "FILE:3:23: databases[0].connection_limit: expected an integer from -1 (no limit) to 100000, got -5");
  EXPECT_EQ(error_for("databases:\n  - name: Robert'); DROP TABLE students;--\n"),
            "FILE:2:5: databases[0]: database \"Robert'); DROP TABLE students;--\" may only hold lowercase letters "
            "a-z, digits and _\nHINT: names are lowercase letters, digits and _, like shop or billing_v2");
  EXPECT_EQ(error_for("databases: shop\n"),
            "FILE:1:12: databases: expected a list of databases like \"- name: shop\", got \"shop\"");
  EXPECT_EQ(error_for("postgres:\n  settings:\n    work_mem: [1, 2]\n"),
            "FILE:3:15: postgres.settings.work_mem: expected a single value, got a list");
  EXPECT_EQ(error_for("postgres:\n  listen: [\"10.0.0.256\"]\n"),
            "FILE:2:12: postgres.listen: expected an IP address, a host name or \"*\", got \"10.0.0.256\"");
  EXPECT_EQ(error_for("postgres:\n  os_user: \"a b\"\n"),
            "FILE:2:12: postgres.os_user: expected a name (letters, digits, _ and -) or \"\", got \"a b\"");
}

TEST(Config, PackagedExampleLoadsWithProductionValues) {
  auto const config = load_config(BERTH_SOURCE_DIR "/packaging/berth.yaml");
  EXPECT_EQ(config.primary, "/var/lib/berth");
  EXPECT_EQ(config.backup, "/srv/berth-backup");
  EXPECT_EQ(config.server.host, "127.0.0.1");
  EXPECT_EQ(config.server.port, 5000);
  EXPECT_EQ(config.log_level, "info");
  EXPECT_EQ(config.registry.root, "/var/lib/berth/registry");
  EXPECT_TRUE(config.server.tls.enabled);
  EXPECT_EQ(config.tls_dir, fs::path(BERTH_SOURCE_DIR "/packaging/tls").lexically_normal());
}

TEST(Config, PackagedExampleMentionsEveryKey) {
  auto const text = read_text(BERTH_SOURCE_DIR "/packaging/berth.yaml");
  for (auto key : leaf_keys) {
    std::regex const set_or_commented("(^|\\n)[ #]*" + std::string(key) + ":");
    EXPECT_TRUE(std::regex_search(text, set_or_commented)) << key << " is not in berth.yaml";
  }
}

// The example shows some keys commented out at their defaults; uncommented, they must load too,
// so that an operator who removes the "#" gets a working file.
TEST(Config, PackagedExampleCommentedOutKeysAreValid) {
  auto text = read_text(BERTH_SOURCE_DIR "/packaging/berth.yaml");
  for (auto key : leaf_keys) {
    std::regex const commented("(\\n *)# (" + std::string(key) + ":)");
    text = std::regex_replace(text, commented, "$1$2");
  }
  auto const config = load_yaml(text);
  auto const defaults = default_config();
  EXPECT_EQ(config.server.threads, defaults.server.threads);
  EXPECT_EQ(config.server.max_header_bytes, defaults.server.max_header_bytes);
  EXPECT_EQ(config.server.header_timeout, defaults.server.header_timeout);
  EXPECT_EQ(config.server.idle_timeout, defaults.server.idle_timeout);
  EXPECT_EQ(config.server.io_timeout, defaults.server.io_timeout);
  EXPECT_EQ(config.server.shutdown_grace, defaults.server.shutdown_grace);
  EXPECT_EQ(config.server.max_connections_per_ip, defaults.server.max_connections_per_ip);
  EXPECT_EQ(config.server.rate_limit.per_second, defaults.server.rate_limit.per_second);
  EXPECT_EQ(config.server.metrics, defaults.server.metrics);
}

TEST(Config, ReadsTheBackupRetention) {
  auto const defaults = default_config();
  EXPECT_EQ(defaults.snapshots.retention.keep_last, 1u);
  EXPECT_EQ(defaults.snapshots.retention.keep_daily, 7u);
  EXPECT_EQ(defaults.snapshots.retention.keep_weekly, 4u);
  EXPECT_EQ(defaults.snapshots.retention.keep_monthly, 6u);
  auto const config = load_yaml("backup:\n  keep_last: 3\n  keep_daily: 14\n  keep_weekly: 0\n  keep_monthly: 12\n");
  EXPECT_EQ(config.snapshots.retention.keep_last, 3u);
  EXPECT_EQ(config.snapshots.retention.keep_daily, 14u);
  EXPECT_EQ(config.snapshots.retention.keep_weekly, 0u);
  EXPECT_EQ(config.snapshots.retention.keep_monthly, 12u);
}

TEST(Config, ReadsTheRegistrySection) {
  auto const config = load_yaml(
      "registry:\n  namespaces: [api, ml-models]\n  delete_enabled: false\n  max_manifest_bytes: 8MiB\n"
      "  upload_expiry: 48h\n");
  EXPECT_EQ(config.registry.namespaces, (std::vector<std::string>{"api", "ml-models"}));
  EXPECT_FALSE(config.registry.delete_enabled);
  EXPECT_EQ(config.registry.max_manifest_bytes, 8u * 1024 * 1024);
  EXPECT_EQ(config.registry.upload_expiry, std::chrono::hours(48));
}

TEST(Config, RefusesBadNamespaceLists) {
  std::string const expected =
      "expected a non-empty list of distinct names like [api, site, model] (lowercase letters, digits, . _ -)";
  EXPECT_EQ(error_for("registry:\n  namespaces: api\n"),
            "FILE:2:15: registry.namespaces: " + expected + ", got \"api\"");
  EXPECT_EQ(error_for("registry:\n  namespaces: [api, Site]\n"),
            "FILE:2:15: registry.namespaces: " + expected + ", got a list");
  EXPECT_EQ(error_for("registry:\n  namespaces: [api, api]\n"),
            "FILE:2:15: registry.namespaces: " + expected + ", got a list");
  EXPECT_EQ(error_for("registry:\n  namespaces: [a/b]\n"),
            "FILE:2:15: registry.namespaces: " + expected + ", got a list");
  EXPECT_EQ(error_for("registry:\n  namespaces: []\n"), "FILE:2:15: registry.namespaces: " + expected + ", got a list");
}

TEST(Config, RefusesANonBooleanDeleteSwitch) {
  EXPECT_EQ(error_for("registry:\n  delete_enabled: maybe\n"),
            "FILE:2:19: registry.delete_enabled: expected true or false, got \"maybe\"");
}

TEST(Config, DevConfigKeepsDataUnderTheRepository) {
  auto const config = load_config(BERTH_SOURCE_DIR "/berth.dev.yaml");
  EXPECT_EQ(config.primary, fs::path(BERTH_SOURCE_DIR "/var").lexically_normal());
  EXPECT_EQ(config.backup, fs::path(BERTH_SOURCE_DIR "/var/backup").lexically_normal());
  EXPECT_EQ(config.server.host, "127.0.0.1");
  EXPECT_EQ(config.server.port, 5000);
  EXPECT_EQ(config.log_level, "info");
  EXPECT_FALSE(config.server.tls.enabled);
  EXPECT_EQ(config.tls_dir, fs::path(BERTH_SOURCE_DIR "/var/tls").lexically_normal());
}

TEST(Config, ReadsTheTlsSettings) {
  TempDir dir;
  auto const file = dir.write("etc/berth.yaml", R"(
server:
  http_redirect_listen: 0.0.0.0:80
  tls:
    enabled: true
    cert: certs/chain.pem
    key: /secure/key.pem
    dir: ./own-ca
    hostnames: [registry.example.com, 10.0.0.5, "::1"]
)");
  auto const config = load_config(file);
  EXPECT_TRUE(config.server.tls.enabled);
  EXPECT_EQ(config.server.tls.cert_chain, dir.path() / "etc/certs/chain.pem");
  EXPECT_EQ(config.server.tls.private_key, "/secure/key.pem");
  EXPECT_EQ(config.tls_dir, dir.path() / "etc/own-ca");
  EXPECT_EQ(config.tls_hostnames, (std::vector<std::string>{"registry.example.com", "10.0.0.5", "::1"}));
  ASSERT_TRUE(config.http_redirect);
  EXPECT_EQ(config.http_redirect->host, "0.0.0.0");
  EXPECT_EQ(config.http_redirect->port, 80);
}

TEST(Config, TlsIsOffByDefaultWithItsDirectoryNextToTheConfigFile) {
  TempDir dir;
  auto const config = load_config(dir.write("etc/berth.yaml", "log:\n  level: info\n"));
  EXPECT_FALSE(config.server.tls.enabled);
  EXPECT_TRUE(config.server.tls.cert_chain.empty());
  EXPECT_EQ(config.tls_dir, dir.path() / "etc/tls");
  EXPECT_TRUE(config.tls_hostnames.empty());
  EXPECT_FALSE(config.http_redirect);
  EXPECT_EQ(default_config().tls_dir, "var/tls");
}

TEST(Config, RefusesBadTlsHostnames) {
  std::string const expected =
      "expected a non-empty list of distinct host names or IP addresses like [registry.example.com, 10.0.0.5]";
  EXPECT_EQ(error_for("server:\n  tls:\n    hostnames: registry.example.com\n"),
            "FILE:3:16: server.tls.hostnames: " + expected + ", got \"registry.example.com\"");
  EXPECT_EQ(error_for("server:\n  tls:\n    hostnames: [under_score.example]\n"),
            "FILE:3:16: server.tls.hostnames: " + expected + ", got a list");
  EXPECT_EQ(error_for("server:\n  tls:\n    hostnames: [10.0.0.256]\n"),
            "FILE:3:16: server.tls.hostnames: " + expected + ", got a list");
  EXPECT_EQ(error_for("server:\n  tls:\n    hostnames: [a.example, a.example]\n"),
            "FILE:3:16: server.tls.hostnames: " + expected + ", got a list");
  EXPECT_EQ(error_for("server:\n  tls:\n    enabled: yes\n"),
            "FILE:3:14: server.tls.enabled: expected true or false, got \"yes\"");
}

TEST(Config, ReadsUsersGroupsAndGrants) {
  auto const config = load_yaml(
      "volumes:\n  primary: /data\nauth:\n  groups: /etc/berth/groups\n  token_lifetime: 10m\naccess:\n"
      "  - users: [alice]\n    groups: [ci]\n    actions: [pull, push]\n    repositories: [api/*, model/**]\n"
      "  - anonymous: true\n    actions: [pull]\n    repositories: [site]\n"
      "  - users: [carol]\n    actions: [catalog]\n");
  EXPECT_EQ(htpasswd_file(config), "/data/secrets/htpasswd");
  EXPECT_EQ(groups_file(config), "/etc/berth/groups");
  EXPECT_EQ(token_key_file(config), "/data/secrets/token-signing-key.pem");
  EXPECT_EQ(config.auth.tokens.token_lifetime, 600s);
  ASSERT_EQ(config.auth.access.size(), 3u);
  EXPECT_EQ(config.auth.access[0].users, std::vector<std::string>{"alice"});
  EXPECT_EQ(config.auth.access[0].groups, std::vector<std::string>{"ci"});
  EXPECT_EQ(config.auth.access[0].actions, (std::vector<proxy::Action>{proxy::Action::pull, proxy::Action::push}));
  EXPECT_EQ(config.auth.access[0].repositories, (std::vector<std::string>{"api/*", "model/**"}));
  EXPECT_TRUE(config.auth.access[1].anonymous);
  EXPECT_TRUE(config.auth.access[2].repositories.empty());
}

TEST(Config, RefusesGrantsThatCannotWork) {
  EXPECT_EQ(error_for("access:\n  - anonymous: true\n    actions: [pull, push]\n    repositories: [site]\n"),
            "FILE:2:5: access entry: anonymous clients may only pull\nHINT: give push and delete to users or groups");
  EXPECT_EQ(error_for("access:\n  - users: [alice]\n    actions: [pull, write]\n    repositories: [api]\n"),
            "FILE:3:14: access.actions: expected pull, push, delete or catalog, got \"write\"");
  EXPECT_EQ(error_for("access:\n  - users: [alice]\n    actions: [pull]\n"),
            "FILE:2:5: access entry: has no repositories\nHINT: add e.g. repositories: [api/*]");
  EXPECT_EQ(error_for("access:\n  - actions: [pull]\n    repositories: [api]\n"),
            "FILE:2:5: access entry: names nobody\nHINT: add users: [...], groups: [...] or anonymous: true");
  EXPECT_EQ(error_for("access:\n  - users: [alice]\n    action: [pull]\n"),
            "FILE:3:5: unknown key \"action\" in an access entry (known keys: users, groups, anonymous, actions, "
            "repositories)");
  EXPECT_EQ(error_for("access:\n  - users: [alice]\n    actions: [pull]\n    repositories: [/api]\n"),
            "FILE:4:19: access.repositories: expected a namespace, repository or glob like api, api/orders, api/* "
            "or model/**, got \"/api\"");
}

TEST(Config, RejectsBadFrontDoorLimits) {
  EXPECT_EQ(error_for("server:\n  metrics: public\n"),
            "FILE:2:12: server.metrics: expected one of loopback, authenticated, off, got \"public\"");
  EXPECT_NE(
      error_for("server:\n  rate_limit:\n    requests_per_second: -1\n").find("server.rate_limit.requests_per_second"),
      std::string::npos);
  EXPECT_NE(error_for("log:\n  access: maybe\n").find("log.access"), std::string::npos);
  EXPECT_EQ(load_yaml("server:\n  metrics: off\n").server.metrics, proxy::MetricsAccess::off);
}

TEST(Config, ReadsRoutes) {
  auto const config = load_yaml(R"(routes:
  - host: Grafana.Example.com
    upstream: http://127.0.0.1:3000
  - host: tools.example.com
    path_prefix: /wiki
    upstream: "http://[::1]:8080/"
    strip_prefix: true
    timeout: 5m
server:
  trusted_proxies: [10.0.0.2, "::1"]
)");
  ASSERT_EQ(config.server.routes.size(), 2u);
  auto const& grafana = config.server.routes[0];
  EXPECT_EQ(grafana.host, "grafana.example.com");
  EXPECT_EQ(grafana.path_prefix, "/");
  EXPECT_EQ(grafana.upstream_url(), "http://127.0.0.1:3000");
  EXPECT_FALSE(grafana.strip_prefix);
  EXPECT_EQ(grafana.timeout, std::chrono::seconds(60));
  auto const& wiki = config.server.routes[1];
  EXPECT_EQ(wiki.path_prefix, "/wiki");
  EXPECT_EQ(wiki.upstream_host, "::1");
  EXPECT_EQ(wiki.upstream_port, 8080);
  EXPECT_TRUE(wiki.strip_prefix);
  EXPECT_EQ(wiki.timeout, std::chrono::seconds(300));
  EXPECT_EQ(config.server.trusted_proxies, (std::vector<std::string>{"10.0.0.2", "::1"}));
  EXPECT_TRUE(default_config().server.routes.empty());
}

TEST(Config, RefusesBadRoutes) {
  EXPECT_EQ(error_for("routes:\n  - host: app.example.com\n    upstream: https://127.0.0.1:3000\n"),
            "FILE:3:15: routes[0].upstream: expected http://HOST:PORT like http://127.0.0.1:3000, got "
            "\"https://127.0.0.1:3000\"");
  EXPECT_EQ(error_for("routes:\n  - host: app.example.com\n    upstream: http://127.0.0.1\n"),
            "FILE:3:15: routes[0].upstream: expected http://HOST:PORT like http://127.0.0.1:3000, got "
            "\"http://127.0.0.1\"");
  EXPECT_EQ(error_for("routes:\n  - upstream: http://127.0.0.1:3000\n"),
            "FILE:2:5: routes[0]: expected a host: (the name clients use for the app)");
  EXPECT_EQ(error_for("routes:\n  - host: app.example.com\n"),
            "FILE:2:5: routes[0]: expected an upstream: like http://127.0.0.1:3000");
  EXPECT_EQ(error_for("routes:\n  - host: app.example.com\n    path_prefix: app\n    upstream: http://127.0.0.1:1\n"),
            "FILE:3:18: routes[0].path_prefix: expected a path starting with / like /grafana, got \"app\"");
  EXPECT_EQ(error_for("routes:\n  - host: a.example.com\n    upstream: http://127.0.0.1:1\n    upsteam: x\n"),
            "FILE:4:5: unknown key \"routes[0].upsteam\" (known keys of a route: host, path_prefix, upstream, "
            "strip_prefix, timeout)");
  EXPECT_EQ(error_for("routes:\n  - host: a.example.com\n    upstream: http://127.0.0.1:1\n"
                      "  - host: a.example.com\n    upstream: http://127.0.0.1:2\n"),
            "FILE:4:5: routes[1]: host a.example.com with path_prefix / is already routed to http://127.0.0.1:1");
  EXPECT_EQ(error_for("routes:\n  - host: a.example.com\n    upstream: http://127.0.0.1:1\n    timeout: 2h\n"),
            "FILE:4:14: routes[0].timeout: expected a duration like 30s, 5m or 1h (from 1s to 1h), got \"2h\"");
  EXPECT_EQ(error_for("server:\n  trusted_proxies: [proxy.example.com]\n"),
            "FILE:2:21: server.trusted_proxies: expected an IP address, got \"proxy.example.com\"");
}

// Routes come before berth's own paths, so one must not hide the registry on berth's names.
TEST(Config, RefusesARouteThatHidesTheRegistry) {
  EXPECT_EQ(error_for("server:\n  tls:\n    hostnames: [registry.example.com]\nroutes:\n"
                      "  - host: registry.example.com\n    upstream: http://127.0.0.1:3000\n"),
            "FILE: routes[0]: host registry.example.com with path_prefix / would take /v2/ from berth's registry\n"
            "HINT: give the app its own host name, or a path_prefix like /app/ that leaves /v2/ and /token to berth");
  auto const config = load_yaml(
      "server:\n  tls:\n    hostnames: [registry.example.com]\nroutes:\n"
      "  - host: registry.example.com\n    path_prefix: /grafana\n    upstream: http://127.0.0.1:3000\n");
  EXPECT_EQ(config.server.routes.size(), 1u);
}

}  // namespace
}  // namespace berth::appliance

namespace berth::appliance {
namespace {

TEST(Config, ReadsPromotionTargets) {
  auto const config = load_yaml(R"(
promotion:
  targets:
    prod:
      registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com
      repository_prefix: prod
      create_repository: true
    staging:
      registry: 127.0.0.1:5443
      region: us-east-2
      api_endpoint: https://127.0.0.1:8443
      ca_file: certs/ca.crt
)");
  ASSERT_EQ(config.promotion_targets.size(), 2u);
  auto const& prod = config.promotion_targets[0];
  EXPECT_EQ(prod.name, "prod");
  EXPECT_EQ(prod.region, "eu-west-1");  // named by the registry host
  EXPECT_EQ(prod.repository_prefix, "prod/");
  EXPECT_TRUE(prod.create_repository);
  EXPECT_TRUE(prod.api_endpoint.empty());
  auto const& staging = config.promotion_targets[1];
  EXPECT_EQ(staging.region, "us-east-2");
  EXPECT_EQ(staging.api_endpoint, "https://127.0.0.1:8443");
  EXPECT_EQ(staging.ca_file.filename(), "ca.crt");
  EXPECT_TRUE(staging.ca_file.is_absolute());
  EXPECT_TRUE(default_config().promotion_targets.empty());
}

TEST(Config, RefusesBadPromotionTargets) {
  EXPECT_EQ(error_for("promotion:\n  targets:\n    prod:\n      registry: 1.dkr.ecr.eu-west-1.amazonaws.com\n"
                      "      region: us-east-1\n"),
            "FILE:4:7: promotion.targets.prod: the registry 1.dkr.ecr.eu-west-1.amazonaws.com is in region eu-west-1, "
            "not in the configured region us-east-1");
  EXPECT_EQ(error_for("promotion:\n  targets:\n    prod:\n      region: eu-west-1\n"),
            "FILE:4:7: promotion.targets.prod: expected a registry: (ACCOUNT.dkr.ecr.REGION.amazonaws.com)");
  EXPECT_EQ(error_for("promotion:\n  targets:\n    prod:\n      registry: a.example\n      regoin: x\n"),
            "FILE:5:7: unknown key \"promotion.targets.prod.regoin\" (known keys of a target: registry, region, "
            "repository_prefix, create_repository, api_endpoint, ca_file)");
  EXPECT_EQ(error_for("promotion:\n  targets:\n    prod:\n      registry: a.example\n      region: eu-west-1\n"
                      "      api_endpoint: http://a.example\n"),
            "FILE:6:21: promotion.targets.prod.api_endpoint: expected an https:// URL, got \"http://a.example\"");
}

}  // namespace
}  // namespace berth::appliance
