// registry.retention and registry.immutable_tags in berth.yaml: what they read into, and the
// exact error (file:line:column and key) for each kind of mistake.
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "berth/appliance/config.hpp"

namespace berth::appliance {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// berth.yaml with `yaml` in a fresh temp dir, removed afterwards.
class YamlFile {
public:
  explicit YamlFile(std::string const& yaml) {
    std::string pattern = (fs::temp_directory_path() / "berth-retention-config-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("cannot create temp dir: " + std::string(std::strerror(errno)));
    dir_ = pattern;
    std::ofstream(dir_ / "berth.yaml") << yaml;
  }
  ~YamlFile() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  YamlFile(YamlFile const&) = delete;
  YamlFile& operator=(YamlFile const&) = delete;
  fs::path path() const { return dir_ / "berth.yaml"; }

private:
  fs::path dir_;
};

// The ConfigError message with the file's path written as FILE.
std::string error_for(std::string const& yaml) {
  YamlFile file(yaml);
  try {
    load_config(file.path());
  } catch (ConfigError const& error) {
    std::string message = error.what();
    if (message.starts_with(file.path().string())) message.replace(0, file.path().string().size(), "FILE");
    return message;
  }
  return "(no error)";
}

TEST(RetentionConfig, ReadsRulesInOrder) {
  YamlFile file(R"(registry:
  retention:
    - repositories: api/orders
    - repositories: "api/*"
      keep_last: 10
      keep_tags: ['^v\d+\.\d+\.\d+$', latest]
      untagged_after: 7d
    - repositories: model/**
      untagged_after: 36h
  immutable_tags:
    - repositories: "api/*"
      tags: ['^v\d+\.\d+\.\d+$']
    - repositories: model
)");
  auto const config = load_config(file.path());
  auto const& retention = config.registry.retention;
  ASSERT_EQ(retention.size(), 3u);
  EXPECT_EQ(retention[0].repositories, "api/orders");
  EXPECT_EQ(retention[0].keep_last, std::nullopt);
  EXPECT_EQ(retention[0].untagged_after, std::nullopt);
  EXPECT_EQ(retention[1].repositories, "api/*");
  EXPECT_EQ(retention[1].keep_last, 10u);
  EXPECT_EQ(retention[1].keep_tags, (std::vector<std::string>{R"(^v\d+\.\d+\.\d+$)", "latest"}));
  EXPECT_EQ(retention[1].untagged_after, std::chrono::seconds(7 * 24h));
  EXPECT_EQ(retention[2].untagged_after, std::chrono::seconds(36h));
  auto const& immutable = config.registry.immutable_tags;
  ASSERT_EQ(immutable.size(), 2u);
  EXPECT_EQ(immutable[0].tags, (std::vector<std::string>{R"(^v\d+\.\d+\.\d+$)"}));
  EXPECT_EQ(immutable[1].repositories, "model");
  EXPECT_TRUE(immutable[1].tags.empty());
  EXPECT_TRUE(default_config().registry.retention.empty());
  EXPECT_TRUE(default_config().registry.immutable_tags.empty());
}

TEST(RetentionConfig, ABadRegularExpressionNamesTheLineAndKey) {
  auto const message = error_for("registry:\n  retention:\n    - repositories: api/*\n      keep_tags: [ok, 'v(1']\n");
  EXPECT_TRUE(message.starts_with("FILE:4:23: registry.retention[0].keep_tags: invalid regular expression \"v(1\": "))
      << message;
  EXPECT_NE(message.find("\nHINT: an ECMAScript regular expression"), std::string::npos) << message;
  auto const immutable = error_for("registry:\n  immutable_tags:\n    - repositories: api/*\n      tags: ['[']\n");
  EXPECT_TRUE(immutable.starts_with("FILE:4:14: registry.immutable_tags[0].tags: invalid regular expression \"[\": "))
      << immutable;
}

TEST(RetentionConfig, RefusesBadValues) {
  EXPECT_EQ(error_for("registry:\n  retention:\n    - repositories: api/*\n      untagged_after: 7 days\n"),
            "FILE:4:23: registry.retention[0].untagged_after: expected a duration like 7d, 36h or 1h30m (from 1h to "
            "3650d), got \"7 days\"");
  EXPECT_EQ(error_for("registry:\n  retention:\n    - repositories: api/*\n      untagged_after: 30m\n"),
            "FILE:4:23: registry.retention[0].untagged_after: expected a duration like 7d, 36h or 1h30m (from 1h to "
            "3650d), got \"30m\"");
  EXPECT_EQ(error_for("registry:\n  retention:\n    - keep_last: 3\n"),
            "FILE:3:7: registry.retention[0]: expected repositories: (a glob like api/* or model/**)");
  EXPECT_EQ(error_for("registry:\n  retention:\n    - repositories: api/*\n      keep_last: -1\n"),
            "FILE:4:18: registry.retention[0].keep_last: expected a number of tags from 0 to 1000000, got -1");
  EXPECT_EQ(error_for("registry:\n  retention:\n    - repositories: API/*\n"),
            "FILE:3:21: registry.retention[0].repositories: expected a namespace, repository or glob like api, "
            "api/orders, api/* or model/**, got \"API/*\"");
  EXPECT_EQ(error_for("registry:\n  retention:\n    - repositories: api/*\n      keep: 3\n"),
            "FILE:4:7: unknown key \"registry.retention[0].keep\" (known keys: repositories, keep_last, keep_tags, "
            "untagged_after)");
  EXPECT_EQ(error_for("registry:\n  immutable_tags:\n    - tags: [x]\n"),
            "FILE:3:7: registry.immutable_tags[0]: expected repositories: (a glob like api/* or model/**)");
  EXPECT_EQ(error_for("registry:\n  immutable_tags: api/*\n"),
            "FILE:2:19: registry.immutable_tags: expected a list of rules like \"- repositories: api/*\", got "
            "\"api/*\"");
}

}  // namespace
}  // namespace berth::appliance
