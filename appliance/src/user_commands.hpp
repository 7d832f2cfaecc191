// `berth user ...`: the users in the htpasswd file and their groups in the group file. The
// service reads both at start; changes apply when it restarts.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "berth/appliance/config.hpp"

namespace berth::appliance {

/// How the password is read: from the terminal without echo (asked twice), or one line from
/// `in` (--password-stdin, for scripts). Never from the command line.
struct PasswordInput {
  bool from_stdin = false;  ///< --password-stdin
  std::istream* in = nullptr;
};

/// `berth user add NAME [--group G]...`. Throws berth::Error if the user exists, the name or
/// password is unusable, or a file cannot be written. Returns the exit code.
int user_add(Config const& config, std::string const& name, std::vector<std::string> const& groups,
             PasswordInput const& input, std::ostream& out);

/// `berth user passwd NAME`: a new password for an existing user.
int user_passwd(Config const& config, std::string const& name, PasswordInput const& input, std::ostream& out);

/// `berth user del NAME`: removes the user and their group memberships.
int user_del(Config const& config, std::string const& name, std::ostream& out);

/// `berth user list`: one line per user with their groups.
int user_list(Config const& config, bool json, std::ostream& out);

}  // namespace berth::appliance
