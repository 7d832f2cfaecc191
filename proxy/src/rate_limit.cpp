#include "rate_limit.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace berth::proxy {

RateLimiter::RateLimiter(RateLimit limit, std::size_t max_clients)
    : per_second_(limit.per_second),
      burst_(limit.burst ? static_cast<double>(limit.burst) : std::max(1.0, std::ceil(limit.per_second))),
      refill_time_(per_second_ > 0 ? std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(burst_ / per_second_))
                                   : Clock::duration::zero()),
      max_per_shard_(std::max<std::size_t>(1, max_clients / shard_count)) {}

std::optional<std::chrono::seconds> RateLimiter::take(std::string_view client, Clock::time_point now) {
  return use(client, now, true);
}

std::optional<std::chrono::seconds> RateLimiter::check(std::string_view client, Clock::time_point now) {
  return use(client, now, false);
}

std::size_t RateLimiter::tracked_clients() {
  std::size_t count = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    count += shard.buckets.size();
  }
  return count;
}

std::optional<std::chrono::seconds> RateLimiter::use(std::string_view client, Clock::time_point now, bool consume) {
  if (!enabled()) return std::nullopt;
  auto& shard = shards_[std::hash<std::string_view>{}(client) % shard_count];
  std::lock_guard lock(shard.mutex);
  if (now - shard.last_sweep >= std::max<Clock::duration>(refill_time_, std::chrono::seconds(10))) sweep(shard, now);
  auto found = shard.buckets.find(std::string(client));
  if (found == shard.buckets.end()) {
    if (!consume) return std::nullopt;  // a new client has a full bucket
    if (shard.buckets.size() >= max_per_shard_) {
      sweep(shard, now);
      // Still full: a flood of distinct clients. Forgetting one bucket at most lets that client
      // start over with a full bucket; memory stays bounded.
      if (shard.buckets.size() >= max_per_shard_) shard.buckets.erase(shard.buckets.begin());
    }
    shard.buckets.emplace(std::string(client), Bucket{burst_ - 1, now});
    return std::nullopt;
  }
  auto& bucket = found->second;
  double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
  bucket.tokens = std::min(burst_, bucket.tokens + std::max(0.0, elapsed) * per_second_);
  bucket.updated = std::max(bucket.updated, now);
  if (bucket.tokens >= 1) {
    if (consume) bucket.tokens -= 1;
    return std::nullopt;
  }
  auto wait = std::ceil((1 - bucket.tokens) / per_second_);
  return std::chrono::seconds(std::max<long>(1, static_cast<long>(wait)));
}

void RateLimiter::sweep(Shard& shard, Clock::time_point now) {
  shard.last_sweep = now;
  std::erase_if(shard.buckets, [&](auto const& entry) { return now - entry.second.updated >= refill_time_; });
}

}  // namespace berth::proxy
