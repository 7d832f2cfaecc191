// `berth robot ...`: robot accounts for CI and other machines, in the robots file (auth.robots).
// A robot signs in as robot+NAME with a generated token that is printed once and stored only as a
// SHA-256 hash. The running server reads the file again when it changes, so every command here
// applies at once, without a restart.
#pragma once

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "berth/appliance/config.hpp"

namespace berth::appliance {

/// A robot lifetime as --expires takes it: a number and one unit of s, m, h, d, w ("90d", "12h"),
/// from 1s to 3650d. nullopt for anything else.
std::optional<std::chrono::seconds> parse_robot_lifetime(std::string_view text);

struct RobotAddOptions {
  std::string name;
  std::vector<std::string> groups;
  std::optional<std::chrono::seconds> lifetime;  ///< --expires; nullopt: never expires
  std::string description;
};

/// `berth robot add NAME [--group G]... [--expires D] [--description T]`: prints the new token
/// alone on `out` (so that `TOKEN=$(berth robot add ci)` works) and what was done on `err`. Throws
/// berth::Error for a bad or taken name or a file that cannot be written. Returns the exit code.
int robot_add(Config const& config, RobotAddOptions const& options, std::ostream& out, std::ostream& err);

/// `berth robot list`: one line per robot with its login, state, groups, times and description.
int robot_list(Config const& config, bool json, std::ostream& out);

/// `berth robot revoke NAME`: the robot can no longer sign in; its tokens stop working at once.
int robot_revoke(Config const& config, std::string const& name, std::ostream& out);

/// `berth robot rotate NAME [--expires D]`: a new token (printed as robot_add does); the old one
/// and every bearer token issued with it stop working. Refuses a revoked robot, and an expired
/// one unless `lifetime` gives it a new expiry.
int robot_rotate(Config const& config, std::string const& name, std::optional<std::chrono::seconds> lifetime,
                 std::ostream& out, std::ostream& err);

/// `berth robot del NAME`: removes the robot.
int robot_del(Config const& config, std::string const& name, std::ostream& out);

}  // namespace berth::appliance
