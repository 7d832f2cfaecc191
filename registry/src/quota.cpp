#include "quota.hpp"

#include "berth/core/human.hpp"
#include "berth/registry/maintenance.hpp"
#include "berth/registry/storage.hpp"

namespace berth::registry {
namespace {

constexpr auto recount_after = std::chrono::minutes(1);

std::string namespace_of(std::string const& repository) {
  return repository.substr(0, repository.find('/'));
}

}  // namespace

QuotaLedger::QuotaLedger(Storage const& storage, std::map<std::string, std::uint64_t> quotas)
    : storage_(storage), quotas_(std::move(quotas)) {}

QuotaLedger::Usage& QuotaLedger::usage_of(std::string const& name_space) {
  auto& usage = usage_[name_space];
  auto now = std::chrono::steady_clock::now();
  if (usage.counted == std::chrono::steady_clock::time_point{} || now - usage.counted > recount_after) {
    usage.blobs = linked_blob_sizes(storage_, name_space);
    usage.bytes = 0;
    for (auto const& [digest, bytes] : usage.blobs) usage.bytes += bytes;
    usage.counted = now;
  }
  return usage;
}

void QuotaLedger::check_not_full(std::string const& repository) {
  auto name_space = namespace_of(repository);
  auto quota = quotas_.find(name_space);
  if (quota == quotas_.end()) return;
  std::lock_guard lock(mutex_);
  auto const& usage = usage_of(name_space);
  if (usage.bytes >= quota->second)
    throw QuotaExceeded("namespace " + name_space + " is full: it holds " + human_size(usage.bytes) + " of its " +
                        human_size(quota->second) +
                        " quota; delete unused tags (then `berth registry gc` reclaims them) or ask the operator to "
                        "raise registry.quotas." +
                        name_space);
}

void QuotaLedger::reserve(std::string const& repository, Digest const& digest, std::uint64_t size) {
  auto name_space = namespace_of(repository);
  auto quota = quotas_.find(name_space);
  if (quota == quotas_.end()) return;
  std::lock_guard lock(mutex_);
  auto& usage = usage_of(name_space);
  auto key = digest.to_string();
  if (usage.blobs.contains(key)) return;
  if (usage.bytes + size > quota->second)
    throw QuotaExceeded("pushing blob " + key + " (" + human_size(size) + ") to " + repository +
                        " would take namespace " + name_space + " over its quota: it holds " + human_size(usage.bytes) +
                        " of " + human_size(quota->second) +
                        "; delete unused tags (then `berth registry gc` reclaims them) or ask the operator to raise "
                        "registry.quotas." +
                        name_space);
  usage.blobs.emplace(std::move(key), size);
  usage.bytes += size;
}

void QuotaLedger::forget(std::string const& repository) {
  std::lock_guard lock(mutex_);
  usage_.erase(namespace_of(repository));  // recounted on next use
}

}  // namespace berth::registry
