// Running a short-lived program to completion (initdb, postgres --version) with argv, optionally
// as another OS user, capturing its combined output. Private to the postgres module; the server
// itself is a long-running child managed by Cluster.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "os_user.hpp"

namespace berth::postgres::detail {

struct CommandResult {
  int exit_code = -1;  ///< 128+N when killed by signal N
  std::string output;  ///< stdout and stderr, interleaved
};

/// Runs `program` with `args` (no shell) in "/" and waits for it. With `user`, the child drops
/// to that user before exec. Throws Error when it cannot be started.
CommandResult run_command(std::filesystem::path const& program, std::vector<std::string> const& args,
                          OsUser const* user = nullptr);

}  // namespace berth::postgres::detail
