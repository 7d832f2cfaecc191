// Robot accounts: sign-ins for CI jobs and other machines, each with a random secret token
// that can expire, be revoked or be rotated without touching anyone else. A robot signs in as
// "robot+NAME" with its token as the password, over Basic or the Docker token flow, and is
// granted access like a user (by that login in `access:` grants, and through its groups).
// The robots file keeps only a SHA-256 hash of each token; tokens are 256-bit random, so a fast
// hash is enough and robot checks cost microseconds, not a bcrypt run.
// Not for people: users with passwords live in the htpasswd file (htpasswd.hpp).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/core/error.hpp"

namespace berth::proxy {

/// Robots sign in as "robot+NAME". '+' is not allowed in user or group names, so a robot login
/// can never be a user's, and it needs no quoting in a shell.
inline constexpr std::string_view robot_login_prefix = "robot+";

/// "robot+NAME".
std::string robot_login(std::string_view name);
/// NAME when `login` is "robot+NAME" with a valid account name; nullopt otherwise.
std::optional<std::string> robot_name_of(std::string_view login);

/// A fresh secret: "berth_" and 43 base64url characters of 32 random bytes. Throws berth::Error
/// when the random generator fails. Thread-safe.
std::string make_robot_secret();
/// The lowercase hex SHA-256 of `secret`: what the robots file stores.
std::string robot_secret_hash(std::string_view secret);

using RobotClock = std::chrono::system_clock;

enum class RobotState { active, expired, revoked };
/// "active", "expired", "revoked".
std::string_view to_string(RobotState state);

struct Robot {
  std::string name;                 ///< without the "robot+" prefix
  std::vector<std::string> groups;  ///< sorted
  std::string description;
  std::string secret_sha256;                      ///< robot_secret_hash() of the current secret
  RobotClock::time_point created;                 ///< whole seconds
  RobotClock::time_point secret_created;          ///< when the current secret was made (add or rotate)
  std::optional<RobotClock::time_point> expires;  ///< nullopt: never
  std::optional<RobotClock::time_point> revoked;

  RobotState state_at(RobotClock::time_point now) const;
};

/// The robots file: one JSON object per line, '#' comments and blank lines ignored (and not
/// kept: the file is written by `berth robot`).
class RobotsFile {
public:
  /// Reads `file`; a missing file reads as empty. Throws berth::Error "FILE:LINE: ..." for a
  /// malformed line, a missing or invalid field, or a duplicate robot, and for I/O errors.
  static RobotsFile read(std::filesystem::path const& file);

  std::vector<Robot> const& robots() const { return robots_; }
  Robot const* find(std::string_view name) const;
  Robot* find(std::string_view name);
  /// Adds `robot`, or replaces the one of the same name in place.
  void set(Robot robot);
  /// False when there was no such robot.
  bool remove(std::string_view name);

  /// Writes atomically with mode 0640 for a new file, as HtpasswdFile::write. Throws berth::Error.
  void write(std::filesystem::path const& file) const;

private:
  std::vector<Robot> robots_;
};

/// When each robot last signed in, as `berth serve` records it (to the minute): "NAME TIME" lines.
/// A missing or unreadable file reads as empty (the record is informational).
std::map<std::string, RobotClock::time_point> read_robot_last_use(std::filesystem::path const& file);

/// "2026-11-27T22:54:44Z".
std::string format_robot_time(RobotClock::time_point time);

/// What a robot sign-in came to.
enum class RobotCheck { ok, wrong_secret, expired, revoked };

/// The robots file as the running server sees it: it looks at the file's identity (inode, size,
/// mtime) on every call and re-reads it when `berth robot` (or anyone) has replaced it, so add,
/// revoke, rotate and del apply at once. While the file cannot be read or parsed, every robot is
/// refused (the error is logged once per change). Successful sign-ins are recorded in
/// `last_use_file` (when not empty), written at most once a minute. Thread-safe.
class RobotChecker {
public:
  RobotChecker(std::filesystem::path robots_file, std::filesystem::path last_use_file);
  ~RobotChecker();
  RobotChecker(RobotChecker const&) = delete;
  RobotChecker& operator=(RobotChecker const&) = delete;

  /// Checks robot `name`'s secret (compared in constant time), then its state. An unknown
  /// robot is wrong_secret.
  RobotCheck check(std::string_view name, std::string_view secret) const;
  /// Whether a bearer token issued to robot `name` at `issued_at` still stands: the robot
  /// exists, is active, and its secret was not rotated after the token was issued.
  bool token_stands(std::string_view name, RobotClock::time_point issued_at) const;
  /// The groups robot `name` is in (empty for an unknown robot).
  std::vector<std::string> groups_of(std::string_view name) const;
  /// The robot names of the file as last read (every state).
  std::vector<std::string> names() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace berth::proxy
