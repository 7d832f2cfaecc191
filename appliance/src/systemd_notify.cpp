#include "systemd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>

#include "berth/core/log.hpp"

namespace berth::appliance {

void notify_systemd(std::string_view state) {
  char const* socket_path = std::getenv("NOTIFY_SOCKET");
  if (!socket_path || !*socket_path) return;
  std::string path = socket_path;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    logger("berth")->warn("systemd notify socket path too long path={}", path);
    return;
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  if (path[0] == '@') address.sun_path[0] = '\0';  // abstract namespace
  socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 ||
      ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&address), length) < 0)
    logger("berth")->warn("cannot notify systemd state={} error=\"{}\"", state, std::strerror(errno));
  if (fd >= 0) ::close(fd);
}

namespace {

std::optional<unsigned long long> unsigned_env(char const* name) {
  char const* text = std::getenv(name);
  if (!text || !*text) return std::nullopt;
  unsigned long long value = 0;
  auto const end = text + std::strlen(text);
  if (auto [rest, error] = std::from_chars(text, end, value); error != std::errc() || rest != end) {
    logger("berth")->warn("ignoring malformed {}={}", name, text);
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<std::chrono::milliseconds> watchdog_interval() {
  // The variables are inherited by children too; only the process systemd named pings.
  if (auto pid = unsigned_env("WATCHDOG_PID"); pid && *pid != static_cast<unsigned long long>(::getpid()))
    return std::nullopt;
  auto const usec = unsigned_env("WATCHDOG_USEC");
  if (!usec || *usec == 0) return std::nullopt;
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::microseconds(*usec / 2)));
}

}  // namespace berth::appliance
