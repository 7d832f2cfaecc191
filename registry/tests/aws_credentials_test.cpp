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
    auto const resolved = aws::resolve_credentials(environment, {.process_timeout = timeout});
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

std::string plan_error_of(aws::Environment const& environment) {
  try {
    aws::plan_credentials(environment);
  } catch (aws::CredentialsError const& error) {
    return error.what();
  }
  return "no error";
}

TEST_F(AwsCredentials, RoleProfileChainsThroughSourceProfiles) {
  auto const credentials =
      dir_.write(".aws/credentials", "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = b\n");
  auto const config = dir_.write(".aws/config",
                                 "[profile base]\nregion = us-west-2\n"
                                 "[profile hop]\nrole_arn = arn:aws:iam::111111111111:role/hop\nsource_profile = base\n"
                                 "role_session_name = hop-session\nduration_seconds = 3600\n"
                                 "[profile deploy]\nregion = eu-west-1\n"
                                 "role_arn = arn:aws:iam::222222222222:role/promote\nsource_profile = hop\n"
                                 "external_id = ext-42\n");
  environment_.variables = {{"AWS_PROFILE", "deploy"}};
  auto const plan = aws::plan_credentials(environment_);
  EXPECT_EQ(plan.base, aws::CredentialPlan::Base::static_keys);
  EXPECT_EQ(plan.keys.access_key_id, "AKIDBASE");
  EXPECT_EQ(plan.source, "profile 'base' in " + credentials.string());
  ASSERT_EQ(plan.roles.size(), 2u);
  EXPECT_EQ(plan.roles[0].profile, "hop");
  EXPECT_EQ(plan.roles[0].location, "profile 'hop' in " + config.string() + " line 4");
  EXPECT_EQ(plan.roles[0].parameters.role_arn, "arn:aws:iam::111111111111:role/hop");
  EXPECT_EQ(plan.roles[0].parameters.session_name, "hop-session");
  EXPECT_EQ(plan.roles[0].parameters.duration_seconds, 3600);
  EXPECT_EQ(plan.roles[0].parameters.external_id, "");
  EXPECT_EQ(plan.roles[1].profile, "deploy");
  EXPECT_EQ(plan.roles[1].parameters.external_id, "ext-42");
  EXPECT_EQ(plan.roles[1].parameters.duration_seconds, std::nullopt);
  auto const& session = plan.roles[1].parameters.session_name;
  EXPECT_TRUE(session.starts_with("berth-promote-")) << session;
  EXPECT_NEAR(std::stol(session.substr(14)), std::time(nullptr), 5);
  // The selected profile's region picks the regional endpoint (current CLI default).
  EXPECT_EQ(plan.sts_endpoint.url, "https://sts.eu-west-1.amazonaws.com/");
  EXPECT_EQ(plan.sts_endpoint.region, "eu-west-1");
}

TEST_F(AwsCredentials, RoleSourcesCanBeCredentialProcessOrTheEnvironment) {
  auto const config =
      dir_.write(".aws/config",
                 "[profile anywhere]\ncredential_process = /usr/bin/helper --x\n"
                 "[profile viaprocess]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = anywhere\n"
                 "[profile viaenv]\nrole_arn = arn:aws:iam::1:role/b\ncredential_source = Environment\n");
  environment_.variables = {{"AWS_PROFILE", "viaprocess"}};
  auto const process = aws::plan_credentials(environment_);
  EXPECT_EQ(process.base, aws::CredentialPlan::Base::process);
  EXPECT_EQ(process.process_command, "/usr/bin/helper --x");
  EXPECT_EQ(process.source, "profile 'anywhere' in " + config.string() + " line 2");
  ASSERT_EQ(process.roles.size(), 1u);
  // No region anywhere: the global endpoint, as the CLI does.
  EXPECT_EQ(process.sts_endpoint.url, "https://sts.amazonaws.com/");

  // AWS_PROFILE names a role profile: it is assumed even though keys are in the environment
  // (they are its source here).
  environment_.variables = {{"AWS_PROFILE", "viaenv"},
                            {"AWS_ACCESS_KEY_ID", "AKIDENV"},
                            {"AWS_SECRET_ACCESS_KEY", "e"},
                            {"AWS_SESSION_TOKEN", "tok"},
                            {"AWS_REGION", "ap-south-1"}};
  auto const env = aws::plan_credentials(environment_);
  EXPECT_EQ(env.base, aws::CredentialPlan::Base::environment);
  EXPECT_EQ(env.keys.access_key_id, "AKIDENV");
  EXPECT_EQ(env.keys.session_token, "tok");
  ASSERT_EQ(env.roles.size(), 1u);
  EXPECT_EQ(env.roles[0].parameters.role_arn, "arn:aws:iam::1:role/b");
  EXPECT_EQ(env.sts_endpoint.url, "https://sts.ap-south-1.amazonaws.com/");

  // Without AWS_PROFILE the environment's keys win and no profile is read.
  environment_.variables.erase("AWS_PROFILE");
  EXPECT_TRUE(aws::plan_credentials(environment_).roles.empty());

  environment_.variables = {{"AWS_PROFILE", "viaenv"}};
  EXPECT_EQ(plan_error_of(environment_),
            "AWS profile 'viaenv' in " + config.string() +
                " line 8: credential_source = Environment, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not "
                "both set\nHINT: export both variables (and AWS_SESSION_TOKEN for temporary keys) before running "
                "berth.");
}

