// Counters of the front door in the Prometheus text format, served on GET /metrics: requests by
// route class and status class, bytes in and out, a latency histogram, authentication failures
// and open connections. Counting is a few relaxed atomic additions per request; nothing is
// locked. Who may read them is a policy of its own (MetricsAccess), loopback only by default,
// since request counts and paths of a private registry are not for everyone.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "berth/proxy/config.hpp"
#include "berth/proxy/http.hpp"

namespace berth::proxy {

enum class RouteClass { registry, token, health, other, upstream };

/// registry (/v2 and below), token (/token), health (/healthz) or other. (upstream: requests
/// reverse-proxied by `routes:`, counted by the proxy itself.)
RouteClass classify_route(std::string_view path);

class Metrics {
public:
  /// Counts one answered request. Thread-safe.
  void record_request(RouteClass route, int status, std::uint64_t bytes_in, std::uint64_t bytes_out, double seconds);
  /// Counts a request refused for wrong or invalid credentials. Thread-safe.
  void record_auth_failure() { auth_failures_.fetch_add(1, std::memory_order_relaxed); }
  void connection_opened() { open_connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }

  /// Requests counted so far for `route` with a status in [100 * status_class, +100). Thread-safe.
  std::uint64_t requests(RouteClass route, int status_class) const;
  std::uint64_t auth_failures() const { return auth_failures_.load(std::memory_order_relaxed); }

  /// A gauge of another part of berth (e.g. WAL archive failures), read when /metrics is
  /// scraped. Add them before serving: not thread-safe with render().
  void add_gauge(std::string name, std::string help, std::function<double()> read);

  /// Everything in the Prometheus text exposition format 0.0.4. Thread-safe.
  std::string render() const;

private:
  struct Gauge {
    std::string name, help;
    std::function<double()> read;
  };
  std::vector<Gauge> gauges_;
  static constexpr std::size_t route_count = 5;
  static constexpr std::size_t status_classes = 5;  // 1xx .. 5xx
  static constexpr std::array<double, 10> latency_bounds{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30};
  using Counter = std::atomic<std::uint64_t>;
  std::array<Counter, route_count * status_classes> requests_{};
  std::array<Counter, latency_bounds.size() + 1> latency_buckets_{};  // the last one is +Inf
  Counter latency_sum_micros_{0};
  Counter bytes_in_{0};
  Counter bytes_out_{0};
  Counter auth_failures_{0};
  std::atomic<std::int64_t> open_connections_{0};
};

/// Whether a client at `remote_address` ("ip:port", as in Request::remote_address) may read
/// the metrics under `access`: loopback only for MetricsAccess::loopback, everyone for
/// MetricsAccess::authenticated (a guard added by the composer checks credentials), nobody for off.
bool metrics_allowed(MetricsAccess access, std::string_view remote_address);

/// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback, given "ip:port", "[ip]:port" or an IP.
bool is_loopback_address(std::string_view remote_address);

/// The GET /metrics handler: 403 DENIED when metrics_allowed() says no, 404 when access is off.
Handler metrics_handler(std::shared_ptr<Metrics const> metrics, MetricsAccess access);

}  // namespace berth::proxy
