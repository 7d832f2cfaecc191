// Unit tests for `${name}` replacement and Flyway's built-in placeholders (flyway-compat.md §5).
#include "berth/flyway/placeholders.hpp"

#include <gtest/gtest.h>

#include <regex>

#include "berth/flyway/error.hpp"

namespace berth::flyway {
namespace {

Placeholders make(std::map<std::string, std::string> values, DefaultPlaceholders defaults = {}) {
  Config config;
  config.placeholders = std::move(values);
  return Placeholders(config, defaults);
}

std::string error_of(Placeholders const& placeholders, std::string_view text) {
  try {
    placeholders.replace(text);
  } catch (MigrationError const& error) {
    return error.what();
  }
  return "no error";
}

TEST(Placeholders, ReplacesEverywhereIncludingCommentsAndStrings) {
  auto placeholders = make({{"owner", "alice"}});
  EXPECT_EQ(placeholders.replace("-- ${owner}\nALTER TABLE t OWNER TO ${owner}; SELECT '${owner}';"),
            "-- alice\nALTER TABLE t OWNER TO alice; SELECT 'alice';");
}

TEST(Placeholders, MatchesNamesCaseInsensitively) {
  auto placeholders = make({{"Owner", "alice"}});
  EXPECT_EQ(placeholders.replace("${owner} ${OWNER} ${Owner}"), "alice alice alice");
}

TEST(Placeholders, ReplacesEmptyValuesWithNothing) {
  EXPECT_EQ(make({{"x", ""}}).replace("a${x}b"), "ab");
}

TEST(Placeholders, DoesNotRescanReplacedValues) {
  EXPECT_EQ(make({{"a", "${b}"}, {"b", "no"}}).replace("${a}"), "${b}");
}

TEST(Placeholders, LeavesTextWithoutPlaceholdersAlone) {
  EXPECT_EQ(make({}).replace("SELECT $1, $$body$$, {x}, $ {y}"), "SELECT $1, $$body$$, {x}, $ {y}");
}

TEST(Placeholders, RejectsUnknownNamesWithFlywaysMessage) {
  EXPECT_EQ(error_of(make({}), "SELECT ${x};"), "No value provided for placeholder: ${x}.  Check your configuration!");
}

TEST(Placeholders, RejectsUnsetDefaultPlaceholdersWithFlywaysMessage) {
  EXPECT_EQ(error_of(make({}), "${flyway:user}"), "Failed to populate value for default placeholder: ${flyway:user}");
  EXPECT_EQ(error_of(make({}), "${flyway:nonsense}"),
            "Failed to populate value for default placeholder: ${flyway:nonsense}");
}

TEST(Placeholders, RejectsAnUnterminatedPlaceholder) {
  EXPECT_EQ(error_of(make({}), "SELECT ${oops"),
            "No value provided for placeholder: ${oops.  Check your configuration!");
}

TEST(Placeholders, ProvidesFlywaysBuiltIns) {
  DefaultPlaceholders defaults{"app",    "migrator", "berth", "2024-01-02 03:04:05", "/srv", "flyway_schema_history",
                               "default"};
  auto placeholders = make({}, defaults).for_script("V2__x.sql");
  EXPECT_EQ(placeholders.replace("${flyway:defaultSchema} ${flyway:user} ${flyway:database} ${flyway:timestamp} "
                                 "${flyway:workingDirectory} ${flyway:table} ${flyway:environment} ${flyway:filename}"),
            "app migrator berth 2024-01-02 03:04:05 /srv flyway_schema_history default V2__x.sql");
}

TEST(Placeholders, HonoursConfiguredPrefixAndSuffix) {
  Config config;
  config.placeholder_prefix = "@@";
  config.placeholder_suffix = "@@";
  config.placeholders = {{"x", "1"}};
  EXPECT_EQ(Placeholders(config, {}).replace("a @@x@@ ${x}"), "a 1 ${x}");
}

TEST(Placeholders, FormatsTheTimestampLikeFlyway) {
  auto text = format_placeholder_timestamp(std::chrono::system_clock::now());
  EXPECT_TRUE(std::regex_match(text, std::regex(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"))) << text;
}

}  // namespace
}  // namespace berth::flyway