TEST_F(AwsCredentials, ARoleProfileMayUseItsOwnKeysButStaticKeysWinInASource) {
  auto const config = dir_.write(".aws/config",
                                 "[profile self]\naws_access_key_id = AKIDSELF\naws_secret_access_key = s\n"
                                 "role_arn = arn:aws:iam::1:role/self\nsource_profile = self\n"
                                 "[profile outer]\nrole_arn = arn:aws:iam::1:role/outer\nsource_profile = self\n");
  environment_.variables = {{"AWS_PROFILE", "self"}};
  auto const self = aws::plan_credentials(environment_);
  EXPECT_EQ(self.keys.access_key_id, "AKIDSELF");
  ASSERT_EQ(self.roles.size(), 1u);
  // As a source, a profile with keys gives its keys; its own role is not assumed (CLI rule).
  environment_.variables = {{"AWS_PROFILE", "outer"}};
  auto const outer = aws::plan_credentials(environment_);
  EXPECT_EQ(outer.keys.access_key_id, "AKIDSELF");
  ASSERT_EQ(outer.roles.size(), 1u);
  EXPECT_EQ(outer.roles[0].parameters.role_arn, "arn:aws:iam::1:role/outer");
}

TEST_F(AwsCredentials, SourceProfileLoopsAreNamed) {
  auto const config = dir_.write(".aws/config",
                                 "[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n"
                                 "[profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = c\n"
                                 "[profile c]\nrole_arn = arn:aws:iam::1:role/c\nsource_profile = a\n"
                                 "[profile me]\nrole_arn = arn:aws:iam::1:role/me\nsource_profile = me\n");
  environment_.variables = {{"AWS_PROFILE", "a"}};
  EXPECT_EQ(plan_error_of(environment_),
            "AWS profiles form a loop through source_profile: a -> b -> c -> a (at profile 'c' in " + config.string() +
                " line 9)\nHINT: end the chain at a profile with static keys or credential_process.");
  environment_.variables = {{"AWS_PROFILE", "me"}};  // itself, without keys of its own
  EXPECT_EQ(plan_error_of(environment_),
            "AWS profiles form a loop through source_profile: me -> me (at profile 'me' in " + config.string() +
                " line 12)\nHINT: end the chain at a profile with static keys or credential_process.");
}

