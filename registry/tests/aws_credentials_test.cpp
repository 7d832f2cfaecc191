// The AWS credential chain on real files in a temp dir and real credential_process programs
// (small shell scripts), with the environment passed in rather than set on the test process.
#include "berth/registry/aws_credentials.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "berth/testing/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace berth::registry;
using berth::testing::TempDir;

namespace {

std::string error_of(aws::Environment const& environment, std::chrono::seconds timeout = std::chrono::seconds(60)) {
  try {
    auto const resolved = aws::resolve_credentials(environment, timeout);
    return "resolved from " + resolved.source;
  } catch (aws::CredentialsError const& error) {
    return error.what();
  }
}

fs::path write_script(TempDir const& dir, std::string const& name, std::string const& body) {
  auto const path = dir.write(name, "#!/bin/sh\n" + body);
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

class AwsCredentials : public ::testing::Test {
protected:
  TempDir dir_;
  aws::Environment environment_{{}, dir_.path()};
};

TEST_F(AwsCredentials, EnvironmentVariablesComeFirst) {
  dir_.write(".aws/credentials", "[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = s\n");
  environment_.variables = {
      {"AWS_ACCESS_KEY_ID", "AKIDENV"}, {"AWS_SECRET_ACCESS_KEY", "secret"}, {"AWS_SESSION_TOKEN", "token"}};
  auto const resolved = aws::resolve_credentials(environment_);
  EXPECT_EQ(resolved.credentials.access_key_id, "AKIDENV");
  EXPECT_EQ(resolved.credentials.secret_access_key, "secret");
  EXPECT_EQ(resolved.credentials.session_token, "token");
  EXPECT_EQ(resolved.source, "environment");
  EXPECT_FALSE(resolved.expiration);
}

TEST_F(AwsCredentials, HalfTheEnvironmentKeysIsAnError) {
  environment_.variables = {{"AWS_ACCESS_KEY_ID", "AKIDENV"}};
  EXPECT_EQ(error_of(environment_),
            "AWS credentials in the environment are incomplete: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is "
            "not\nHINT: set both variables, or neither to use a profile.");
}

TEST_F(AwsCredentials, DefaultProfileFromTheCredentialsFile) {
  auto const path = dir_.write(".aws/credentials",
                               "# comment\n; other comment\n[other]\naws_access_key_id=OTHER\naws_secret_access_key=o\n"
                               "\n[default]\r\naws_access_key_id = AKIDFILE \r\naws_secret_access_key = se=cret\r\n"
                               "aws_session_token = tok\n");
  auto const resolved = aws::resolve_credentials(environment_);
  EXPECT_EQ(resolved.credentials.access_key_id, "AKIDFILE");
  EXPECT_EQ(resolved.credentials.secret_access_key, "se=cret");
  EXPECT_EQ(resolved.credentials.session_token, "tok");
  EXPECT_EQ(resolved.source, "profile 'default' in " + path.string());
}

TEST_F(AwsCredentials, AwsProfileSelectsAConfigProfileWithItsPrefix) {
  auto const config = dir_.write("elsewhere/config",
                                 "[ci]\naws_access_key_id = WRONG\naws_secret_access_key = w\n"
                                 "[profile ci]\nregion = eu-west-1\ns3 =\n  max_concurrent_requests = 4\n"
                                 "aws_access_key_id = AKIDCONFIG\naws_secret_access_key = c\n");
  environment_.variables = {{"AWS_PROFILE", "ci"}, {"AWS_CONFIG_FILE", config.string()}};
  auto const resolved = aws::resolve_credentials(environment_);
  EXPECT_EQ(resolved.credentials.access_key_id, "AKIDCONFIG");
  EXPECT_EQ(resolved.source, "profile 'ci' in " + config.string());
  EXPECT_EQ(aws::resolve_region(environment_), "eu-west-1");
}

TEST_F(AwsCredentials, CredentialsFileWinsOverConfigAndHonoursItsOverride) {
  auto const credentials = dir_.write("creds", "[default]\naws_access_key_id = FROMCREDS\naws_secret_access_key = a\n");
  dir_.write(".aws/config", "[default]\naws_access_key_id = FROMCONFIG\naws_secret_access_key = b\n");
  environment_.variables = {{"AWS_SHARED_CREDENTIALS_FILE", credentials.string()}};
  EXPECT_EQ(aws::resolve_credentials(environment_).credentials.access_key_id, "FROMCREDS");
}

TEST_F(AwsCredentials, RegionFromEnvironmentBeforeConfig) {
  dir_.write(".aws/config", "[default]\nregion = us-east-2\n");
  EXPECT_EQ(aws::resolve_region(environment_), "us-east-2");
  environment_.variables = {{"AWS_DEFAULT_REGION", "eu-central-1"}};
  EXPECT_EQ(aws::resolve_region(environment_), "eu-central-1");
  environment_.variables["AWS_REGION"] = "ap-south-1";
  EXPECT_EQ(aws::resolve_region(environment_), "ap-south-1");
  environment_.variables = {{"AWS_PROFILE", "none"}};
  EXPECT_EQ(aws::resolve_region(environment_), std::nullopt);
}

TEST_F(AwsCredentials, NothingFoundNamesTheFilesAndProfile) {
  environment_.variables = {{"AWS_PROFILE", "missing"}};
  fs::path const aws = dir_.path() / ".aws";
  EXPECT_EQ(error_of(environment_),
            "no AWS credentials found: AWS_ACCESS_KEY_ID is not set and profile 'missing' is "
            "not in " +
                (aws / "credentials").string() + " and " + (aws / "config").string() +
                "\nHINT: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or create the "
                "profile (AWS_PROFILE selects one).");
}

TEST_F(AwsCredentials, MalformedLineNamesFileAndLine) {
  auto const path = dir_.write(".aws/credentials", "[default]\naws_access_key_id = A\nthis is not a setting\n");
  EXPECT_EQ(error_of(environment_),
            "cannot parse " + path.string() + " line 3: expected 'key = value'\nHINT: fix or remove that line.");
  dir_.write(".aws/credentials", "aws_access_key_id = A\n");
  EXPECT_EQ(error_of(environment_), "cannot parse " + path.string() +
                                        " line 1: setting outside a section\nHINT: put it under a [profile] section.");
  dir_.write(".aws/credentials", "[default\n");
  EXPECT_EQ(error_of(environment_),
            "cannot parse " + path.string() +
                " line 1: expected a section header like [default]\nHINT: fix or remove that line.");
}

TEST_F(AwsCredentials, OnlyOneStaticKeyNamesTheProfileAndLine) {
  auto const path = dir_.write(".aws/credentials", "\n[default]\naws_access_key_id = A\n");
  EXPECT_EQ(error_of(environment_), "AWS profile 'default' in " + path.string() +
                                        " line 2 has only one of aws_access_key_id and aws_secret_access_key\n"
                                        "HINT: set both keys in that profile, or remove both.");
}

TEST_F(AwsCredentials, RoleArnIsRecognisedButNotSupported) {
  auto const path = dir_.write(
      ".aws/config", "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = default\n");
  environment_.variables = {{"AWS_PROFILE", "deploy"}};
  EXPECT_EQ(error_of(environment_),
            "AWS profile 'deploy' in " + path.string() +
                " line 2 uses role_arn (AssumeRole through STS), which berth does not support yet\n"
                "HINT: use static keys or credential_process (for example IAM Roles Anywhere's aws_signing_helper) in "
                "that profile.");
}

TEST_F(AwsCredentials, ProfileWithoutCredentials) {
  dir_.write(".aws/config", "[default]\nregion = eu-west-1\n");
  EXPECT_TRUE(error_of(environment_).starts_with("AWS profile 'default' has no credentials in "));
}

TEST_F(AwsCredentials, CredentialProcessRunsWithoutAShell) {
  auto const helper = write_script(dir_, "bin/helper",
                                   "printf '{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"%s\", "
                                   "\"SessionToken\": \"tok\", \"Expiration\": \"2026-11-27T18:30:00+01:00\"}' "
                                   "\"$1\" \"$2\"\n");
  auto const config = dir_.write(
      ".aws/config", "[default]\ncredential_process = " + helper.string() + " 'AKID $HOME' \"se cret\\$x\"\n");
  auto const resolved = aws::resolve_credentials(environment_);
  EXPECT_EQ(resolved.credentials.access_key_id, "AKID $HOME");
  EXPECT_EQ(resolved.credentials.secret_access_key, "se cret$x");
  EXPECT_EQ(resolved.credentials.session_token, "tok");
  ASSERT_TRUE(resolved.expiration);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*resolved.expiration), 1795800600);  // 2026-11-27T17:30:00Z
  EXPECT_EQ(resolved.source, "credential_process of profile 'default' in " + config.string() + " line 2");
}

