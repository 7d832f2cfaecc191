// Waiting for a condition with a deadline, the only way tests wait.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

namespace berth::testing {

/// Polls `condition` every few milliseconds until it holds (true) or `timeout` passes (false).
template <class Condition>
bool eventually(std::chrono::milliseconds timeout, Condition condition) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto pause = std::chrono::milliseconds(1);; pause = std::min(pause * 2, std::chrono::milliseconds(50))) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);  // a polling interval, not a readiness guess
  }
}

}  // namespace berth::testing
