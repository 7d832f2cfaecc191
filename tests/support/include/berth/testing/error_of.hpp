// The message of the exception an action throws, for tests that check error texts exactly.
#pragma once

#include <exception>
#include <string>

namespace berth::testing {

/// What `action` throws (any std::exception), or "(no error)" when it returns.
template <class Action>
std::string error_of(Action&& action) {
  try {
    action();
  } catch (std::exception const& error) {
    return error.what();
  }
  return "(no error)";
}

}  // namespace berth::testing
