// The handler of the plain-HTTP listener that sits next to the TLS one: it sends every request
// to the same path on https. Not a proxy; it never serves registry content over plain HTTP.
#pragma once

#include <cstdint>

#include "berth/proxy/http.hpp"

namespace berth::proxy {

/// Answers 308 Permanent Redirect (which keeps the method and body, so registry clients that
/// PUT or POST follow it correctly) to https://HOST[:https_port]TARGET, HOST taken from the
/// request's Host header without its port and ":https_port" left out when it is 443. A
/// request without a usable Host header gets 400. Any thread.
Handler https_redirect(std::uint16_t https_port);

}  // namespace berth::proxy
