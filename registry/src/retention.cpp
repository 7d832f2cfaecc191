// Retention planning and applying, and the immutable-tag check the manifest handlers use.
// Planning works per repository: first decide which tags go, then which manifests are left
// without a tag, then keep everything a kept manifest needs (index children, referrers of kept
// subjects) before deleting the untagged ones that are old enough.
#include "berth/registry/retention.hpp"

#include <algorithm>
#include <map>

#include "berth/proxy/access.hpp"
#include "berth/registry/manifest.hpp"

namespace berth::registry {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

std::optional<Clock::time_point> file_time(fs::path const& path) {
  std::error_code ec;
  auto time = fs::last_write_time(path, ec);
  if (ec) return std::nullopt;
  return std::chrono::time_point_cast<Clock::duration>(std::chrono::file_clock::to_sys(time));
}

fs::path repository_dir(Storage const& storage, std::string const& repository) {
  return storage.config().root / "repositories" / repository;
}

std::vector<std::regex> compile(std::vector<std::string> const& patterns, std::string const& where) {
  std::vector<std::regex> compiled;
  for (auto const& pattern : patterns) {
    try {
      compiled.emplace_back(pattern, std::regex::ECMAScript);
    } catch (std::regex_error const& error) {
      throw Error(
          where + ": invalid regular expression \"" + pattern + "\": " + error.what() +
          "\nHINT: write an ECMAScript regular expression that matches a whole tag, e.g. '^v\\d+\\.\\d+\\.\\d+$'");
    }
  }
  return compiled;
}

bool matches_any(std::vector<std::regex> const& patterns, std::string const& tag) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](std::regex const& pattern) { return std::regex_match(tag, pattern); });
}

std::string ordinal(std::size_t n) {
  auto const tens = n % 100;
  char const* suffix = (tens >= 11 && tens <= 13) ? "th"
                       : n % 10 == 1              ? "st"
                       : n % 10 == 2              ? "nd"
                       : n % 10 == 3              ? "rd"
                                                  : "th";
  return std::to_string(n) + suffix;
}

