// Per-namespace quotas, enforced when a blob is linked into a repository. Usage is counted from
// disk (each blob once per namespace, as `berth registry ls` shows it) and recounted at least
// every minute, so deletions and garbage collection by other processes are seen soon after.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "berth/registry/digest.hpp"

namespace berth::registry {

class Storage;

class QuotaLedger {
public:
  QuotaLedger(Storage const& storage, std::map<std::string, std::uint64_t> quotas);

  /// Throws QuotaExceeded when the namespace of `repository` is at or over its quota.
  void check_not_full(std::string const& repository);
  /// Records `digest` (`size` bytes) as linked into `repository`, or throws QuotaExceeded when
  /// that would take its namespace over its quota. A blob the namespace holds already is free.
  void reserve(std::string const& repository, Digest const& digest, std::uint64_t size);
  /// Forgets a link removed from `repository` (the blob may still be linked elsewhere in the
  /// namespace: the next recount decides).
  void forget(std::string const& repository);

private:
  struct Usage {
    std::unordered_map<std::string, std::uint64_t> blobs;  // digest → bytes
    std::uint64_t bytes = 0;
    std::chrono::steady_clock::time_point counted;
  };
  Usage& usage_of(std::string const& name_space);  // requires mutex_

  Storage const& storage_;
  std::map<std::string, std::uint64_t> quotas_;
  std::mutex mutex_;
  std::map<std::string, Usage> usage_;
};

}  // namespace berth::registry
