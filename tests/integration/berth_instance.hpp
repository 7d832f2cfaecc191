// A `berth serve` process for integration tests: its own temp volume, an ephemeral port read
// back from its log, and cleanup (SIGKILL if it is still running) when the test ends.
#pragma once

#include <chrono>
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
  /// deadline) until it listens. `config_yaml` is written to the config file it is given.
  explicit BerthInstance(std::string const& config_yaml = "", std::vector<std::string> extra_args = {}) {
    auto config = dir_.write("berth.yaml", config_yaml);
    std::vector<std::string> argv = {BERTH_BINARY,    "--config",
                                     config.string(), "serve",
                                     "--listen",      "127.0.0.1:0",
                                     "--data",        (dir_.path() / "var").string(),
                                     "--backup",      (dir_.path() / "backup").string()};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    process_ = std::make_unique<Process>(argv, dir_.path() / "berth.log", dir_.path());
    auto line = process_->wait_for_output("listening address=", std::chrono::seconds(30));
    if (!line) throw std::runtime_error("berth serve did not start:\n" + process_->output());
    auto port_start = line->rfind(':') + 1;
    port_ = static_cast<std::uint16_t>(std::stoi(line->substr(port_start)));
  }

  std::uint16_t port() const { return port_; }
  Process& process() { return *process_; }
  std::filesystem::path data_dir() const { return dir_.path() / "var"; }
  TempDir const& dir() const { return dir_; }

private:
  TempDir dir_;
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

}  // namespace berth::testing
