// Looking over the registry as a whole: what it holds (`berth registry ls`, quota usage) and
// whether it is intact (`berth registry fsck`, which can repair blobs from a good copy elsewhere).
// Safe while `berth serve` runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "berth/registry/storage.hpp"

namespace berth::registry {

struct TagSummary {
  std::string name;
  std::string digest;  ///< of the manifest it names
  std::optional<std::chrono::system_clock::time_point> pushed;
};

struct RepositorySummary {
  std::string name;
  std::vector<std::string> tags;  ///< sorted
  std::vector<TagSummary> tag_details;  ///< the same tags, with what they name and when they were pushed
  std::size_t manifests = 0;
  std::uint64_t bytes = 0;  ///< size of the blobs linked into the repository (each counted once)
};

/// Every repository whose name is `prefix` or starts with `prefix` + "/" (all when empty), sorted.
std::vector<RepositorySummary> summarize(Storage const& storage, std::string const& prefix = {});

/// Blobs linked into the repositories under `name_space` ("api" → api/…), each once: digest → bytes.
std::unordered_map<std::string, std::uint64_t> linked_blob_sizes(Storage const& storage, std::string const& name_space);

struct NamespaceUsage {
  std::string name;
  std::uint64_t bytes = 0;  ///< blobs linked into its repositories, each counted once
  std::size_t blobs = 0;
  std::optional<std::uint64_t> quota;
};
/// Usage of every configured namespace, in configuration order.
std::vector<NamespaceUsage> namespace_usage(Storage const& storage);

struct FsckReport {
  std::uint64_t blobs_checked = 0;
  std::uint64_t bytes_checked = 0;
  std::uint64_t manifests_checked = 0;
  std::uint64_t repositories_checked = 0;
  /// One line per problem, naming the object and what it breaks, e.g.
  /// "api/orders:v1: manifest sha256:… refers to missing blob sha256:…".
  std::vector<std::string> problems;
  /// One line per blob put right, e.g. "blob sha256:… was corrupt: restored from /backup/pool/…".
  std::vector<std::string> repaired;
  bool clean() const { return problems.empty(); }
};

using FsckProgress = std::function<void(Digest const&, std::uint64_t bytes)>;

/// Rehashes every blob and checks every repository's links, manifests (and what they refer
/// to), tags and referrer entries. `progress` (optional) is told each blob as it is checked.
FsckReport fsck(Storage const& storage, FsckProgress const& progress = {});

/// Where a known-good copy of a blob may be (e.g. the backup volume's pool); nullopt if nowhere.
using RepairSource = std::function<std::optional<std::filesystem::path>(Digest const&)>;

/// fsck that also repairs: a blob that is missing or fails its digest is replaced by the copy
/// `source` names when that copy hashes right (Storage::restore_blob). What cannot be repaired
/// stays a problem, naming every image it breaks.
FsckReport fsck_and_repair(Storage& storage, RepairSource const& source, FsckProgress const& progress = {});

}  // namespace berth::registry
