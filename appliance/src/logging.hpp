// Log sinks and levels for the whole process: spdlog to stderr, coloured only on a terminal,
// without timestamps under journald (which adds its own).
#pragma once

#include <string>

namespace berth::appliance {

/// Installs the stderr sink as the default logger. Call once, first thing in main.
void setup_logging();

/// Sets the level of every logger, existing and future. `level` must be one of spdlog's names
/// (trace, debug, info, warn, error, critical, off); the config has validated it.
void set_log_level(std::string const& level);

}  // namespace berth::appliance
