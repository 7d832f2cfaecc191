// The grants policy as a matrix: every action on every namespace for every kind of user.
#include "berth/proxy/access.hpp"

#include <gtest/gtest.h>

namespace berth::proxy {
namespace {

// alice develops api/*; the ci group (bot1) pushes everywhere but deletes nothing; site is
// readable by anyone, even without credentials; carol administers (catalog, delete on all).
AccessPolicy team_policy() {
  return AccessPolicy(
      {
          Grant{.users = {"alice"}, .actions = {Action::pull, Action::push}, .repositories = {"api/*"}},
          Grant{.groups = {"ci"}, .actions = {Action::pull, Action::push}, .repositories = {"api", "site", "model/**"}},
          Grant{.anonymous = true, .actions = {Action::pull}, .repositories = {"site"}},
          Grant{.users = {"carol"},
                .actions = {Action::pull, Action::push, Action::delete_, Action::catalog},
                .repositories = {"**"}},
      },
      {{"ci", {"bot1"}}});
}

std::string row(AccessPolicy const& policy, std::optional<std::string_view> user, std::string_view repository) {
  std::string allowed;
  for (auto action : {Action::pull, Action::push, Action::delete_, Action::catalog})
    allowed += policy.allows(user, repository, action) ? std::string(to_string(action)).substr(0, 1) : "-";
  return allowed;
}

TEST(AccessPolicy, GrantsMatrix) {
  auto const policy = team_policy();
  std::optional<std::string_view> const anonymous;
  struct Case {
    std::optional<std::string_view> user;
    std::string_view repository;
    std::string_view expected;  // p(ull) p(ush) d(elete) c(atalog), "-" where denied
  };
  for (auto const& [user, repository, expected] : std::vector<Case>{
           {"alice", "api/orders", "pp--"},
           {"alice", "api/orders/v2", "----"},  // api/* is one component deep
           {"alice", "site/web", "p---"},       // the anonymous pull of site applies to her too
           {"alice", "model/llama", "----"},
           {"bot1", "api/orders", "pp--"},
           {"bot1", "api/orders/v2", "pp--"},  // a plain namespace covers everything below it
           {"bot1", "site/web", "pp--"},
           {"bot1", "model/llama/ft", "pp--"},
           {"bot1", "apix/orders", "----"},  // "api" is a whole component, not a string prefix
           {"carol", "api/orders", "ppdc"},
           {"carol", "model/x", "ppdc"},
           {"dave", "api/orders", "----"},  // signed in but granted nothing
           {"dave", "site/web", "p---"},    // anonymous pull applies to everyone
           {anonymous, "site/web", "p---"},
           {anonymous, "site", "p---"},
           {anonymous, "api/orders", "----"},
           {anonymous, "model/x", "----"},
       }) {
    EXPECT_EQ(row(policy, user, repository), expected) << user.value_or("(anonymous)") << " on " << repository;
  }
}

TEST(AccessPolicy, AnonymousPullDoesNotOpenPush) {
  auto const policy = team_policy();
  EXPECT_TRUE(policy.allows(std::nullopt, "site/web", Action::pull));
  EXPECT_FALSE(policy.allows(std::nullopt, "site/web", Action::push));
  EXPECT_TRUE(policy.allows("bot1", "site/web", Action::push));
}

TEST(AccessPolicy, GroupMembershipComesFromTheGroupFile) {
  AccessPolicy const policy({Grant{.groups = {"ci"}, .actions = {Action::push}, .repositories = {"api"}}},
                            {{"ci", {"bot1"}}, {"other", {"bot2"}}});
  EXPECT_TRUE(policy.allows("bot1", "api/x", Action::push));
  EXPECT_FALSE(policy.allows("bot2", "api/x", Action::push));
  EXPECT_FALSE(policy.allows("ci", "api/x", Action::push));  // a group name is not a user
}

TEST(AccessPolicy, NoGrantsAllowNothing) {
  AccessPolicy const policy({}, {});
  EXPECT_EQ(row(policy, "alice", "api/x"), "----");
  EXPECT_EQ(row(policy, std::nullopt, "api/x"), "----");
}

TEST(RepositoryPattern, Globs) {
  EXPECT_TRUE(repository_matches("api/*", "api/x"));
  EXPECT_FALSE(repository_matches("api/*", "api"));
  EXPECT_FALSE(repository_matches("api/*", "api/x/y"));
  EXPECT_TRUE(repository_matches("model/**", "model/a/b/c"));
  EXPECT_FALSE(repository_matches("model/**", "model"));
  EXPECT_TRUE(repository_matches("api/order-?", "api/order-1"));
  EXPECT_TRUE(repository_matches("*/web", "site/web"));
  EXPECT_FALSE(repository_matches("*/web", "a/site/web"));
  EXPECT_TRUE(repository_matches("api/orders", "api/orders"));
  EXPECT_TRUE(repository_matches("api/orders", "api/orders/v2"));
  EXPECT_FALSE(repository_matches("api/orders", "api/orders-v2"));
}

TEST(Action, NamesRoundTrip) {
  for (auto action : {Action::pull, Action::push, Action::delete_, Action::catalog})
    EXPECT_EQ(parse_action(to_string(action)), action);
  EXPECT_EQ(parse_action("*"), std::nullopt);
  EXPECT_EQ(to_string(Action::delete_), "delete");
}

}  // namespace
}  // namespace berth::proxy
