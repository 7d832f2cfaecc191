// Reading what commands print, for the integration tests: substring checks, trimmed output, and
// psql (the stock client, as an application connects) with unaligned, tuples-only output.
#pragma once

#include <string>

#include "berth/testing/process.hpp"

namespace berth::testing {

inline bool contains(std::string const& text, std::string const& part) {
  return text.find(part) != std::string::npos;
}

/// `text` without trailing spaces and newlines.
inline std::string trimmed(std::string text) {
  text.erase(text.find_last_not_of(" \n") + 1);
  return text;
}

/// Runs one SQL command with psql against `conninfo` (URL or key=value string).
inline RunResult psql(std::string const& conninfo, std::string const& sql) {
  return run({"/usr/bin/psql", conninfo, "-XAtqc", sql});
}

}  // namespace berth::testing
