#include "server_settings.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

#include "berth/core/error.hpp"
#include "berth/postgres/wal_archive.hpp"
#include "command.hpp"

namespace berth::postgres::detail {

namespace {

constexpr std::uint64_t mib = 1024 * 1024;

// What berth sets itself; letting `settings` override them would break the socket location,
// the archive or supervision.
std::map<std::string, std::string> const managed = {
    {"listen_addresses", "postgres.listen"},
    {"port", "postgres.port"},
    {"unix_socket_directories", "the primary volume (run/postgres)"},
    {"data_directory", "the primary volume"},
    {"config_file", "the data directory"},
    {"hba_file",
     "postgres.listen (berth writes the rules: scram-sha-256 on the socket, loopback and, "
     "when listening beyond loopback, the directly connected networks)"},
    {"ident_file", "the data directory"},
    {"archive_mode", "volumes.backup (archiving is on whenever berth runs the cluster)"},
    {"archive_command", "berth's own WAL archiver"},
    {"archive_library", "berth's own WAL archiver"},
    {"archive_timeout", "postgres.archive_timeout"},
    {"logging_collector", "berth, which logs the server's output"},
};

bool is_word(std::string const& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string megabytes(std::uint64_t bytes) {
  return std::to_string(bytes / mib) + "MB";
}

std::string percent_escaped(std::string const& text) {
  std::string escaped;
  for (char c : text) {
    if (c == '%') escaped += '%';
    escaped += c;
  }
  return escaped;
}

}  // namespace

std::string shell_quote(std::string const& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'')
      quoted += "'\\''";
    else
      quoted += c;
  }
  return quoted + "'";
}

std::filesystem::path hba_file(Config const& config) {
  return config.data_dir / "berth_hba.conf";
}

std::string hba_rules(Config const& config) {
  bool const beyond_loopback =
      std::any_of(config.listen_addresses.begin(), config.listen_addresses.end(), [](std::string const& address) {
        return address != "localhost" && address != "::1" && !address.starts_with("127.");
      });
  std::string rules =
      "# Written by berth at every start (edits here are lost): who may connect follows postgres.listen.\n"
      "# TYPE  DATABASE     USER  ADDRESS       METHOD\n";
  for (char const* database : {"all", "replication"}) {
    rules += std::string("local   ") + database + std::string(13 - std::strlen(database), ' ') +
             "all                 scram-sha-256\n";
    for (char const* address : {"127.0.0.1/32", "::1/128"})
      rules += std::string("host    ") + database + std::string(13 - std::strlen(database), ' ') + "all   " + address +
               std::string(14 - std::strlen(address), ' ') + "scram-sha-256\n";
    if (beyond_loopback)
      rules += std::string("host    ") + database + std::string(13 - std::strlen(database), ' ') +
               "all   samenet       scram-sha-256\n";
  }
  return rules;
}

std::uint64_t physical_memory() {
  auto const pages = ::sysconf(_SC_PHYS_PAGES);
  auto const page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 1024 * mib;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

void check_settings(Installation const& installation, std::map<std::string, std::string> const& settings) {
  if (settings.empty()) return;
  auto const described = run_command(installation.binary("postgres"), {"--describe-config"});
  if (described.exit_code != 0)
    throw Error("cannot list the parameters of " + installation.binary("postgres").string() + ": " + described.output);
  std::set<std::string> known;
  std::istringstream lines(described.output);
  for (std::string line; std::getline(lines, line);) known.insert(line.substr(0, line.find('\t')));

  std::vector<std::string> problems;
  for (auto const& [name, value] : settings) {
    if (value.find_first_of("\r\n") != std::string::npos || value.find('\0') != std::string::npos) {
      problems.push_back(name + ": the value must be on one line");
      continue;
    }
    if (auto const owner = managed.find(name); owner != managed.end()) {
      problems.push_back(name + " is managed by berth; set it through " + owner->second);
      continue;
    }
    auto const dot = name.find('.');
    if (dot != std::string::npos) {
      // An extension's parameter: the server accepts any prefix.name, so only the form is checked.
      if (!is_word(name.substr(0, dot)) || !is_word(name.substr(dot + 1)))
        problems.push_back(name + " is not a parameter name");
      continue;
    }
    if (!known.contains(name)) problems.push_back(name + " is not a parameter of PostgreSQL " + installation.major);
  }
  if (problems.empty()) return;
  std::string message = "invalid postgres.settings:";
  for (auto const& problem : problems) message += "\n  " + problem;
  throw Error(message +
              "\nHINT: the names are postgresql.conf's (see `SELECT name FROM pg_settings` or "
              "https://www.postgresql.org/docs/current/runtime-config.html)");
}

std::vector<std::string> server_arguments(Config const& config, std::uint64_t memory_bytes) {
  // The server shares the box with the registry and the team's apps: an eighth of RAM for
  // shared_buffers (128 MB to 4 GB), and the page cache counted at half of RAM.
  auto const shared_buffers = std::clamp<std::uint64_t>(memory_bytes / 8, 128 * mib, 4096 * mib);
  std::map<std::string, std::string> values = {
      {"shared_buffers", megabytes(shared_buffers)},
      {"effective_cache_size", megabytes(std::max<std::uint64_t>(memory_bytes / 2, 256 * mib))},
      {"max_connections", "100"},
      {"password_encryption", "scram-sha-256"},
      {"log_line_prefix", "[%p] %q%u@%d "},  // berth's log adds the time
      {"log_min_duration_statement", "5000"},
      // JIT needs writable+executable memory, which the hardened service forbids
      // (MemoryDenyWriteExecute); small servers gain little from it.
      {"jit", "off"},
  };
  for (auto const& [name, value] : config.settings) values[name] = value;

  std::string listen;
  for (auto const& address : config.listen_addresses) listen += (listen.empty() ? "" : ",") + address;
  values["listen_addresses"] = listen;
  values["hba_file"] = hba_file(config).string();
  if (!config.wal_archive_dir.empty()) {
    values["archive_mode"] = "on";
    // Run through /bin/sh by the archiver; %p and %f are the server's, so literal % doubles.
    values["archive_command"] =
        percent_escaped(shell_quote(config.archiver_program.string())) + " archive-wal --to " +
        percent_escaped(shell_quote(config.wal_archive_dir.string())) + " --state " +
        percent_escaped(shell_quote(archive_failure_file(config.socket_dir).string())) + " %p %f";
    values["archive_timeout"] = std::to_string(config.archive_timeout.count());
  }

  std::vector<std::string> arguments;
  for (auto const& [name, value] : values) {
    arguments.push_back("-c");
    arguments.push_back(name + "=" + value);
  }
  return arguments;
}

}  // namespace berth::postgres::detail
