// The `berth` command line as a user meets it: exit codes and what it prints.
#include <gtest/gtest.h>

#include "command_output.hpp"

#include "berth/testing/process.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::testing {
namespace {

TEST(Cli, PrintsItsVersion) {
  auto result = run({BERTH_BINARY, "--version"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.output, "berth " BERTH_VERSION "\n");
}

TEST(Cli, HelpListsTheWorkingSubcommands) {
  auto result = run({BERTH_BINARY, "--help"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_TRUE(contains(result.output, "serve")) << result.output;
  EXPECT_TRUE(contains(result.output, "config")) << result.output;
  auto config_help = run({BERTH_BINARY, "config", "--help"});
  EXPECT_EQ(config_help.exit_code, 0);
  EXPECT_TRUE(contains(config_help.output, "check")) << config_help.output;
}

TEST(Cli, WithoutASubcommandIsAUsageError) {
  auto result = run({BERTH_BINARY});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(contains(result.output, "A subcommand is required")) << result.output;
}

TEST(Cli, UnknownSubcommandIsAUsageError) {
  auto result = run({BERTH_BINARY, "frobnicate"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(contains(result.output, "frobnicate")) << result.output;
}

TEST(Cli, InvalidLogLevelIsAUsageError) {
  auto result = run({BERTH_BINARY, "--log-level", "loud", "config", "check"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(contains(result.output, "loud")) << result.output;
}

TEST(Cli, ConfigCheckAcceptsAValidFile) {
  TempDir dir;
  auto file = dir.write("berth.yaml", "server:\n  listen: 127.0.0.1:5099\nvolumes:\n  primary: data\n");
  auto result = run({BERTH_BINARY, "config", "check", file.string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "configuration OK")) << result.output;
  EXPECT_TRUE(contains(result.output, "127.0.0.1:5099")) << result.output;
  EXPECT_TRUE(contains(result.output, (dir.path() / "data").string())) << result.output;
}

TEST(Cli, ConfigCheckNamesFileLineAndColumnOfAnError) {
  TempDir dir;
  auto file = dir.write("berth.yaml", "server:\n  listen: 127.0.0.1:5000\n  thraeds: 4\n");
  auto result = run({BERTH_BINARY, "config", "check", file.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.output, file.string() + ":3:3: unknown key \"server.thraeds\"")) << result.output;
}

TEST(Cli, ConfigCheckReportsYamlSyntaxErrorsWithTheLine) {
  TempDir dir;
  auto file = dir.write("berth.yaml", "server:\n  listen: [127.0.0.1\n");
  auto result = run({BERTH_BINARY, "config", "check", file.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.output, file.string() + ":")) << result.output;
  EXPECT_TRUE(contains(result.output, "YAML syntax error")) << result.output;
}

TEST(Cli, ConfigFileComesFromBerthConfigVariable) {
  TempDir dir;
  auto file = dir.write("env.yaml", "server:\n  listen: 127.0.0.1:5077\n");
  auto result = run({BERTH_BINARY, "config", "check"}, {"BERTH_CONFIG=" + file.string()}, dir.path());
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "127.0.0.1:5077")) << result.output;
}

TEST(Cli, MissingExplicitConfigIsAnError) {
  TempDir dir;
  auto result = run({BERTH_BINARY, "--config", (dir.path() / "nope.yaml").string(), "config", "check"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.output, "nope.yaml")) << result.output;
}

TEST(Cli, PackagedExampleConfigChecksClean) {
  auto result = run({BERTH_BINARY, "config", "check", BERTH_SOURCE_DIR "/packaging/berth.yaml"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

TEST(Cli, DevConfigChecksClean) {
  auto result = run({BERTH_BINARY, "config", "check", BERTH_SOURCE_DIR "/berth.dev.yaml"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "127.0.0.1:5000")) << result.output;
}

TEST(Cli, ServeRejectsAMalformedListenOverride) {
  TempDir dir;
  auto result = run({BERTH_BINARY, "--config", dir.write("berth.yaml", "").string(), "serve", "--listen", "nonsense",
                     "--data", (dir.path() / "var").string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.output, "--listen")) << result.output;
  EXPECT_TRUE(contains(result.output, "HOST:PORT")) << result.output;
}

}  // namespace
}  // namespace berth::testing
