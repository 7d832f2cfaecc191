// Robot accounts without a server: secrets and their hashes, the robots file format and its
// error messages, the checker following the file as it is rewritten, and the front door
// signing robots in over Basic and the token flow with grants through their groups.
#include "berth/proxy/robots.hpp"

#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/proxy/auth.hpp"
#include "berth/testing/temp_dir.hpp"
#include "front_door_requests.hpp"

namespace berth::proxy {
namespace {

namespace fs = std::filesystem;
using berth::testing::read_file;
using berth::testing::TempDir;
using namespace std::chrono_literals;

RobotClock::time_point at(std::string const& text) {
  std::tm utc{};
  ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return RobotClock::from_time_t(::timegm(&utc));
}

Robot make_robot(std::string name, std::string const& secret, std::vector<std::string> groups = {}) {
  Robot robot;
  robot.name = std::move(name);
  robot.groups = std::move(groups);
  robot.secret_sha256 = robot_secret_hash(secret);
  robot.created = robot.secret_created = std::chrono::floor<std::chrono::seconds>(RobotClock::now());
  return robot;
}

std::string error_reading(fs::path const& file) {
  try {
    RobotsFile::read(file);
  } catch (Error const& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(RobotSecret, IsBerthPrefixedBase64urlOf32RandomBytes) {
  auto const first = make_robot_secret();
  auto const second = make_robot_secret();
  EXPECT_NE(first, second);
  ASSERT_EQ(first.size(), 6u + 43u);
  EXPECT_TRUE(first.starts_with("berth_"));
  EXPECT_EQ(base64url_decode(first.substr(6))->size(), 32u);
  // SHA-256 of "abc" (FIPS 180-2 test vector).
  EXPECT_EQ(robot_secret_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(RobotLogin, NeverCollidesWithAUserName) {
  EXPECT_EQ(robot_login("ci"), "robot+ci");
  EXPECT_EQ(robot_name_of("robot+ci"), "ci");
  EXPECT_FALSE(robot_name_of("robot+"));
  EXPECT_FALSE(robot_name_of("robot+a:b"));
  EXPECT_FALSE(robot_name_of("robot+-x"));
  EXPECT_FALSE(robot_name_of("robot-ci"));
  EXPECT_FALSE(robot_name_of("ci"));
  EXPECT_FALSE(is_valid_account_name("robot+ci"));  // no user can be called that
}

TEST(RobotState, RevokedBeatsExpiredBeatsActive) {
  auto robot = make_robot("ci", "s");
  auto const now = RobotClock::now();
  EXPECT_EQ(robot.state_at(now), RobotState::active);
  robot.expires = now + 1h;
  EXPECT_EQ(robot.state_at(now), RobotState::active);
  robot.expires = now - 1s;
  EXPECT_EQ(robot.state_at(now), RobotState::expired);
  robot.revoked = now - 1s;
  EXPECT_EQ(robot.state_at(now), RobotState::revoked);
  EXPECT_EQ(to_string(RobotState::expired), "expired");
}

TEST(RobotsFile, RoundTripsEveryFieldAndKeepsOnlyTheHash) {
  TempDir dir;
  auto const file = dir.path() / "robots";
  auto const secret = make_robot_secret();
  RobotsFile robots;
  auto ci = make_robot("ci", secret, {"deploy", "ci"});
  ci.description = "GitLab \"main\" pipeline\n(uses: push)";
  ci.created = at("2026-01-02T03:04:05Z");
  ci.secret_created = at("2026-02-01T00:00:00Z");
  ci.expires = at("2026-04-02T03:04:05Z");
  robots.set(ci);
  auto old = make_robot("old", make_robot_secret());
  old.revoked = at("2026-03-01T10:00:00Z");
  robots.set(old);
  robots.write(file);

  struct stat status {};
  ASSERT_EQ(::stat(file.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 07777, 0600u);  // a folder of the writer's own group: no one else reads it
  auto const text = read_file(file);
  EXPECT_EQ(text.find(secret), std::string::npos);
  EXPECT_EQ(text.find(secret.substr(6)), std::string::npos);
  EXPECT_NE(text.find(robot_secret_hash(secret)), std::string::npos);

  auto const back = RobotsFile::read(file);
  ASSERT_EQ(back.robots().size(), 2u);
  auto const* read_ci = back.find("ci");
  ASSERT_NE(read_ci, nullptr);
  EXPECT_EQ(read_ci->groups, (std::vector<std::string>{"ci", "deploy"}));
  EXPECT_EQ(read_ci->description, ci.description);
  EXPECT_EQ(read_ci->secret_sha256, robot_secret_hash(secret));
  EXPECT_EQ(format_robot_time(read_ci->created), "2026-01-02T03:04:05Z");
  EXPECT_EQ(format_robot_time(read_ci->secret_created), "2026-02-01T00:00:00Z");
  EXPECT_EQ(format_robot_time(*read_ci->expires), "2026-04-02T03:04:05Z");
  EXPECT_FALSE(read_ci->revoked);
  EXPECT_EQ(format_robot_time(*back.find("old")->revoked), "2026-03-01T10:00:00Z");
  EXPECT_FALSE(back.find("old")->expires);

  // One object per line, readable and greppable.
  EXPECT_NE(text.find("{\"name\":\"ci\",\"groups\":[\"ci\",\"deploy\"],"), std::string::npos) << text;
  auto edited = back;
  EXPECT_TRUE(edited.remove("old"));
  EXPECT_FALSE(edited.remove("old"));
  edited.write(file);
  EXPECT_EQ(RobotsFile::read(file).robots().size(), 1u);
  EXPECT_TRUE(RobotsFile::read(dir.path() / "missing").robots().empty());
}

TEST(RobotsFile, MinimalHandWrittenLineAndCommentsRead) {
  TempDir dir;
  auto const file =
      dir.write("robots", "# comment\n\n{\"name\":\"ci\",\"created\":\"2026-01-02T03:04:05Z\",\"secret_sha256\":\"" +
                              robot_secret_hash("x") + "\",\"future_field\":1}\r\n");
  auto const robots = RobotsFile::read(file);
  ASSERT_EQ(robots.robots().size(), 1u);
  EXPECT_EQ(robots.robots()[0].secret_created, robots.robots()[0].created);
  EXPECT_TRUE(robots.robots()[0].groups.empty());
}

TEST(RobotsFile, BadLinesNameTheLineAndTheProblem) {
  TempDir dir;
  auto const hash = robot_secret_hash("x");
  auto const line = [&](std::string const& fields) { return "# robots\n{" + fields + "}\n"; };
  auto const expect_error = [&](std::string const& text, std::string const& problem) {
    auto const file = dir.write("robots", text);
    EXPECT_EQ(error_reading(file), file.string() + ":2: " + problem +
                                       "\nHINT: the file is written by `berth robot`; fix or remove the line by hand");
  };
  std::string const good = "\"created\":\"2026-01-02T03:04:05Z\",\"secret_sha256\":\"" + hash + "\"";
  expect_error("# robots\nci:" + hash + "\n", "not a JSON object");
  expect_error("# robots\n[1]\n", "expected a JSON object");
  expect_error(line(good), "the field \"name\" is missing");
  expect_error(line("\"name\":\"a:b\"," + good), "invalid robot name \"a:b\"");
  expect_error(line("\"name\":\"ci\",\"created\":\"2026-01-02T03:04:05Z\",\"secret_sha256\":\"secret\""),
               "robot ci: the field \"secret_sha256\" is not 64 lowercase hex digits");
  expect_error(line("\"name\":\"ci\",\"created\":\"2026-02-30T00:00:00Z\",\"secret_sha256\":\"" + hash + "\""),
               "the field \"created\" is not a time like 2026-01-31T12:00:00Z");
  expect_error(line("\"name\":\"ci\",\"expires\":5," + good), "the field \"expires\" is not a string");
  expect_error(line("\"name\":\"ci\",\"groups\":[\"a b\"]," + good), "robot ci: invalid group name \"a b\"");
  auto const file = dir.write("robots", "{\"name\":\"ci\"," + good + "}\n{\"name\":\"ci\"," + good + "}\n");
  EXPECT_EQ(error_reading(file), file.string() +
                                     ":2: robot ci appears twice\nHINT: the file is written by `berth robot`; fix or "
                                     "remove the line by hand");
}

TEST(RobotChecker, FollowsTheFileAsItIsRewritten) {
  TempDir dir;
  auto const file = dir.path() / "robots";
  auto const last_use = dir.path() / "run" / "robots-last-used";
  RobotChecker checker(file, last_use);
  EXPECT_EQ(checker.check("ci", "anything"), RobotCheck::wrong_secret);  // no file yet

  auto const secret = make_robot_secret();
  RobotsFile robots;
  robots.set(make_robot("ci", secret, {"ci"}));
  robots.write(file);
  EXPECT_EQ(checker.check("ci", secret), RobotCheck::ok);
  EXPECT_EQ(checker.check("ci", secret + "x"), RobotCheck::wrong_secret);
  EXPECT_EQ(checker.check("other", secret), RobotCheck::wrong_secret);
  EXPECT_EQ(checker.groups_of("ci"), std::vector<std::string>{"ci"});
  EXPECT_TRUE(checker.token_stands("ci", RobotClock::now()));
  // The first sign-in is recorded at once; later ones at most once a minute.
  auto const used = read_robot_last_use(last_use);
  ASSERT_TRUE(used.contains("ci"));
  EXPECT_LE(RobotClock::now() - used.at("ci"), 5s);

  // Rotation: the old secret and the tokens issued before it are dead.
  auto const rotated = make_robot_secret();
  auto rotated_robot = make_robot("ci", rotated, {"ci"});
  rotated_robot.secret_created += 10s;  // a rotation clearly after the tokens below
  robots.set(rotated_robot);
  robots.write(file);
  EXPECT_EQ(checker.check("ci", secret), RobotCheck::wrong_secret);
  EXPECT_EQ(checker.check("ci", rotated), RobotCheck::ok);
  EXPECT_FALSE(checker.token_stands("ci", RobotClock::now()));
  EXPECT_TRUE(checker.token_stands("ci", RobotClock::now() + 20s));

  robots.find("ci")->revoked = RobotClock::now() - 1s;
  robots.write(file);
  EXPECT_EQ(checker.check("ci", rotated), RobotCheck::revoked);
  EXPECT_FALSE(checker.token_stands("ci", RobotClock::now() + 20s));

  robots.find("ci")->revoked.reset();
  robots.find("ci")->expires = RobotClock::now() - 1s;
  robots.write(file);
  EXPECT_EQ(checker.check("ci", rotated), RobotCheck::expired);

  // A file that no longer parses refuses every robot until it is fixed.
  robots.find("ci")->expires.reset();
  robots.write(file);
  EXPECT_EQ(checker.check("ci", rotated), RobotCheck::ok);
  std::ofstream(file, std::ios::app) << "garbage\n";
  EXPECT_EQ(checker.check("ci", rotated), RobotCheck::wrong_secret);
  EXPECT_TRUE(checker.groups_of("ci").empty());
  robots.write(file);
  EXPECT_EQ(checker.check("ci", rotated), RobotCheck::ok);

  robots.remove("ci");
  robots.write(file);
  EXPECT_EQ(checker.check("ci", rotated), RobotCheck::wrong_secret);
  EXPECT_FALSE(checker.token_stands("ci", RobotClock::now() + 20s));
}

using testing::basic;

Request make(Method method, std::string const& target, std::optional<std::string> authorization = std::nullopt) {
  return testing::make_request(method, target, std::move(authorization));
}

// A robot pushes to what its group and its login are granted, and nothing else.
class RobotFrontDoor : public ::testing::Test {
protected:
  RobotFrontDoor() {
    robots_.set(make_robot("ci", secret_, {"builders"}));
    robots_.set(make_robot("reader", reader_secret_));
    robots_.write(dir_.path() / "robots");
    AccessPolicy policy(
        {Grant{.groups = {"builders"}, .actions = {Action::pull, Action::push}, .repositories = {"api"}},
         Grant{.users = {"robot+reader"}, .actions = {Action::pull}, .repositories = {"api"}}},
        {});
    auto passwords = std::make_shared<PasswordChecker const>(std::map<std::string, std::string>{});
    auto checker = std::make_shared<RobotChecker const>(dir_.path() / "robots", fs::path());
    add_authentication(router_,
                       std::make_shared<Authenticator const>(AuthConfig{}, passwords, std::move(policy),
                                                             TokenKey::generate(), checker),
                       "/v2/", [](Request const& request) -> std::optional<RequiredAccess> {
                         auto const repository = std::string(request.path.substr(4, request.path.rfind('/') - 4));
                         return RequiredAccess{repository, request.method == Method::get ? Action::pull : Action::push};
                       });
    router_.add_prefix("/v2/", [](Request const&) -> Reply { return json_response(200, "{}"); });
  }

  std::string outcome(Request const& request, std::string* message = nullptr) const {
    try {
      return std::to_string(std::get<Response>(router_.dispatch(request)).status);
    } catch (HttpError const& error) {
      if (message) *message = error.what();
      return std::to_string(error.status()) + " " + error.code();
    }
  }
  std::string token(std::string const& login, std::string const& secret) const {
    auto const reply =
        router_.dispatch(make(Method::get, "/token?scope=repository:api/x:pull,push", basic(login, secret)));
    return "Bearer " +
           nlohmann::json::parse(std::get<std::string>(std::get<Response>(reply).body))["token"].get<std::string>();
  }

  TempDir dir_;
  std::string const secret_ = make_robot_secret();
  std::string const reader_secret_ = make_robot_secret();
  RobotsFile robots_;
  Router router_;
};

TEST_F(RobotFrontDoor, BasicAndBearerFollowGroupsAndLoginGrants) {
  EXPECT_EQ(outcome(make(Method::put, "/v2/api/x/manifests", basic("robot+ci", secret_))), "200");
  EXPECT_EQ(outcome(make(Method::put, "/v2/site/x/manifests", basic("robot+ci", secret_))), "403 DENIED");
  EXPECT_EQ(outcome(make(Method::get, "/v2/api/x/manifests", basic("robot+reader", reader_secret_))), "200");
  EXPECT_EQ(outcome(make(Method::put, "/v2/api/x/manifests", basic("robot+reader", reader_secret_))), "403 DENIED");
  EXPECT_EQ(outcome(make(Method::get, "/v2/api/x/manifests", basic("robot+ci", reader_secret_))), "401 UNAUTHORIZED");
  EXPECT_EQ(outcome(make(Method::get, "/v2/api/x/manifests", basic("ci", secret_))), "401 UNAUTHORIZED");

  auto const bearer = token("robot+ci", secret_);
  EXPECT_EQ(outcome(make(Method::put, "/v2/api/x/manifests", bearer)), "200");

  // Revoking kills Basic sign-ins, new tokens and the tokens already issued.
  robots_.find("ci")->revoked = RobotClock::now();
  robots_.write(dir_.path() / "robots");
  std::string message;
  EXPECT_EQ(outcome(make(Method::put, "/v2/api/x/manifests", basic("robot+ci", secret_)), &message),
            "401 UNAUTHORIZED");
  EXPECT_EQ(message, "robot ci has been revoked");
  EXPECT_EQ(outcome(make(Method::put, "/v2/api/x/manifests", bearer), &message), "401 UNAUTHORIZED");
  EXPECT_EQ(message, "the robot this token was issued to is no longer valid; sign in again");
  EXPECT_EQ(outcome(make(Method::get, "/token?scope=repository:api/x:pull", basic("robot+ci", secret_))),
            "401 UNAUTHORIZED");
}

}  // namespace
}  // namespace berth::proxy