TEST_F(AwsCredentials, RoleProfileMistakesNameFileAndLine) {
  auto const config =
      dir_.write(".aws/config",
                 "[profile nosource]\nrole_arn = arn:aws:iam::1:role/x\n"                         // 1-2
                 "[profile both]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n"      // 3-5
                 "credential_source = Environment\n"                                              // 6
                 "[profile missing]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = gone\n"   // 7-9
                 "[profile short]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n"     // 10-12
                 "duration_seconds = 899\n"                                                       // 13
                 "[profile long]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n"      // 14-16
                 "duration_seconds = 43201\n"                                                     // 17
                 "[profile words]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n"     // 18-20
                 "duration_seconds = 1h\n"                                                        // 21
                 "[profile mfa]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n"       // 22-24
                 "mfa_serial = arn:aws:iam::1:mfa/me\n"                                           // 25
                 "[profile ec2]\nrole_arn = arn:aws:iam::1:role/x\n"                              // 26-27
                 "credential_source = Ec2InstanceMetadata\n"                                      // 28
                 "[profile notarole]\nrole_arn = arn:aws:iam::1:user/x\nsource_profile = base\n"  // 29-31
                 "[profile session]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n"   // 32-34
                 "role_session_name = has space\n"                                                // 35
                 "[profile empty]\nregion = eu-west-1\n"                                          // 36-37
                 "[profile toempty]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = empty\n"  // 38-40
                 "[profile legacy]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n"    // 41-43
                 "sts_regional_endpoints = sometimes\n"                                           // 44
                 "[profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = b\n");
  auto const at = [&](std::string const& profile, int line) {
    return "AWS profile '" + profile + "' in " + config.string() + " line " + std::to_string(line) + ": ";
  };
  auto const error_for = [&](std::string const& profile) {
    environment_.variables = {{"AWS_PROFILE", profile}};
    return plan_error_of(environment_);
  };
  EXPECT_EQ(error_for("nosource"),
            at("nosource", 2) +
                "role_arn needs source_profile or credential_source\nHINT: add source_profile = PROFILE (a profile "
                "with keys, credential_process or another role), or credential_source = Environment.");
  EXPECT_EQ(error_for("both"), at("both", 6) +
                                   "has both source_profile (line 5) and credential_source\nHINT: keep one of them: "
                                   "source_profile names the profile whose credentials assume the role.");
  EXPECT_EQ(error_for("missing"), at("missing", 9) + "source_profile 'gone' is not a profile in " +
                                      (dir_.path() / ".aws" / "credentials").string() + " and " + config.string() +
                                      "\nHINT: create profile 'gone' or correct the name.");
  std::string const duration_hint =
      "\nHINT: give the session length in seconds, at most the role's maximum session duration (3600 when the "
      "source is itself a role).";
  EXPECT_EQ(error_for("short"),
            at("short", 13) + "duration_seconds '899' is not a number from 900 to 43200" + duration_hint);
  EXPECT_EQ(error_for("long"),
            at("long", 17) + "duration_seconds '43201' is not a number from 900 to 43200" + duration_hint);
  EXPECT_EQ(error_for("words"),
            at("words", 21) + "duration_seconds '1h' is not a number from 900 to 43200" + duration_hint);
  EXPECT_EQ(error_for("mfa"),
            at("mfa", 25) +
                "mfa_serial asks for an MFA code at every AssumeRole, and berth runs without anyone to type it\n"
                "HINT: use a role whose trust policy does not require MFA for this automation, or assume the role "
                "yourself (aws sts assume-role --serial-number ... --token-code ...) and pass the temporary keys in "
                "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.");
  EXPECT_EQ(error_for("ec2"), at("ec2", 28) +
                                  "credential_source = Ec2InstanceMetadata needs the EC2 instance metadata service, "
                                  "which an on-prem server does not have\nHINT: use credential_source = Environment "
                                  "or source_profile.");
  EXPECT_EQ(error_for("notarole"), at("notarole", 30) +
                                       "role_arn 'arn:aws:iam::1:user/x' is not a role ARN\nHINT: use the role's ARN, "
                                       "e.g. arn:aws:iam::123456789012:role/promote.");
  EXPECT_EQ(error_for("session"),
            at("session", 35) +
                "role_session_name 'has space' is not 2 to 64 of the characters A-Z a-z 0-9 _+=,.@-\nHINT: choose a "
                "name such as berth-promote.");
  EXPECT_EQ(error_for("toempty"),
            "AWS profile 'empty' (the source_profile of profile 'toempty' in " + config.string() +
                " line 40) has no credentials in " + (dir_.path() / ".aws" / "credentials").string() + " and " +
                config.string() +
                "\nHINT: add aws_access_key_id and aws_secret_access_key, credential_process or role_arn to profile "
                "'empty'.");
  EXPECT_EQ(error_for("legacy"), at("legacy", 44) +
                                     "sts_regional_endpoints 'sometimes' is neither regional nor legacy\nHINT: use "
                                     "regional (the default) or legacy.");
}

TEST_F(AwsCredentials, StsEndpointOverridesAndLegacyMode) {
  dir_.write(".aws/config",
             "[profile deploy]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\nregion = eu-west-1\n"
             "sts_regional_endpoints = legacy\n"
             "[profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = b\n");
  environment_.variables = {{"AWS_PROFILE", "deploy"}};
  auto plan = aws::plan_credentials(environment_);
  EXPECT_EQ(plan.sts_endpoint.url, "https://sts.amazonaws.com/");
  EXPECT_EQ(plan.sts_endpoint.region, "us-east-1");
  environment_.variables["AWS_STS_REGIONAL_ENDPOINTS"] = "regional";
  EXPECT_EQ(aws::plan_credentials(environment_).sts_endpoint.url, "https://sts.eu-west-1.amazonaws.com/");
  environment_.variables["AWS_ENDPOINT_URL_STS"] = "https://127.0.0.1:9443";
  plan = aws::plan_credentials(environment_);
  EXPECT_EQ(plan.sts_endpoint.url, "https://127.0.0.1:9443");
  EXPECT_EQ(plan.sts_endpoint.region, "eu-west-1");
  environment_.variables["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:9443";
  EXPECT_EQ(plan_error_of(environment_),
            "AWS_ENDPOINT_URL_STS 'http://127.0.0.1:9443' is not an https:// URL\nHINT: STS answers with secret keys: "
            "use https.");
  // The promotion target's region is the fallback when nothing else names one.
  dir_.write(".aws/config",
             "[profile deploy]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n"
             "[profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = b\n");
  environment_.variables = {{"AWS_PROFILE", "deploy"}};
  EXPECT_EQ(aws::plan_credentials(environment_, {.default_region = "eu-north-1"}).sts_endpoint.url,
            "https://sts.eu-north-1.amazonaws.com/");
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