TEST_F(AwsCredentials, FailingCredentialProcessSurfacesItsStderr) {
  auto const helper = write_script(dir_, "fail", "echo 'token expired, log in again' >&2\nexit 3\n");
  auto const config = dir_.write(".aws/config", "[default]\ncredential_process = " + helper.string() + "\n");
  EXPECT_EQ(error_of(environment_), "credential_process of profile 'default' in " + config.string() + " line 2: '" +
                                        helper.string() +
                                        "' exited with code 3: token expired, log in again\n"
                                        "HINT: run the command by hand to see why it fails.");
}

TEST_F(AwsCredentials, HungCredentialProcessTimesOut) {
  auto const helper = write_script(dir_, "hang", "exec sleep 30\n");
  dir_.write(".aws/config", "[default]\ncredential_process = " + helper.string() + "\n");
  auto const started = std::chrono::steady_clock::now();
  EXPECT_TRUE(error_of(environment_, std::chrono::seconds(1))
                  .ends_with("' did not finish within 1 seconds\n"
                             "HINT: run the command by hand to see where "
                             "it hangs."));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

TEST_F(AwsCredentials, MissingCredentialProcessProgram) {
  dir_.write(".aws/config", "[default]\ncredential_process = berth-no-such-helper --flag\n");
  EXPECT_TRUE(error_of(environment_)
                  .ends_with(": program 'berth-no-such-helper' not found in PATH\n"
                             "HINT: install it or give its absolute path in credential_process."));
}

TEST(AwsProcessOutput, RejectsBadOutputWithoutQuotingIt) {
  auto message = [](std::string const& output) -> std::string {
    try {
      aws::parse_process_output(output, "credential_process of profile 'p'");
    } catch (aws::CredentialsError const& error) {
      return error.what();
    }
    return "no error";
  };
  std::string const hint =
      "\nHINT: the program must print JSON like {\"Version\": 1, \"AccessKeyId\": ..., \"SecretAccessKey\": ...}.";
  EXPECT_EQ(message("AKID SECRET"), "credential_process of profile 'p': output is not a JSON object" + hint);
  EXPECT_EQ(message(R"({"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "TOPSECRET"})"),
            "credential_process of profile 'p': output has no \"Version\": 1" + hint);
  EXPECT_EQ(message(R"({"Version": 1, "AccessKeyId": "A"})"),
            "credential_process of profile 'p': output has no \"SecretAccessKey\"" + hint);
  EXPECT_EQ(message(R"({"Version": 1, "AccessKeyId": "A", "SecretAccessKey": 5})"),
            "credential_process of profile 'p': \"SecretAccessKey\" in the output is not a non-empty string" + hint);
  EXPECT_TRUE(message(R"({"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "S", "Expiration": "tomorrow"})")
                  .starts_with("credential_process of profile 'p': Expiration 'tomorrow' is not an RFC 3339 time"));
  auto const fractional = aws::parse_process_output(
      R"({"Version":1,"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"2026-11-27T16:00:00.123Z"})", "x");
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*fractional.expiration), 1795795200);
}

TEST(AwsCommandLine, SplitsLikeAPosixShellForPlainWords) {
  EXPECT_EQ(aws::split_command_line("  helper  --a 'b c' \"d \\\"e\\\"\" f\\ g ''"),
            (std::vector<std::string>{"helper", "--a", "b c", "d \"e\"", "f g", ""}));
  EXPECT_THROW(aws::split_command_line("helper 'open"), aws::CredentialsError);
}

}  // namespace
