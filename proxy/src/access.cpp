// The grants policy: matching users, groups and repository patterns.
#include "berth/proxy/access.hpp"

#include <algorithm>

namespace berth::proxy {
namespace {

// Glob match where `*` and `?` stay within one path component and `**` crosses them.
bool glob_matches(std::string_view pattern, std::string_view text) {
  while (!pattern.empty()) {
    if (pattern.starts_with("**")) {
      pattern.remove_prefix(2);
      for (std::size_t skip = 0; skip <= text.size(); ++skip)
        if (glob_matches(pattern, text.substr(skip))) return true;
      return false;
    }
    if (pattern.front() == '*') {
      pattern.remove_prefix(1);
      for (std::size_t skip = 0; skip <= text.size(); ++skip) {
        if (glob_matches(pattern, text.substr(skip))) return true;
        if (skip < text.size() && text[skip] == '/') break;
      }
      return false;
    }
    if (text.empty()) return false;
    bool const same = pattern.front() == text.front() || (pattern.front() == '?' && text.front() != '/');
    if (!same) return false;
    pattern.remove_prefix(1);
    text.remove_prefix(1);
  }
  return text.empty();
}

template <class Range, class Value>
bool contains(Range const& range, Value const& value) {
  return std::find(range.begin(), range.end(), value) != range.end();
}

}  // namespace

std::string_view to_string(Action action) {
  switch (action) {
    case Action::pull: return "pull";
    case Action::push: return "push";
    case Action::delete_: return "delete";
    case Action::catalog: return "catalog";
  }
  return "?";
}

std::optional<Action> parse_action(std::string_view text) {
  for (auto action : {Action::pull, Action::push, Action::delete_, Action::catalog})
    if (to_string(action) == text) return action;
  return std::nullopt;
}

bool repository_matches(std::string_view pattern, std::string_view repository) {
  if (pattern.find_first_of("*?") != std::string_view::npos) return glob_matches(pattern, repository);
  return repository == pattern ||
         (repository.starts_with(pattern) && repository.size() > pattern.size() && repository[pattern.size()] == '/');
}

AccessPolicy::AccessPolicy(std::vector<Grant> grants, std::map<std::string, std::vector<std::string>> members_by_group)
    : grants_(std::move(grants)), members_by_group_(members_by_group.begin(), members_by_group.end()) {}

bool AccessPolicy::applies_to(Grant const& grant, std::optional<std::string_view> user,
                              std::vector<std::string> const& more_groups) const {
  if (grant.anonymous) return true;
  if (!user) return false;
  if (contains(grant.users, *user)) return true;
  return std::any_of(grant.groups.begin(), grant.groups.end(), [&](std::string const& group) {
    if (contains(more_groups, group)) return true;
    auto const members = members_by_group_.find(group);
    return members != members_by_group_.end() && contains(members->second, *user);
  });
}

bool AccessPolicy::allows(std::optional<std::string_view> user, std::string_view repository, Action action,
                          std::vector<std::string> const& more_groups) const {
  return std::any_of(grants_.begin(), grants_.end(), [&](Grant const& grant) {
    if (!contains(grant.actions, action) || !applies_to(grant, user, more_groups)) return false;
    if (action == Action::catalog) return true;
    return std::any_of(grant.repositories.begin(), grant.repositories.end(),
                       [&](std::string const& pattern) { return repository_matches(pattern, repository); });
  });
}

}  // namespace berth::proxy
