#include "berth/postgres/installation.hpp"

#include <unistd.h>

#include <fstream>

#include <boost/process/search_path.hpp>

#include "command.hpp"

namespace berth::postgres {

namespace fs = std::filesystem;

namespace {

bool is_executable(fs::path const& file) {
  return ::access(file.c_str(), X_OK) == 0 && fs::is_regular_file(file);
}

// Orders "9.6" < "15" < "16": compare numerically, part by part.
bool older_major(std::string const& a, std::string const& b) {
  auto number = [](std::string const& text, std::size_t part) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < part && start != std::string::npos; ++i) {
      start = text.find('.', start);
      if (start != std::string::npos) ++start;
    }
    return start == std::string::npos ? 0 : std::atoi(text.c_str() + start);
  };
  for (std::size_t part = 0; part < 2; ++part)
    if (number(a, part) != number(b, part)) return number(a, part) < number(b, part);
  return false;
}

Installation probe(fs::path const& bin_dir) {
  auto const postgres = bin_dir / "postgres";
  auto result = detail::run_command(postgres, {"--version"});
  // "postgres (PostgreSQL) 15.6 (Debian 15.6-0+deb12u1)"
  std::string const marker = "(PostgreSQL) ";
  auto const at = result.output.find(marker);
  if (result.exit_code != 0 || at == std::string::npos)
    throw InstallationNotFound("cannot read the version of " + postgres.string() +
                               ": `postgres --version` said: " + result.output);
  auto const start = at + marker.size();
  auto const end = result.output.find_first_not_of("0123456789.", start);
  Installation installation;
  installation.bin_dir = bin_dir;
  installation.version = result.output.substr(start, end - start);
  installation.major = major_of(installation.version);
  if (installation.major.empty())
    throw InstallationNotFound("cannot read the version of " + postgres.string() + " from: " + result.output);
  return installation;
}

}  // namespace

std::string major_of(std::string const& version) {
  auto const first_dot = version.find('.');
  if (first_dot == std::string::npos) return version;
  if (std::atoi(version.c_str()) >= 10) return version.substr(0, first_dot);
  return version.substr(0, version.find('.', first_dot + 1));
}

Installation find_installation(fs::path const& bin_dir, fs::path const& versions_root,
                               std::string const& preferred_major) {
  if (!bin_dir.empty()) {
    if (!is_executable(bin_dir / "postgres") || !is_executable(bin_dir / "initdb"))
      throw InstallationNotFound("no PostgreSQL server in " + bin_dir.string() +
                                 " (postgres.bin_dir): postgres or initdb is missing or not executable");
    return probe(bin_dir);
  }

  // Debian/Ubuntu install each major side by side; a new cluster gets the newest one.
  if (!preferred_major.empty() && preferred_major.find('/') == std::string::npos) {
    auto const dir = versions_root / preferred_major / "bin";
    if (is_executable(dir / "postgres") && is_executable(dir / "initdb")) return probe(dir);
  }
  std::string best_major;
  fs::path best_dir;
  std::error_code ec;
  for (auto const& entry : fs::directory_iterator(versions_root, ec)) {
    auto const dir = entry.path() / "bin";
    auto const major = entry.path().filename().string();
    if (!is_executable(dir / "postgres") || !is_executable(dir / "initdb")) continue;
    if (best_dir.empty() || older_major(best_major, major)) {
      best_major = major;
      best_dir = dir;
    }
  }
  if (!best_dir.empty()) return probe(best_dir);

  auto const on_path = boost::process::search_path("postgres");
  if (!on_path.empty()) {
    auto const dir = fs::path(on_path.string()).parent_path();
    if (is_executable(dir / "initdb")) return probe(dir);
  }
  throw InstallationNotFound("no PostgreSQL server found: searched " + (versions_root / "*/bin").string() +
                             " and PATH for postgres and initdb\nHINT: apt-get install postgresql");
}

Installation find_installation_for(fs::path const& data_dir, fs::path const& bin_dir) {
  std::string major;
  if (std::ifstream in(data_dir / "PG_VERSION"); in) std::getline(in, major);
  return find_installation(bin_dir, "/usr/lib/postgresql", major);
}

}  // namespace berth::postgres
