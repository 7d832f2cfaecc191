#include "berth/testing/raw_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace berth::testing {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<long>(0, left.count()));
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (auto const& [field, value] : headers)
    if (iequals(field, name)) return value;
  return std::nullopt;
}

RawConnection::RawConnection(std::string const& host, std::uint16_t port) {
  sockaddr_storage address{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    length = sizeof(sockaddr_in6);
  } else {
    throw std::runtime_error("not an IP literal: " + host);
  }
  fd_ = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    std::string reason = std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("cannot connect to " + host + ":" + std::to_string(port) + ": " + reason);
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    auto sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

void RawConnection::shutdown_write() {
  ::shutdown(fd_, SHUT_WR);
}

bool RawConnection::fill(std::chrono::steady_clock::time_point deadline) {
  pollfd ready{fd_, POLLIN, 0};
  int polled = ::poll(&ready, 1, remaining_ms(deadline));
  if (polled <= 0) return false;
  char chunk[65536];
  auto got = ::recv(fd_, chunk, sizeof chunk, 0);
  if (got <= 0) return false;
  buffer_.append(chunk, static_cast<std::size_t>(got));
  return true;
}

std::optional<std::string> RawConnection::read_line(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto end = buffer_.find("\r\n");
    if (end != std::string::npos) {
      auto line = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      return line;
    }
    if (!fill(deadline)) return std::nullopt;
  }
}

std::optional<HttpResponse> RawConnection::read_response(bool head_request, std::chrono::milliseconds timeout,
                                                         std::function<void(std::string_view)> const& on_body) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  HttpResponse response;
  auto deliver = [&](std::string_view bytes) {
    response.body_bytes += bytes.size();
    if (on_body)
      on_body(bytes);
    else
      response.body.append(bytes);
  };
  for (;;) {  // skip interim 1xx responses
    auto status_line = read_line(deadline);
    if (!status_line || status_line->size() < 12) return std::nullopt;
    response.status = std::stoi(status_line->substr(9, 3));
    response.headers.clear();
    for (;;) {
      auto line = read_line(deadline);
      if (!line) return std::nullopt;
      if (line->empty()) break;
      auto colon = line->find(':');
      auto value = line->substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      response.headers.emplace_back(line->substr(0, colon), value);
    }
    if (response.status >= 200) break;
  }
  if (head_request || response.status == 204 || response.status == 304) return response;

  if (auto encoding = response.header("Transfer-Encoding"); encoding && iequals(*encoding, "chunked")) {
    for (;;) {
      auto size_line = read_line(deadline);
      if (!size_line) return std::nullopt;
      auto size = std::stoull(*size_line, nullptr, 16);
      while (buffer_.size() < size + 2)
        if (!fill(deadline)) return std::nullopt;
      deliver(std::string_view(buffer_).substr(0, size));
      buffer_.erase(0, size + 2);
      if (size == 0) return response;
    }
  }
  if (auto length = response.header("Content-Length")) {
    std::uint64_t left = std::stoull(*length);
    while (left > 0) {
      if (buffer_.empty() && !fill(deadline)) return std::nullopt;
      auto take = std::min<std::uint64_t>(left, buffer_.size());
      deliver(std::string_view(buffer_).substr(0, take));
      buffer_.erase(0, take);
      left -= take;
    }
    return response;
  }
  while (fill(deadline)) {
    deliver(buffer_);
    buffer_.clear();
  }
  return response;
}

std::optional<std::string> RawConnection::read_until(std::string_view terminator, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto end = buffer_.find(terminator);
    if (end != std::string::npos) {
      auto text = buffer_.substr(0, end + terminator.size());
      buffer_.erase(0, end + terminator.size());
      return text;
    }
    if (!fill(deadline)) return std::nullopt;
  }
}

bool RawConnection::wait_closed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pollfd ready{fd_, POLLIN, 0};
    if (::poll(&ready, 1, remaining_ms(deadline)) <= 0) return false;
    char chunk[4096];
    auto got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got <= 0) return true;
  }
}

std::optional<HttpResponse> http_request(std::string const& host, std::uint16_t port, std::string const& method,
                                         std::string const& target, std::string const& body,
                                         std::vector<std::pair<std::string, std::string>> const& headers) {
  RawConnection connection(host, port);
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n";
  for (auto const& [name, value] : headers) request += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += "\r\n" + body;
  if (!connection.send(request)) return std::nullopt;
  return connection.read_response(method == "HEAD");
}

}  // namespace berth::testing
