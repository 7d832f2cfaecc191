// Token buckets on a controlled clock: burst, refill, Retry-After, separate clients, the
// check-only path, eviction of refilled buckets and the cap on tracked clients.
#include "rate_limit.hpp"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace berth::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = RateLimiter::Clock;

TEST(RateLimiter, OffLetsEverythingThrough) {
  RateLimiter limiter(RateLimit{});
  EXPECT_FALSE(limiter.enabled());
  for (int request_idx = 0; request_idx < 1000; ++request_idx) EXPECT_FALSE(limiter.take("10.0.0.1"));
  EXPECT_EQ(limiter.tracked_clients(), 0u);
}

TEST(RateLimiter, BurstThenRefusalWithRetryAfterThenRefill) {
  RateLimiter limiter(RateLimit{.per_second = 2, .burst = 5});
  auto now = Clock::now();
  for (int request_idx = 0; request_idx < 5; ++request_idx) EXPECT_FALSE(limiter.take("alice", now));
  auto wait = limiter.take("alice", now);
  ASSERT_TRUE(wait);
  EXPECT_EQ(*wait, 1s);  // half a second rounds up: Retry-After is whole seconds
  EXPECT_TRUE(limiter.take("alice", now + 400ms));
  EXPECT_FALSE(limiter.take("alice", now + 500ms));  // one token refilled
  EXPECT_TRUE(limiter.take("alice", now + 500ms));
  EXPECT_FALSE(limiter.take("bob", now));  // another client has its own bucket
}

TEST(RateLimiter, RetryAfterCoversTheWholeWaitAtLowRates) {
  RateLimiter limiter(RateLimit{.per_second = 0.1, .burst = 1});
  auto now = Clock::now();
  EXPECT_FALSE(limiter.take("10.0.0.1", now));
  EXPECT_EQ(limiter.take("10.0.0.1", now), std::optional(10s));
}

TEST(RateLimiter, CheckDoesNotTakeATokenAndCreatesNoBucket) {
  RateLimiter limiter(RateLimit{.per_second = 1, .burst = 1});
  auto now = Clock::now();
  EXPECT_FALSE(limiter.check("10.0.0.1", now));
  EXPECT_EQ(limiter.tracked_clients(), 0u);
  EXPECT_FALSE(limiter.take("10.0.0.1", now));
  EXPECT_TRUE(limiter.check("10.0.0.1", now));
}

TEST(RateLimiter, EvictsBucketsThatHaveRefilled) {
  RateLimiter limiter(RateLimit{.per_second = 10, .burst = 10});
  auto now = Clock::now();
  for (int client_idx = 0; client_idx < 500; ++client_idx) limiter.take("10.0.0." + std::to_string(client_idx), now);
  EXPECT_EQ(limiter.tracked_clients(), 500u);
  // Past the sweep interval every idle bucket is full again and goes on the next use of its shard.
  auto later = now + 11s;
  for (int client_idx = 0; client_idx < 64; ++client_idx) limiter.take("late-" + std::to_string(client_idx), later);
  EXPECT_LT(limiter.tracked_clients(), 100u);
}

TEST(RateLimiter, MemoryIsBoundedUnderAFloodOfClients) {
  RateLimiter limiter(RateLimit{.per_second = 1, .burst = 1}, 1600);
  auto now = Clock::now();
  for (int client_idx = 0; client_idx < 20000; ++client_idx) limiter.take("c" + std::to_string(client_idx), now);
  EXPECT_LE(limiter.tracked_clients(), 1600u);
}

TEST(RateLimiter, CountsExactlyAcrossThreads) {
  RateLimiter limiter(RateLimit{.per_second = 0.001, .burst = 1000});
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int thread_idx = 0; thread_idx < 4; ++thread_idx)
    threads.emplace_back([&] {
      for (int request_idx = 0; request_idx < 500; ++request_idx)
        if (!limiter.take("shared")) ++allowed;
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(allowed.load(), 1000);
}

}  // namespace
}  // namespace berth::proxy
