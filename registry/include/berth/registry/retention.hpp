// Retention and immutable tags: which tags and manifests a repository may lose, and which tags
// may never move. Planning only reads Storage; applying deletes through Storage's atomic
// operations, so both may run while the registry serves. Blobs are not touched: garbage
// collection reclaims what no manifest needs any more. Knows nothing of YAML or of the
// appliance's files (promotions arrive as plain data).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "berth/registry/config.hpp"
#include "berth/registry/digest.hpp"
#include "berth/registry/storage.hpp"

namespace berth::registry {

/// (repository, digest) pairs that retention never deletes, e.g. images promoted to production.
/// A tag pointing at a protected digest is kept too.
using ProtectedImages = std::set<std::pair<std::string, Digest>>;

/// A tag or manifest retention deletes or keeps, and why.
struct RetentionItem {
  std::string repository;
  std::optional<std::string> tag;  ///< set for a tag; unset for a manifest
  Digest digest;                   ///< the manifest (a tag: the one it points at)
  std::string rule;                ///< the `repositories` glob of the rule that applied
  std::string reason;              ///< e.g. "beyond keep_last 10 (11th newest)"

  /// "api/orders:build-41" or "api/orders@sha256:…".
  std::string name() const;
};

struct RetentionPlan {
  std::vector<RetentionItem> tags_to_delete;       ///< by repository, newest tag first
  std::vector<RetentionItem> manifests_to_delete;  ///< by repository and digest
  std::vector<RetentionItem> kept;                 ///< only with RetentionOptions::explain_kept
  std::size_t repositories_checked = 0;            ///< repositories a rule applied to
};

struct RetentionOptions {
  std::string repositories = {};  ///< only repositories matching this glob; empty: all
  bool explain_kept = false;      ///< fill RetentionPlan::kept
};

/// Decides, per repository, what the first rule matching it would delete at `now`:
///  - tags beyond keep_last (newest first by the tag's last write; tags written at the same
///    instant as the last one kept are kept too), unless they match keep_tags, are immutable
///    (`immutable`), or point at a protected digest;
///  - manifests no remaining tag points at whose last push (revision file time) is older than
///    untagged_after, unless protected, a child of a kept index, or a referrer of a kept subject.
/// Repositories no rule matches are not touched. Read-only. Throws berth::Error for a rule
/// whose regular expression does not compile, or when storage cannot be read. Thread-safe.
RetentionPlan plan_retention(Storage const& storage, std::vector<RetentionRule> const& rules,
                             std::vector<ImmutableTagRule> const& immutable, ProtectedImages const& protected_images,
                             std::chrono::system_clock::time_point now, RetentionOptions const& options = {});

struct RetentionReport {
  std::size_t tags_deleted = 0;
  std::size_t manifests_deleted = 0;
  std::vector<RetentionItem> deleted;  ///< what went, tags first, in plan order
  /// Planned deletions skipped because the registry changed since planning (a tag moved, a
  /// manifest tagged again or listed by a new index): "api/orders:v3: now points at sha256:…, kept".
  std::vector<std::string> skipped;
};

/// Deletes the plan's tags, then its manifests. Each is checked again just before it goes (a
/// tag still points where it did; a manifest has no tag and no index lists it), so a push that
/// happened since planning wins; a push in the instant between check and delete can still lose.
/// Throws berth::Error when storage fails (what was deleted until then stays deleted). Safe
/// while the registry serves.
RetentionReport apply_retention(Storage& storage, RetentionPlan const& plan);

/// The registry.immutable_tags rules, compiled. Thread-safe (const).
class ImmutableTags {
public:
  /// Throws berth::Error naming the rule when a regular expression does not compile.
  explicit ImmutableTags(std::vector<ImmutableTagRule> const& rules);

  /// The `repositories` glob of the first rule making `repository:tag` immutable, or nullopt.
  std::optional<std::string> rule_for(std::string const& repository, std::string const& tag) const;

  /// The refusal for changing or deleting an immutable tag, e.g. "tag api/orders:v1.2.0 is
  /// immutable (registry.immutable_tags rule 'api/*'); push a new tag instead".
  static std::string refusal(std::string const& repository, std::string const& tag, std::string const& rule);

private:
  struct Compiled {
    std::string repositories;
    std::vector<std::regex> tags;
  };
  std::vector<Compiled> rules_;
};

/// The modification time of the tag file (when the tag was last pushed), or nullopt if the tag
/// does not exist. Read-only.
std::optional<std::chrono::system_clock::time_point> tag_time(Storage const& storage, std::string const& repository,
                                                              std::string const& tag);

/// The modification time of the manifest's revision file in `repository` (its last push), or
/// nullopt if the repository does not hold it. Read-only.
std::optional<std::chrono::system_clock::time_point> manifest_time(Storage const& storage,
                                                                   std::string const& repository, Digest const& digest);

}  // namespace berth::registry