// "7d", "36h", "90m", "45s": the largest unit that divides the duration.
std::string show_duration(std::chrono::seconds duration) {
  auto const seconds = duration.count();
  if (seconds != 0 && seconds % 86400 == 0) return std::to_string(seconds / 86400) + "d";
  if (seconds != 0 && seconds % 3600 == 0) return std::to_string(seconds / 3600) + "h";
  if (seconds != 0 && seconds % 60 == 0) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

// "9 days", "5 hours", "12 minutes": how long, rounded down, for reasons.
std::string show_age(Clock::duration age) {
  auto const seconds = std::chrono::duration_cast<std::chrono::seconds>(age).count();
  auto plural = [](long long n, char const* unit) { return std::to_string(n) + " " + unit + (n == 1 ? "" : "s"); };
  if (seconds >= 86400) return plural(seconds / 86400, "day");
  if (seconds >= 3600) return plural(seconds / 3600, "hour");
  if (seconds >= 60) return plural(seconds / 60, "minute");
  return plural(std::max<long long>(seconds, 0), "second");
}

// What the plan needs to know of one manifest in the repository.
struct ManifestFacts {
  std::vector<Digest> children;  // an index's manifests
  std::optional<Digest> subject;
  std::optional<Clock::time_point> pushed;
};

// Every manifest of the repository with what it refers to.
std::map<Digest, ManifestFacts> read_manifests(Storage const& storage, std::string const& repository) {
  std::map<Digest, ManifestFacts> facts;
  for (auto const& digest : storage.manifests(repository)) {
    ManifestFacts fact;
    fact.pushed = manifest_time(storage, repository, digest);
    if (auto stored = storage.get_manifest(repository, digest)) {
      try {
        auto manifest = parse_manifest(stored->bytes, stored->media_type);
        for (auto const& child : manifest.manifests) fact.children.push_back(child.digest);
        if (manifest.subject) fact.subject = manifest.subject->digest;
      } catch (ManifestError const&) {
        // Valid when pushed; if it no longer parses it refers to nothing we could keep.
      }
    }
    facts.emplace(digest, std::move(fact));
  }
  return facts;
}

struct TagFacts {
  std::string name;
  Digest digest;
  Clock::time_point written;
};

class RepositoryPlanner {
public:
  RepositoryPlanner(Storage const& storage, std::string repository, RetentionRule const& rule,
                    std::vector<std::regex> const& keep_tags, ImmutableTags const& immutable,
                    ProtectedImages const& protected_images, Clock::time_point now, RetentionPlan& plan,
                    bool explain_kept)
      : storage_(storage),
        repository_(std::move(repository)),
        rule_(rule),
        keep_tags_(keep_tags),
        immutable_(immutable),
        protected_(protected_images),
        now_(now),
        plan_(plan),
        explain_kept_(explain_kept) {}

  void run() {
    auto const tags = read_tags();
    std::set<Digest> still_tagged;
    plan_tags(tags, still_tagged);
    plan_manifests(still_tagged);
  }

private:
  std::vector<TagFacts> read_tags() const {
    std::vector<TagFacts> tags;
    for (auto const& name : storage_.tags(repository_).value_or(std::vector<std::string>{})) {
      auto digest = storage_.resolve_tag(repository_, name);
      auto written = tag_time(storage_, repository_, name);
      if (!digest || !written) continue;  // deleted or unreadable meanwhile: nothing to decide
      tags.push_back({name, *digest, *written});
    }
    // Newest first; equal times by name only so that the listing is stable.
    std::sort(tags.begin(), tags.end(), [](TagFacts const& a, TagFacts const& b) {
      return a.written != b.written ? a.written > b.written : a.name < b.name;
    });
    return tags;
  }

  bool is_protected(Digest const& digest) const { return protected_.contains({repository_, digest}); }

  void record(std::vector<RetentionItem>& list, std::optional<std::string> tag, Digest const& digest,
              std::string reason) const {
    list.push_back({repository_, std::move(tag), digest, rule_.repositories, std::move(reason)});
  }
  void keep(std::optional<std::string> tag, Digest const& digest, std::string reason) const {
    if (explain_kept_) record(plan_.kept, std::move(tag), digest, std::move(reason));
  }

  void plan_tags(std::vector<TagFacts> const& tags, std::set<Digest>& still_tagged) {
    std::optional<Clock::time_point> last_kept_time;  // of the keep_last-th newest tag
    for (std::size_t tag_idx = 0; tag_idx < tags.size(); ++tag_idx) {
      auto const& tag = tags[tag_idx];
      auto const position = tag_idx + 1;
      std::optional<std::string> reason_to_keep;
      if (!rule_.keep_last) {
        reason_to_keep = "no keep_last in the rule";
      } else if (position <= *rule_.keep_last) {
        reason_to_keep = "within keep_last " + std::to_string(*rule_.keep_last) + " (" + ordinal(position) + " newest)";
        last_kept_time = tag.written;
      } else if (last_kept_time && tag.written == *last_kept_time) {
        reason_to_keep = "pushed at the same time as the " + ordinal(*rule_.keep_last) + " newest (keep_last " +
                         std::to_string(*rule_.keep_last) + ")";
      } else if (matches_any(keep_tags_, tag.name)) {
        reason_to_keep = "matches keep_tags";
      } else if (auto immutable = immutable_.rule_for(repository_, tag.name)) {
        reason_to_keep = "immutable (registry.immutable_tags rule '" + *immutable + "')";
      } else if (is_protected(tag.digest)) {
        reason_to_keep = "points at a promoted image";
      }
      if (reason_to_keep) {
        still_tagged.insert(tag.digest);
        keep(tag.name, tag.digest, *reason_to_keep);
      } else {
        record(plan_.tags_to_delete, tag.name, tag.digest,
               "beyond keep_last " + std::to_string(*rule_.keep_last) + " (" + ordinal(position) + " newest)");
      }
    }
  }

  void plan_manifests(std::set<Digest> const& still_tagged) {
    auto const facts = read_manifests(storage_, repository_);

    // Roots: every manifest that stays on its own merit. Then everything they need.
    std::map<Digest, std::string> kept;
    for (auto const& [digest, fact] : facts) {
      if (still_tagged.contains(digest))
        kept.emplace(digest, "tagged");
      else if (is_protected(digest))
        kept.emplace(digest, "promoted");
      else if (!rule_.untagged_after)
        kept.emplace(digest, "untagged, and the rule has no untagged_after");
      else if (!fact.pushed || now_ - *fact.pushed < *rule_.untagged_after)
        kept.emplace(digest, "untagged, pushed " + show_age(fact.pushed ? now_ - *fact.pushed : Clock::duration{}) +
                                 " ago, within untagged_after " + show_duration(*rule_.untagged_after));
    }
    for (bool grew = true; grew;) {
      grew = false;
      for (auto const& [digest, fact] : facts) {
        if (!kept.contains(digest)) continue;
        for (auto const& child : fact.children)
          if (facts.contains(child) && kept.emplace(child, "in kept index " + digest.to_string()).second) grew = true;
      }
      for (auto const& [digest, fact] : facts)
        if (fact.subject && kept.contains(*fact.subject) &&
            kept.emplace(digest, "refers to kept subject " + fact.subject->to_string()).second)
          grew = true;
    }

    for (auto const& [digest, fact] : facts) {
      if (auto found = kept.find(digest); found != kept.end()) {
        keep(std::nullopt, digest, found->second);
        continue;
      }
      record(plan_.manifests_to_delete, std::nullopt, digest,
             "untagged, pushed " + show_age(now_ - *fact.pushed) + " ago (untagged_after " +
                 show_duration(*rule_.untagged_after) + ")");
    }
  }

  Storage const& storage_;
  std::string repository_;
  RetentionRule const& rule_;
  std::vector<std::regex> const& keep_tags_;
  ImmutableTags const& immutable_;
  ProtectedImages const& protected_;
  Clock::time_point now_;
  RetentionPlan& plan_;
  bool explain_kept_;
};

}  // namespace

