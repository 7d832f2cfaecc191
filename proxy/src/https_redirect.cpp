// Redirecting plain HTTP to https. The Host header is checked to be a host name or an IP
// literal before it goes into Location, so the redirect cannot carry anything else.
#include "berth/proxy/https_redirect.hpp"

#include <algorithm>
#include <string>
#include <string_view>

namespace berth::proxy {
namespace {

// "name", "name:port", "1.2.3.4:port", "[::1]:port" → the host part, or "" when it is not
// made of the characters a host name or IP literal may hold.
std::string host_without_port(std::string_view host_header) {
  std::string_view host = host_header;
  if (host.starts_with('[')) {
    auto close = host.find(']');
    if (close == std::string_view::npos) return {};
    host = host.substr(0, close + 1);
    auto inner = host.substr(1, host.size() - 2);
    bool valid = !inner.empty() && std::all_of(inner.begin(), inner.end(), [](char ch) {
      return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.';
    });
    return valid ? std::string(host) : std::string();
  }
  host = host.substr(0, host.find(':'));
  bool valid = !host.empty() && std::all_of(host.begin(), host.end(), [](char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '-';
  });
  return valid ? std::string(host) : std::string();
}

}  // namespace

Handler https_redirect(std::uint16_t https_port) {
  return [https_port](Request const& request) -> Reply {
    auto host_header = request.headers.get("Host");
    auto host = host_header ? host_without_port(*host_header) : std::string();
    if (host.empty())
      throw HttpError(400, "BAD_REQUEST", "this port only redirects to https and needs a valid Host header");
    // Origin-form targets only ("/path?query"); an absolute-form or "*" target goes to the root.
    auto target = request.target.starts_with('/') ? request.target : std::string("/");
    Response response;
    response.status = 308;
    response.headers.set("Location",
                         "https://" + host + (https_port == 443 ? "" : ":" + std::to_string(https_port)) + target);
    response.headers.set("Cache-Control", "no-store");
    response.body = std::string();
    return response;
  };
}

}  // namespace berth::proxy
