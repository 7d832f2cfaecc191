// `berth serve`: the long-running appliance.
#pragma once

#include "berth/appliance/config.hpp"

namespace berth::appliance {

/// Prepares the primary volume, starts every service and serves until SIGTERM/SIGINT.
/// Returns the exit code; throws berth::Error when start-up fails.
int serve(Config const& config);

}  // namespace berth::appliance
