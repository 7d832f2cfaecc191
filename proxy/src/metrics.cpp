#include "berth/proxy/metrics.hpp"

#include <algorithm>

#include <spdlog/fmt/fmt.h>

namespace berth::proxy {
namespace {

constexpr std::array<std::string_view, 5> route_names{"registry", "token", "health", "other", "upstream"};

std::string_view host_of(std::string_view address) {
  if (address.starts_with('[')) {
    auto close = address.find(']');
    return address.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1);
  }
  // One colon: "ip:port". More: a bare IPv6 address.
  auto colon = address.find(':');
  if (colon != std::string_view::npos && address.find(':', colon + 1) == std::string_view::npos)
    return address.substr(0, colon);
  return address;
}

}  // namespace

RouteClass classify_route(std::string_view path) {
  if (path == "/v2" || path.starts_with("/v2/")) return RouteClass::registry;
  if (path == "/token") return RouteClass::token;
  if (path == "/healthz") return RouteClass::health;
  return RouteClass::other;
}

void Metrics::record_request(RouteClass route, int status, std::uint64_t bytes_in, std::uint64_t bytes_out,
                             double seconds) {
  auto status_class = static_cast<std::size_t>(std::clamp(status / 100, 1, 5) - 1);
  requests_[static_cast<std::size_t>(route) * status_classes + status_class].fetch_add(1, std::memory_order_relaxed);
  std::size_t bucket = 0;
  while (bucket < latency_bounds.size() && seconds > latency_bounds[bucket]) ++bucket;
  latency_buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  latency_sum_micros_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
  bytes_in_.fetch_add(bytes_in, std::memory_order_relaxed);
  bytes_out_.fetch_add(bytes_out, std::memory_order_relaxed);
}

std::uint64_t Metrics::requests(RouteClass route, int status_class) const {
  if (status_class < 1 || status_class > 5) return 0;
  return requests_[static_cast<std::size_t>(route) * status_classes + static_cast<std::size_t>(status_class - 1)].load(
      std::memory_order_relaxed);
}

std::string Metrics::render() const {
  std::string out;
  out.reserve(4096);
  auto into = std::back_inserter(out);
  out += "# HELP berth_http_requests_total HTTP requests answered, by route class and status class.\n";
  out += "# TYPE berth_http_requests_total counter\n";
  for (std::size_t route = 0; route < route_count; ++route)
    for (std::size_t status_class = 0; status_class < status_classes; ++status_class)
      fmt::format_to(into, "berth_http_requests_total{{route=\"{}\",status=\"{}xx\"}} {}\n", route_names[route],
                     status_class + 1,
                     requests_[route * status_classes + status_class].load(std::memory_order_relaxed));
  out += "# HELP berth_http_request_duration_seconds Time from request head to the end of the response.\n";
  out += "# TYPE berth_http_request_duration_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t bucket = 0; bucket < latency_buckets_.size(); ++bucket) {
    cumulative += latency_buckets_[bucket].load(std::memory_order_relaxed);
    if (bucket < latency_bounds.size())
      fmt::format_to(into, "berth_http_request_duration_seconds_bucket{{le=\"{}\"}} {}\n", latency_bounds[bucket],
                     cumulative);
    else
      fmt::format_to(into, "berth_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  }
  fmt::format_to(into, "berth_http_request_duration_seconds_sum {:.6f}\n",
                 static_cast<double>(latency_sum_micros_.load(std::memory_order_relaxed)) / 1e6);
  fmt::format_to(into, "berth_http_request_duration_seconds_count {}\n", cumulative);
  fmt::format_to(into,
                 "# HELP berth_http_received_bytes_total Request body bytes received.\n"
                 "# TYPE berth_http_received_bytes_total counter\nberth_http_received_bytes_total {}\n",
                 bytes_in_.load(std::memory_order_relaxed));
  fmt::format_to(into,
                 "# HELP berth_http_sent_bytes_total Response body bytes sent.\n"
                 "# TYPE berth_http_sent_bytes_total counter\nberth_http_sent_bytes_total {}\n",
                 bytes_out_.load(std::memory_order_relaxed));
  fmt::format_to(into,
                 "# HELP berth_auth_failures_total Requests refused for wrong or invalid credentials.\n"
                 "# TYPE berth_auth_failures_total counter\nberth_auth_failures_total {}\n",
                 auth_failures_.load(std::memory_order_relaxed));
  fmt::format_to(into,
                 "# HELP berth_http_open_connections Client connections currently open.\n"
                 "# TYPE berth_http_open_connections gauge\nberth_http_open_connections {}\n",
                 open_connections_.load(std::memory_order_relaxed));
  for (auto const& gauge : gauges_)
    fmt::format_to(into, "# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", gauge.name, gauge.help, gauge.read());
  return out;
}

void Metrics::add_gauge(std::string name, std::string help, std::function<double()> read) {
  gauges_.push_back({std::move(name), std::move(help), std::move(read)});
}

bool is_loopback_address(std::string_view remote_address) {
  auto host = host_of(remote_address);
  if (host.starts_with("::ffff:")) host.remove_prefix(7);
  return host.starts_with("127.") || host == "::1" || host == "localhost";
}

bool metrics_allowed(MetricsAccess access, std::string_view remote_address) {
  switch (access) {
    case MetricsAccess::loopback: return is_loopback_address(remote_address);
    case MetricsAccess::authenticated: return true;
    case MetricsAccess::off: return false;
  }
  return false;
}

Handler metrics_handler(std::shared_ptr<Metrics const> metrics, MetricsAccess access) {
  return [metrics = std::move(metrics), access](Request const& request) -> Reply {
    if (access == MetricsAccess::off) throw HttpError(404, "NOT_FOUND", "metrics are turned off (server.metrics)");
    if (!metrics_allowed(access, request.remote_address))
      throw HttpError(403, "DENIED", "metrics are served to loopback clients only (server.metrics)");
    Response response;
    response.headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    response.headers.set("Cache-Control", "no-store");
    response.body = metrics->render();
    return response;
  };
}

}  // namespace berth::proxy
