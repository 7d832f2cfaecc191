// The `berth` command line: parses arguments, loads the configuration, runs a subcommand.
#pragma once

namespace berth::appliance {

/// Runs `berth` with the given arguments and returns the process exit code: 0 success,
/// 1 the command failed (the reason is logged/printed), 2 the command line was wrong.
int run_cli(int argc, char** argv);

}  // namespace berth::appliance
