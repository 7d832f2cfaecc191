// A child process for tests: argv (no shell), stdout+stderr captured to a file the test can
// search, signals, exit status, RSS. The destructor kills and reaps a child still running.
#pragma once

#include <sys/types.h>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace berth::testing {

class Process {
public:
  /// Starts argv[0] (a path) with argv, in `work_dir` when given, with `extra_env` ("K=V")
  /// added to the environment; output goes to `log_file`.
  Process(std::vector<std::string> argv, std::filesystem::path log_file,
          std::optional<std::filesystem::path> work_dir = std::nullopt, std::vector<std::string> extra_env = {});
  ~Process();
  Process(Process const&) = delete;
  Process& operator=(Process const&) = delete;

  pid_t pid() const { return pid_; }
  /// Everything the child has written so far.
  std::string output() const;
  /// Waits until the output contains `text`; returns the first line containing it, or nullopt
  /// on timeout or when the child exits first.
  std::optional<std::string> wait_for_output(std::string const& text, std::chrono::milliseconds timeout);
  void send_signal(int signal_number) const;
  /// Waits for exit; returns the exit code (128+N for signal N), or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  bool running();
  /// Resident set size in KiB from /proc, or 0 if unavailable.
  long rss_kib() const;

private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::filesystem::path log_file_;
};

/// Runs a command to completion (argv, no shell) and returns its exit code and combined output.
struct RunResult {
  int exit_code = -1;
  std::string output;
};
RunResult run(std::vector<std::string> argv, std::vector<std::string> extra_env = {},
              std::optional<std::filesystem::path> work_dir = std::nullopt);

}  // namespace berth::testing
