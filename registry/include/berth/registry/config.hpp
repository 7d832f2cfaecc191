// Settings of the registry. Plain values; `appliance` fills them from berth.yaml.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth::registry {

/// One entry of registry.retention: what to keep in the repositories matching `repositories`
/// (retention.hpp applies it). Regular expressions are ECMAScript and must match a whole tag.
struct RetentionRule {
  std::string repositories = {};                            ///< glob as in access: ("api/*", "model/**")
  std::optional<std::size_t> keep_last = {};                ///< newest tags kept; absent: every tag is kept
  std::vector<std::string> keep_tags = {};                  ///< tags matching any of these are always kept
  std::optional<std::chrono::seconds> untagged_after = {};  ///< absent: untagged manifests are kept
};

/// One entry of registry.immutable_tags: tags in the matching repositories that may not be
/// moved or deleted once pushed.
struct ImmutableTagRule {
  std::string repositories = {};       ///< glob as in access:
  std::vector<std::string> tags = {};  ///< regular expressions (whole tag); empty: every tag
};

struct Config {
  std::filesystem::path root;  ///< registry storage, <primary volume>/registry
  /// Top-level namespaces repositories must live under (api/orders, site/web, model/llama).
  std::vector<std::string> namespaces{"api", "site", "model"};
  bool delete_enabled = true;                          ///< DELETE of manifests, tags and blobs
  std::uint64_t max_manifest_bytes = 4 * 1024 * 1024;  ///< larger manifest PUTs get 413
  std::chrono::hours upload_expiry{24};                ///< unfinished uploads older than this are removed
  /// Bytes of blobs each namespace may hold (each blob counted once per namespace); namespaces
  /// not listed are unlimited.
  std::map<std::string, std::uint64_t> quotas;
  struct Gc {
    std::chrono::seconds interval{std::chrono::hours(24)};  ///< between scheduled runs in `berth serve`; 0: none
    std::chrono::seconds grace_period{std::chrono::hours(1)};
    bool delete_untagged = false;
  } gc;
  struct Scrub {
    std::chrono::seconds interval{0};              ///< between background fsck passes in `berth serve`; 0: none
    std::uint64_t bytes_per_second = 50ull << 20;  ///< read rate of a pass, so pulls keep the disk
  } scrub;
  std::vector<RetentionRule> retention;          ///< first rule whose glob matches applies
  std::vector<ImmutableTagRule> immutable_tags;  ///< a tag matched by any rule is immutable
};

}  // namespace berth::registry
