// The sd_notify protocol (Type=notify services), without linking libsystemd.
#pragma once

#include <string_view>

namespace berth::appliance {

/// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...") to $NOTIFY_SOCKET; does nothing when
/// not started by systemd. Failures are logged, never thrown: the service runs on regardless.
void notify_systemd(std::string_view state);

}  // namespace berth::appliance
