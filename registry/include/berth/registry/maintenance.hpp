// Looking over the registry as a whole: what it holds (`berth registry ls`) and whether it is
// intact (`berth registry fsck`). Read-only; safe while `berth serve` runs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "berth/registry/storage.hpp"

namespace berth::registry {

struct RepositorySummary {
  std::string name;
  std::vector<std::string> tags;  ///< sorted
  std::size_t manifests = 0;
  std::uint64_t bytes = 0;  ///< size of the blobs linked into the repository (each counted once)
};

/// Every repository whose name is `prefix` or starts with `prefix` + "/" (all when empty), sorted.
std::vector<RepositorySummary> summarize(Storage const& storage, std::string const& prefix = {});

struct FsckReport {
  std::uint64_t blobs_checked = 0;
  std::uint64_t bytes_checked = 0;
  std::uint64_t manifests_checked = 0;
  std::uint64_t repositories_checked = 0;
  /// One line per problem, naming the object and what it breaks, e.g.
  /// "api/orders:v1: manifest sha256:… refers to missing blob sha256:…".
  std::vector<std::string> problems;
  bool clean() const { return problems.empty(); }
};

/// Rehashes every blob and checks every repository's links, manifests (and what they refer
/// to), tags and referrer entries. `progress` (optional) is told each blob as it is checked.
FsckReport fsck(Storage const& storage, std::function<void(Digest const&, std::uint64_t bytes)> const& progress = {});

}  // namespace berth::registry
