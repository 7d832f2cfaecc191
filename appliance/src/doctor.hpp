// `berth doctor`: checks an installation the way an operator would by hand (configuration,
// ownership and modes, free space, the backup volume, snapshot and WAL age, certificates,
// PostgreSQL, the clock) and says for each problem how to fix it. It reads and never repairs.
#pragma once

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "berth/appliance/config.hpp"

namespace berth::appliance {

enum class Severity { ok, warn, error };

/// One result of a check: what was found and, unless it is ok, what to do about it.
struct Finding {
  Severity level = Severity::ok;
  std::string check;  ///< short name of the check: "config", "modes", "space", "snapshot", ...
  std::string what;   ///< what was found, naming the file or volume
  std::string fix;    ///< the command or change that fixes it; empty when ok
};

/// Runs every check on `config` as of `now` (the clock check compares `now` with the build date
/// and the certificate). Never throws for what it finds: a check that cannot run is an error
/// finding. Talks to PostgreSQL only when the service is running. Blocking.
std::vector<Finding> examine(Config const& config, std::chrono::system_clock::time_point now);

/// `berth doctor`: loads the configuration with `load` (a ConfigError becomes an error finding and
/// ends the checks), prints the findings as text or, with `json`, as one JSON object, and returns
/// 1 when any finding is an error, else 0.
int doctor(std::function<Config()> const& load, bool json, std::ostream& out);

}  // namespace berth::appliance
