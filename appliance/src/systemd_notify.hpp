// The sd_notify protocol (Type=notify services), without linking libsystemd.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace berth::appliance {

/// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...") to $NOTIFY_SOCKET; does nothing when
/// not started by systemd. Failures are logged, never thrown: the service runs on regardless.
void notify_systemd(std::string_view state);

/// How often to send "WATCHDOG=1": half of $WATCHDOG_USEC (WatchdogSec= in the unit), or nullopt
/// when systemd watches no process, or another one ($WATCHDOG_PID names a different pid).
/// Malformed values are logged and treated as unset. At least 1 ms.
std::optional<std::chrono::milliseconds> watchdog_interval();

}  // namespace berth::appliance
