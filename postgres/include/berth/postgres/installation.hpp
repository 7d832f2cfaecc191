// Finding the PostgreSQL server binaries (initdb, postgres) and their major version. Knows the
// Debian/Ubuntu layout (/usr/lib/postgresql/<major>/bin, several majors side by side) and falls
// back to PATH. Does not start anything but `postgres --version`.
#pragma once

#include <filesystem>
#include <string>

#include "berth/core/error.hpp"

namespace berth::postgres {

/// No usable server binaries were found; the message lists what was searched.
class InstallationNotFound : public Error {
public:
  using Error::Error;
};

struct Installation {
  std::filesystem::path bin_dir;  ///< holds `postgres` and `initdb`
  /// Major version as PG_VERSION spells it: "15", "16", or "9.6" for releases before 10.
  std::string major;
  std::string version;  ///< full version, "15.6"

  std::filesystem::path binary(std::string const& name) const { return bin_dir / name; }
};

/// The installation in `bin_dir` when it is not empty; otherwise `preferred_major` under
/// `versions_root` (<root>/<major>/bin/postgres) when installed, else the highest major there,
/// otherwise `postgres` on PATH. Runs `<bin_dir>/postgres --version`. Throws InstallationNotFound
/// naming every place searched. Thread-safe; spawns a short-lived child process.
/// `preferred_major` is an existing cluster's (its PG_VERSION): a distribution upgrade installs
/// the next major beside the old one, and a data directory runs only with its own major.
Installation find_installation(std::filesystem::path const& bin_dir = {},
                               std::filesystem::path const& versions_root = "/usr/lib/postgresql",
                               std::string const& preferred_major = {});

/// The installation for the cluster in `data_dir`: its own major when it has one (PG_VERSION)
/// and that server is installed, else as find_installation().
Installation find_installation_for(std::filesystem::path const& data_dir, std::filesystem::path const& bin_dir = {});

/// "15" from "15.6", "9.6" from "9.6.24": the major version PG_VERSION holds.
std::string major_of(std::string const& version);

}  // namespace berth::postgres
