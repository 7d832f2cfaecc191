#include "logging.hpp"

#include <unistd.h>
#include <cstdlib>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace berth::appliance {

void setup_logging() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
      ::isatty(STDERR_FILENO) ? spdlog::color_mode::automatic : spdlog::color_mode::never);
  auto logger = std::make_shared<spdlog::logger>("berth", sink);
  spdlog::set_default_logger(logger);
  // systemd sets JOURNAL_STREAM when stderr goes to the journal, which timestamps every line.
  if (std::getenv("JOURNAL_STREAM"))
    spdlog::set_pattern("%^%l%$ [%n] %v");
  else
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
}

void set_log_level(std::string const& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace berth::appliance
