// Token buckets per client (a user name or an IP address), for the server's request rate limit.
// The buckets live in a map split into shards, each behind its own mutex: a client's requests
// arrive on any I/O thread (connections are spread round-robin), so per-thread buckets would
// multiply the limit by the thread count, while one shared mutex would serialize every request.
// With shards, two threads only contend when they hit the same shard at the same instant, and
// the critical section is a hash lookup and some arithmetic. Buckets that have refilled
// completely are indistinguishable from new ones, so they are swept out; a cap per shard bounds
// memory even under a flood of distinct addresses.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "berth/proxy/config.hpp"

namespace berth::proxy {

class RateLimiter {
public:
  using Clock = std::chrono::steady_clock;

  /// `max_clients`: buckets kept at most (spread over the shards).
  explicit RateLimiter(RateLimit limit, std::size_t max_clients = 64 * 1024);

  bool enabled() const { return per_second_ > 0; }

  /// Takes a token from `client`'s bucket. nullopt: allowed. Otherwise the request is refused
  /// and the result is how long until the next token (at least one second, for Retry-After).
  /// Thread-safe.
  std::optional<std::chrono::seconds> take(std::string_view client, Clock::time_point now = Clock::now());

  /// Like take() but without taking the token: whether `client` has one left. Thread-safe.
  std::optional<std::chrono::seconds> check(std::string_view client, Clock::time_point now = Clock::now());

  /// Buckets currently held. Thread-safe.
  std::size_t tracked_clients();

private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
    Clock::time_point last_sweep;
  };
  static constexpr std::size_t shard_count = 16;

  std::optional<std::chrono::seconds> use(std::string_view client, Clock::time_point now, bool consume);
  void sweep(Shard& shard, Clock::time_point now);

  double per_second_;
  double burst_;
  Clock::duration refill_time_;  // an empty bucket is full again after this long
  std::size_t max_per_shard_;
  std::array<Shard, shard_count> shards_;
};

}  // namespace berth::proxy
