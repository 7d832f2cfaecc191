// Named loggers for modules. `appliance` decides the sinks and level once at start-up; a module
// asks for its logger by name ("registry", "postgres", "access", ...) and gets one that writes
// to those sinks, whether it asks before or after that set-up.
#pragma once

#include <memory>
#include <string>

#include <spdlog/logger.h>

namespace berth {

/// The logger called `name`, created on first use with the default logger's sinks and level.
/// Thread-safe.
std::shared_ptr<spdlog::logger> logger(std::string const& name);

}  // namespace berth
