// Who may do what: the grants of the `access:` configuration as a pure policy object. Given a
// user (or nobody: an anonymous client), a repository and an action, it answers allowed or not.
// It knows nothing of HTTP, tokens or passwords; the front door asks it (auth.hpp).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::proxy {

/// What a client wants to do. `catalog` is listing every repository name (/v2/_catalog,
/// Docker's scope registry:catalog:*), which does not concern one repository.
enum class Action { pull, push, delete_, catalog };

/// "pull", "push", "delete", "catalog".
std::string_view to_string(Action action);
/// The inverse of to_string; nullopt for anything else.
std::optional<Action> parse_action(std::string_view text);

/// One entry of `access:`: these users and members of these groups (or, with `anonymous`,
/// every client, signed in or not) may do `actions` on `repositories`.
struct Grant {
  std::vector<std::string> users = {};
  std::vector<std::string> groups = {};
  bool anonymous = false;
  std::vector<Action> actions = {};
  /// Each a namespace or repository ("api", "api/orders": it and everything below it) or a
  /// glob: `*` matches within one path component, `**` across components ("api/*", "model/**").
  std::vector<std::string> repositories = {};
};

/// True when `repository` is matched by `pattern` as described at Grant::repositories.
bool repository_matches(std::string_view pattern, std::string_view repository);

class AccessPolicy {
public:
  /// `members_by_group`: group → users (from the group file).
  AccessPolicy(std::vector<Grant> grants, std::map<std::string, std::vector<std::string>> members_by_group);

  /// Whether `user` (nullopt: anonymous) may do `action` on `repository`. For
  /// Action::catalog the repository is ignored. `more_groups`: groups the user is in besides
  /// those of the group file (a robot's, from the robots file). Thread-safe (const).
  bool allows(std::optional<std::string_view> user, std::string_view repository, Action action,
              std::vector<std::string> const& more_groups = {}) const;

private:
  bool applies_to(Grant const& grant, std::optional<std::string_view> user,
                  std::vector<std::string> const& more_groups) const;
  std::vector<Grant> grants_;
  std::map<std::string, std::vector<std::string>, std::less<>> members_by_group_;
};

}  // namespace berth::proxy