std::string RetentionItem::name() const {
  return tag ? repository + ":" + *tag : repository + "@" + digest.to_string();
}

std::optional<Clock::time_point> tag_time(Storage const& storage, std::string const& repository,
                                          std::string const& tag) {
  return file_time(repository_dir(storage, repository) / "_manifests" / "tags" / tag);
}

std::optional<Clock::time_point> manifest_time(Storage const& storage, std::string const& repository,
                                               Digest const& digest) {
  return file_time(repository_dir(storage, repository) / "_manifests" / "revisions" /
                   std::string(digest.algorithm_name()) / digest.hex());
}

RetentionPlan plan_retention(Storage const& storage, std::vector<RetentionRule> const& rules,
                             std::vector<ImmutableTagRule> const& immutable, ProtectedImages const& protected_images,
                             Clock::time_point now, RetentionOptions const& options) {
  std::vector<std::vector<std::regex>> keep_tags;
  for (auto const& rule : rules)
    keep_tags.push_back(compile(rule.keep_tags, "registry.retention rule '" + rule.repositories + "' keep_tags"));
  ImmutableTags const immutable_tags(immutable);

  RetentionPlan plan;
  for (auto const& repository : storage.repositories()) {
    if (!options.repositories.empty() && !proxy::repository_matches(options.repositories, repository)) continue;
    auto const rule = std::find_if(rules.begin(), rules.end(), [&](RetentionRule const& candidate) {
      return proxy::repository_matches(candidate.repositories, repository);
    });
    if (rule == rules.end()) continue;
    ++plan.repositories_checked;
    RepositoryPlanner(storage, repository, *rule, keep_tags[static_cast<std::size_t>(rule - rules.begin())],
                      immutable_tags, protected_images, now, plan, options.explain_kept)
        .run();
  }
  return plan;
}

RetentionReport apply_retention(Storage& storage, RetentionPlan const& plan) {
  RetentionReport report;
  for (auto const& item : plan.tags_to_delete) {
    auto const current = storage.resolve_tag(item.repository, *item.tag);
    if (!current) continue;  // already gone
    if (*current != item.digest) {
      report.skipped.push_back(item.name() + ": now points at " + current->to_string() + ", kept");
      continue;
    }
    if (!storage.delete_tag(item.repository, *item.tag)) continue;
    ++report.tags_deleted;
    report.deleted.push_back(item);
  }
  // Indexes pushed since planning may list a planned manifest: child → index, per repository,
  // over the manifests that stay.
  std::map<std::string, std::map<Digest, Digest>> indexes_of;
  for (auto const& item : plan.manifests_to_delete) {
    if (indexes_of.contains(item.repository)) continue;
    std::set<Digest> planned;
    for (auto const& other : plan.manifests_to_delete)
      if (other.repository == item.repository) planned.insert(other.digest);
    auto& children = indexes_of[item.repository];
    for (auto const& [digest, fact] : read_manifests(storage, item.repository))
      if (!planned.contains(digest))
        for (auto const& child : fact.children) children.emplace(child, digest);
  }
  for (auto const& item : plan.manifests_to_delete) {
    // A manifest tagged since planning is in use again; Storage::delete_manifest would take the
    // new tag with it.
    std::optional<std::string> tagged;
    for (auto const& tag : storage.tags(item.repository).value_or(std::vector<std::string>{}))
      if (storage.resolve_tag(item.repository, tag) == item.digest) tagged = tag;
    if (tagged) {
      report.skipped.push_back(item.name() + ": tagged " + *tagged + " since planning, kept");
      continue;
    }
    auto const& children = indexes_of[item.repository];
    if (auto index = children.find(item.digest); index != children.end()) {
      report.skipped.push_back(item.name() + ": listed by index " + index->second.to_string() +
                               " since planning, kept");
      continue;
    }
    if (!storage.delete_manifest(item.repository, item.digest)) continue;
    ++report.manifests_deleted;
    report.deleted.push_back(item);
  }
  return report;
}

ImmutableTags::ImmutableTags(std::vector<ImmutableTagRule> const& rules) {
  for (auto const& rule : rules)
    rules_.push_back(
        {rule.repositories, compile(rule.tags, "registry.immutable_tags rule '" + rule.repositories + "' tags")});
}

std::optional<std::string> ImmutableTags::rule_for(std::string const& repository, std::string const& tag) const {
  for (auto const& rule : rules_)
    if (proxy::repository_matches(rule.repositories, repository) && (rule.tags.empty() || matches_any(rule.tags, tag)))
      return rule.repositories;
  return std::nullopt;
}

std::string ImmutableTags::refusal(std::string const& repository, std::string const& tag, std::string const& rule) {
  return "tag " + repository + ":" + tag + " is immutable (registry.immutable_tags rule '" + rule +
         "'); push a new tag instead";
}

}  // namespace berth::registry
