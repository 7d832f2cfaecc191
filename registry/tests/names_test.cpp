// Unit tests for the repository-name and tag grammars, with the path-traversal and encoding
// tricks they must keep away from the filesystem.
#include "berth/registry/names.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace berth::registry {
namespace {

using namespace std::string_literals;

TEST(RepositoryName, AcceptsSpecExamples) {
  for (std::string_view name : {"api/orders", "site/web-app", "model/llama-ft", "a/b/c/d", "a__b", "a--b", "a.b", "a_b",
                                "a", "0", "library/ubuntu", "a-----b", "a.b-c_d__e/f0"})
    EXPECT_TRUE(is_valid_repository_name(name)) << name;
}

TEST(RepositoryName, RejectsEmpty) {
  EXPECT_FALSE(is_valid_repository_name(""));
}

TEST(RepositoryName, RejectsUpperCase) {
  EXPECT_FALSE(is_valid_repository_name("API/x"));
  EXPECT_FALSE(is_valid_repository_name("api/X"));
}

TEST(RepositoryName, RejectsEmptyComponents) {
  for (std::string_view name : {"api//x", "/api", "api/", "/", "//"})
    EXPECT_FALSE(is_valid_repository_name(name)) << name;
}

TEST(RepositoryName, RejectsDotComponents) {
  for (std::string_view name : {"api/..", "api/../x", "..", ".", "./api", "api/.", "api/./x", "api/.x", "api/x."})
    EXPECT_FALSE(is_valid_repository_name(name)) << name;
}

TEST(RepositoryName, RejectsBadSeparators) {
  for (std::string_view name : {"a___b", "a._b", "a_.b", "a..b", "a.-b", "a-.b", "-a", "a-", "_a", "a_", "a__", "__a"})
    EXPECT_FALSE(is_valid_repository_name(name)) << name;
}

TEST(RepositoryName, RejectsEncodedAndStrayCharacters) {
  for (std::string name : {"api/x%2e%2e"s, "api/%2e%2e/x"s, "api/x\0y"s, "api\0"s, "api x"s, "api\\x"s, "api\\..\\x"s,
                           "api/x\n"s, "api:x"s, "api@x"s, "api/é"s})
    EXPECT_FALSE(is_valid_repository_name(name)) << name;
}

TEST(RepositoryName, LimitsLengthTo255) {
  EXPECT_TRUE(is_valid_repository_name(std::string(255, 'a')));
  EXPECT_FALSE(is_valid_repository_name(std::string(256, 'a')));
  std::string components = "a";
  while (components.size() < 255) components += "/a";
  EXPECT_EQ(components.size(), 255u);
  EXPECT_TRUE(is_valid_repository_name(components));
  EXPECT_FALSE(is_valid_repository_name(components + "a"));
}

TEST(Tag, AcceptsSpecExamples) {
  for (std::string_view tag : {"latest", "v1.2.3", "_x", "1", "V1", "a-b_c.d", "__", "x.", "x-"})
    EXPECT_TRUE(is_valid_tag(tag)) << tag;
}

TEST(Tag, LimitsLengthTo128) {
  EXPECT_TRUE(is_valid_tag(std::string(128, 'a')));
  EXPECT_FALSE(is_valid_tag(std::string(129, 'a')));
}

TEST(Tag, RejectsBadFirstCharacter) {
  EXPECT_FALSE(is_valid_tag(".x"));
  EXPECT_FALSE(is_valid_tag("-x"));
  EXPECT_FALSE(is_valid_tag(".."));
  EXPECT_FALSE(is_valid_tag("."));
}

TEST(Tag, RejectsStrayCharacters) {
  for (std::string tag : {""s, "a/b"s, "a:b"s, "a@b"s, "a b"s, "a\0"s, "a\\b"s, "a%2e"s, "a\n"s, "é"s})
    EXPECT_FALSE(is_valid_tag(tag)) << tag;
}

}  // namespace
}  // namespace berth::registry
