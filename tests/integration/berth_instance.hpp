// A `berth serve` process for integration tests: its own temp volume, an ephemeral port read
// back from its log, and cleanup (SIGKILL if it is still running) when the test ends.
#pragma once

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::testing {

class BerthInstance {
public:
  /// Starts `berth serve` on 127.0.0.1:0 with data under a fresh temp dir and waits (with a
  /// deadline) until it listens. `config_yaml` is written to the config file it is given; unless
  /// it has a `postgres:` section, PostgreSQL is disabled (most tests do not need it, and initdb
  /// takes seconds).
  explicit BerthInstance(std::string const& config_yaml = "", std::vector<std::string> extra_args = {})
      : extra_args_(std::move(extra_args)) {
    // mkdtemp makes the directory 0700; PostgreSQL's OS user (when root) has to pass through it.
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::others_exec, std::filesystem::perm_options::add);
    auto const postgres = config_yaml.find("postgres:") == std::string::npos ? "postgres:\n  enabled: false\n" : "";
    // The volumes go into the file too, so that other commands (command()) see the same ones.
    config_ = dir_.write("berth.yaml", config_yaml + "\n" + postgres + "volumes:\n  primary: " + data_dir().string() +
                                           "\n  backup: " + backup_dir().string() + "\n");
    start();
  }

  /// Starts (again) on the same volume; the port may change.
  void start() {
    std::vector<std::string> argv = {BERTH_BINARY,  "--config", config_.string(),    "serve",    "--listen",
                                     "127.0.0.1:0", "--data",   data_dir().string(), "--backup", backup_dir().string()};
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    process_.reset();
    process_ =
        std::make_unique<Process>(argv, dir_.path() / ("berth-" + std::to_string(++starts_) + ".log"), dir_.path());
    // The front door listens once PostgreSQL (when enabled) is ready: initdb on a first start.
    auto line = process_->wait_for_output("listening address=", std::chrono::seconds(90));
    if (!line) throw std::runtime_error("berth serve did not start:\n" + process_->output());
    auto port_start = line->rfind(':') + 1;
    port_ = static_cast<std::uint16_t>(std::stoi(line->substr(port_start)));
  }

  /// kill -9, as a power cut or the OOM killer would, and reap it.
  void kill_hard() {
    process_->send_signal(SIGKILL);
    process_->wait_exit(std::chrono::seconds(10));
  }

  /// Runs another berth command against the same configuration and volume.
  RunResult command(std::vector<std::string> args) const {
    std::vector<std::string> argv = {BERTH_BINARY, "--config", config_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }

  std::uint16_t port() const { return port_; }
  std::filesystem::path const& config_file() const { return config_; }
  Process& process() { return *process_; }
  std::filesystem::path data_dir() const { return dir_.path() / "var"; }
  std::filesystem::path backup_dir() const { return dir_.path() / "backup"; }
  TempDir const& dir() const { return dir_; }

private:
  TempDir dir_;
  std::filesystem::path config_;
  std::vector<std::string> extra_args_;
  int starts_ = 0;
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

}  // namespace berth::testing
