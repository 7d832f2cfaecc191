// `berth serve` under systemd's notify protocol, with the test as systemd: a Unix datagram socket
// of its own as NOTIFY_SOCKET, WATCHDOG_USEC in the environment, and the sender of every message
// checked (SO_PASSCRED), so that only berth's own READY=1 and WATCHDOG=1 count.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Notification {
  pid_t sender = 0;
  std::string text;
};

// What systemd listens on: a datagram socket that learns each sender's pid.
class NotifySocket {
public:
  explicit NotifySocket(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    int on = 1;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0)
      throw std::runtime_error("bind " + path_.string() + ": " + std::strerror(errno));
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(NotifySocket const&) = delete;
  NotifySocket& operator=(NotifySocket const&) = delete;

  std::filesystem::path const& path() const { return path_; }

  /// The next message, or nullopt when none arrives before `deadline`.
  std::optional<Notification> receive(Clock::time_point deadline) const {
    auto const left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd ready{fd_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&ready, 1, static_cast<int>(left.count())) != 1) return std::nullopt;
    char buffer[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec data{buffer, sizeof(buffer)};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    auto const length = ::recvmsg(fd_, &message, 0);
    if (length < 0) throw std::runtime_error("recvmsg: " + std::string(std::strerror(errno)));
    Notification notification{0, std::string(buffer, static_cast<std::size_t>(length))};
    for (auto* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header))
      if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_CREDENTIALS) {
        ucred credentials{};
        std::memcpy(&credentials, CMSG_DATA(header), sizeof(credentials));
        notification.sender = credentials.pid;
      }
    return notification;
  }

private:
  std::filesystem::path path_;
  int fd_ = -1;
};

std::unique_ptr<Process> start_berth(TempDir const& dir, std::vector<std::string> env) {
  auto const config =
      dir.write("berth.yaml", "postgres:\n  enabled: false\nvolumes:\n  primary: " + (dir.path() / "var").string() +
                                  "\n  backup: " + (dir.path() / "backup").string() + "\n");
  return std::make_unique<Process>(
      std::vector<std::string>{BERTH_BINARY, "--config", config.string(), "serve", "--listen", "127.0.0.1:0"},
      dir.path() / "berth.log", dir.path(), std::move(env));
}

TEST(Watchdog, SendsReadyThenKeepalivesFromTheServeProcess) {
  TempDir dir;
  NotifySocket notify(dir.path() / "notify.sock");
  // 0.4 s watchdog: a ping every 200 ms.
  auto berth = start_berth(dir, {"NOTIFY_SOCKET=" + notify.path().string(), "WATCHDOG_USEC=400000"});

  std::vector<Notification> received;
  std::size_t pings = 0;
  auto const deadline = Clock::now() + 30s;
  while (pings < 5) {
    auto notification = notify.receive(deadline);
    ASSERT_TRUE(notification) << "no 5 keepalives before the deadline; received " << received.size()
                              << " messages; berth output:\n"
                              << berth->output();
    EXPECT_EQ(notification->sender, berth->pid()) << notification->text;
    if (notification->text == "WATCHDOG=1") ++pings;
    received.push_back(*notification);
  }
  ASSERT_FALSE(received.empty());
  // READY=1 (with its status line) comes first: systemd arms the watchdog only once the service is ready.
  EXPECT_TRUE(received.front().text.starts_with("READY=1\nSTATUS=serving on 127.0.0.1:")) << received.front().text;
  EXPECT_NE(berth->output().find("systemd watchdog on ping_interval_ms=200"), std::string::npos) << berth->output();

  // A graceful stop says STOPPING=1 and exits 0.
  berth->send_signal(SIGTERM);
  bool stopping = false;
  while (auto notification = notify.receive(Clock::now() + 20s)) {
    if (notification->text == "STOPPING=1") {
      stopping = true;
      break;
    }
  }
  EXPECT_TRUE(stopping);
  EXPECT_EQ(berth->wait_exit(30s), 0);
}

TEST(Watchdog, LeavesTheWatchdogToTheProcessSystemdNamed) {
  TempDir dir;
  NotifySocket notify(dir.path() / "notify.sock");
  // WATCHDOG_PID names another process (our own, the parent): berth must not ping for it.
  auto berth = start_berth(dir, {"NOTIFY_SOCKET=" + notify.path().string(), "WATCHDOG_USEC=2000",
                                 "WATCHDOG_PID=" + std::to_string(::getpid())});
  auto ready = notify.receive(Clock::now() + 30s);
  ASSERT_TRUE(ready) << berth->output();
  EXPECT_TRUE(ready->text.starts_with("READY=1")) << ready->text;
  // The decision is logged before READY=1; with a 1 ms interval, pings would otherwise flood in.
  EXPECT_EQ(berth->output().find("systemd watchdog on"), std::string::npos) << berth->output();
  berth->send_signal(SIGTERM);
  auto next = notify.receive(Clock::now() + 20s);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->text, "STOPPING=1");
  EXPECT_EQ(berth->wait_exit(30s), 0);
}

TEST(Watchdog, IgnoresAMalformedWatchdogUsec) {
  TempDir dir;
  NotifySocket notify(dir.path() / "notify.sock");
  auto berth = start_berth(dir, {"NOTIFY_SOCKET=" + notify.path().string(), "WATCHDOG_USEC=30s"});
  auto ready = notify.receive(Clock::now() + 30s);
  ASSERT_TRUE(ready) << berth->output();
  EXPECT_TRUE(ready->text.starts_with("READY=1")) << ready->text;
  EXPECT_NE(berth->output().find("ignoring malformed WATCHDOG_USEC=30s"), std::string::npos) << berth->output();
  EXPECT_EQ(berth->output().find("systemd watchdog on"), std::string::npos);
  berth->send_signal(SIGTERM);
  EXPECT_EQ(berth->wait_exit(30s), 0);
}

}  // namespace
}  // namespace berth::testing
