// Robot accounts as CI meets them: `berth robot` run against a live `berth serve`, whose answers
// change at once (no restart), and real skopeo pushing with `--creds robot+NAME:TOKEN` through
// the token flow. Also the command line's bad-input errors, and the robots file's contents.
#include <openssl/evp.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/testing/eventually.hpp"
#include "berth/testing/oci_layout.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string basic(std::string const& user, std::string const& password) {
  std::string const plain = user + ":" + password;
  std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
  auto const size =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                      reinterpret_cast<unsigned char const*>(plain.data()), static_cast<int>(plain.size()));
  encoded.resize(static_cast<std::size_t>(size));
  return "Basic " + encoded;
}

// The token is the last line: `berth robot add` prints it alone on stdout, after its notes on stderr.
std::string token_of(RunResult const& result) {
  auto text = result.output;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text.substr(text.rfind('\n') + 1);
}

// Robots in group ci push to api/; robot+reader only pulls api/ (a grant by login); alice is the
// one human user, so authentication is on from the start.
constexpr char const* grants = R"(
access:
  - groups: [ci]
    actions: [pull, push]
    repositories: [api]
  - users: [robot+reader]
    actions: [pull]
    repositories: [api]
)";

class Robots : public ::testing::Test {
protected:
  static fs::path make_htpasswd(TempDir const& dir) {
    auto const file = dir.path() / "htpasswd";
    EXPECT_EQ(run({"/usr/bin/htpasswd", "-cbB", "-C", "5", file.string(), "alice", "alice-secret"}).exit_code, 0);
    return file;
  }

  void SetUp() override {
    auto const image = layout_.add_image({32 * 1024, 512}, 7);
    layout_.tag(image.manifest, "v1");
  }

  RunResult robot(std::vector<std::string> args) const {
    args.insert(args.begin(), "robot");
    return berth_.command(args);
  }
  // Adds a robot and returns its token.
  std::string add(std::vector<std::string> args) const {
    args.insert(args.begin(), "add");
    auto const added = robot(args);
    EXPECT_EQ(added.exit_code, 0) << added.output;
    return token_of(added);
  }
  RunResult push(std::string const& repository, std::string const& creds) {
    return skopeo({"copy", "--dest-tls-verify=false", "--dest-creds=" + creds, "oci:" + layout_.dir().string() + ":v1",
                   "docker://127.0.0.1:" + std::to_string(berth_.port()) + "/" + repository + ":v1"});
  }
  std::optional<HttpResponse> get(std::string const& target, std::string const& authorization) {
    return http_request("127.0.0.1", berth_.port(), "GET", target, "", {{"Authorization", authorization}});
  }

  TempDir users_dir_;
  BerthInstance berth_{"auth:\n  htpasswd: " + make_htpasswd(users_dir_).string() + "\n" + grants};
  TempDir scratch_;
  OciLayout layout_{scratch_.path() / "src"};
};

TEST_F(Robots, PushWithinItsGrantsWithoutARestart) {
  // Added while the server runs: the next sign-in already sees it.
  auto const token = add({"ci", "--group", "ci", "--expires", "30d", "--description", "GitLab main pipeline"});
  ASSERT_TRUE(token.starts_with("berth_")) << token;
  ASSERT_EQ(token.size(), 49u);
  auto const pushed = push("api/orders", "robot+ci:" + token);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;

  auto const outside = push("site/web", "robot+ci:" + token);
  EXPECT_NE(outside.exit_code, 0);
  // skopeo 1.9 reports the refused upload, 1.18 the refused HEAD of a blob it hoped to reuse.
  EXPECT_TRUE(outside.output.find("site/web: 403 (Forbidden)") != std::string::npos ||
              outside.output.find("site/web: StatusCode: 403") != std::string::npos)
      << outside.output;
  auto const wrong = push("api/orders", "robot+ci:" + token.substr(0, 48) + (token.back() == 'A' ? "B" : "A"));
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.output.find("unauthorized"), std::string::npos) << wrong.output;

  // A grant by login: robot+reader pulls, cannot push.
  auto const reader = add({"reader"});
  EXPECT_EQ(get("/v2/api/orders/tags/list", basic("robot+reader", reader))->status, 200);
  auto const reader_push = push("api/orders", "robot+reader:" + reader);
  EXPECT_NE(reader_push.exit_code, 0);
  EXPECT_NE(reader_push.output.find("denied"), std::string::npos) << reader_push.output;

  // The sign-in was recorded, the secret never: not in the robots file, not in the log.
  auto const list = robot({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  auto const listed = nlohmann::json::parse(robot({"list", "--json"}).output);
  ASSERT_EQ(listed.size(), 2u) << listed.dump();
  EXPECT_EQ(listed[0]["name"], "ci");
  EXPECT_EQ(listed[0]["login"], "robot+ci");
  EXPECT_EQ(listed[0]["state"], "active");
  EXPECT_EQ(listed[0]["groups"], nlohmann::json::parse(R"(["ci"])"));
  EXPECT_TRUE(listed[0]["expires"].is_string()) << listed.dump();
  EXPECT_TRUE(listed[0]["last_used"].is_string()) << listed.dump();  // it signed in above
  EXPECT_TRUE(listed[1]["expires"].is_null()) << listed.dump();
  auto const ci_line = list.output.substr(list.output.find("\nci "));
  EXPECT_NE(ci_line.find("robot+ci"), std::string::npos) << list.output;
  EXPECT_NE(ci_line.find("active"), std::string::npos) << list.output;
  EXPECT_NE(ci_line.find("GitLab main pipeline"), std::string::npos) << list.output;
  EXPECT_EQ(ci_line.substr(0, ci_line.find('\n', 1)).find("never"), std::string::npos) << list.output;  // last used
  auto const robots_file = users_dir_.path() / "robots";
  auto const stored = read_file(robots_file);
  EXPECT_NE(stored.find("\"name\":\"ci\""), std::string::npos) << stored;
  EXPECT_EQ(stored.find(token.substr(6)), std::string::npos);
  EXPECT_EQ(stored.find(reader.substr(6)), std::string::npos);
  EXPECT_EQ(berth_.process().output().find(token.substr(6)), std::string::npos);
  EXPECT_EQ(fs::status(robots_file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(Robots, RevokeRefusesTheSameCredentialsAtOnce) {
  auto const token = add({"ci", "--group", "ci"});
  ASSERT_EQ(push("api/orders", "robot+ci:" + token).exit_code, 0);
  auto const issued = get("/token?scope=repository:api/orders:pull", basic("robot+ci", token));
  ASSERT_EQ(issued->status, 200) << issued->body;
  auto const bearer = "Bearer " + nlohmann::json::parse(issued->body)["token"].get<std::string>();
  EXPECT_EQ(get("/v2/api/orders/tags/list", bearer)->status, 200);

  auto const revoked = robot({"revoke", "ci"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.output;
  EXPECT_EQ(revoked.output, "robot ci revoked: it can no longer sign in, and its tokens stop working now\n");
  // The same server process: Basic, a new token and the token issued before are all refused.
  auto const basic_after = get("/v2/api/orders/tags/list", basic("robot+ci", token));
  EXPECT_EQ(basic_after->status, 401);
  EXPECT_NE(basic_after->body.find("robot ci has been revoked"), std::string::npos) << basic_after->body;
  EXPECT_EQ(get("/token?scope=repository:api/orders:pull", basic("robot+ci", token))->status, 401);
  EXPECT_EQ(get("/v2/api/orders/tags/list", bearer)->status, 401);
  auto const pushed = push("api/orders", "robot+ci:" + token);
  EXPECT_NE(pushed.exit_code, 0);
  EXPECT_NE(pushed.output.find("unauthorized"), std::string::npos) << pushed.output;
  EXPECT_TRUE(berth_.process().running());

  EXPECT_NE(robot({"list"}).output.find("revoked"), std::string::npos);
  auto const rotate = robot({"rotate", "ci"});
  EXPECT_EQ(rotate.exit_code, 1);
  EXPECT_EQ(rotate.output,
            "berth: robot ci is revoked; a revoked robot stays revoked\nHINT: remove it with `berth robot del ci` "
            "and add it again\n");
  ASSERT_EQ(robot({"del", "ci"}).exit_code, 0);
  EXPECT_EQ(read_file(users_dir_.path() / "robots").find("\"ci\""), std::string::npos);
}

TEST_F(Robots, ExpiredRobotIsRefused) {
  auto const token = add({"short", "--group", "ci", "--expires", "1s"});
  EXPECT_TRUE(eventually(10s, [&] { return get("/v2/", basic("robot+short", token))->status == 401; }));
  auto const refused = get("/v2/", basic("robot+short", token));
  EXPECT_NE(refused->body.find("robot short has expired"), std::string::npos) << refused->body;
  EXPECT_NE(robot({"list"}).output.find("expired"), std::string::npos);
  // Rotating an expired robot needs a new expiry; with one, it works again.
  auto const rotate = robot({"rotate", "short"});
  EXPECT_EQ(rotate.exit_code, 1);
  EXPECT_NE(rotate.output.find("HINT: give it a new expiry too, e.g. `berth robot rotate short --expires 90d`"),
            std::string::npos)
      << rotate.output;
  auto const renewed = robot({"rotate", "short", "--expires", "1h"});
  ASSERT_EQ(renewed.exit_code, 0) << renewed.output;
  EXPECT_EQ(get("/v2/", basic("robot+short", token_of(renewed)))->status, 200);
}

TEST_F(Robots, RotateKillsTheOldSecret) {
  auto const old_token = add({"ci", "--group", "ci"});
  ASSERT_EQ(get("/v2/", basic("robot+ci", old_token))->status, 200);
  auto const rotated = robot({"rotate", "ci"});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.output;
  auto const new_token = token_of(rotated);
  EXPECT_NE(new_token, old_token);
  EXPECT_EQ(get("/v2/", basic("robot+ci", old_token))->status, 401);
  auto const old_push = push("api/orders", "robot+ci:" + old_token);
  EXPECT_NE(old_push.exit_code, 0) << old_push.output;
  auto const new_push = push("api/orders", "robot+ci:" + new_token);
  EXPECT_EQ(new_push.exit_code, 0) << new_push.output;
}

// The command line without a server: stdout carries only the token, bad input is refused clearly.
TEST(RobotCommands, BadInputAndTheTokenAloneOnStdout) {
  TempDir dir;
  auto const config = dir.write("berth.yaml", "volumes:\n  primary: " + (dir.path() / "var").string() +
                                                  "\n  backup: " + (dir.path() / "backup").string() + "\n");
  auto const berth = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {BERTH_BINARY, "--config", config.string(), "robot"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  auto const robots = dir.path() / "var" / "secrets" / "robots";

  auto const added = berth({"add", "ci", "--group", "ci"});
  ASSERT_EQ(added.exit_code, 0) << added.output;
  EXPECT_EQ(added.output.substr(0, added.output.find('\n')),
            "robot ci added to " + robots.string() + " (login robot+ci, groups: ci, expires: never)");
  EXPECT_NE(added.output.find("berth serve turns authentication on when it next starts"), std::string::npos)
      << added.output;  // no users, no robots: a server started without authentication

  // `TOKEN=$(berth robot add ...)`: stdout is the token and nothing else.
  auto const quiet = run({"/bin/sh", "-c", "exec \"$@\" 2>/dev/null", "sh", BERTH_BINARY, "--config", config.string(),
                          "robot", "add", "deploy", "--expires", "90d"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.output;
  EXPECT_EQ(quiet.output.size(), 50u) << quiet.output;  // berth_ + 43 characters + newline
  EXPECT_TRUE(quiet.output.starts_with("berth_"));
  auto const duplicate = berth({"add", "ci"});
  EXPECT_EQ(duplicate.exit_code, 1);
  EXPECT_EQ(duplicate.output, "berth: robot ci already exists in " + robots.string() +
                                  "\nHINT: give it a new token with `berth robot rotate ci`, or remove it with "
                                  "`berth robot del ci`\n");
  auto const bad_name = berth({"add", "robot+ci"});
  EXPECT_EQ(bad_name.exit_code, 1);
  EXPECT_EQ(bad_name.output,
            "berth: invalid robot name \"robot+ci\"\nHINT: use 1 to 64 letters, digits, . _ @ - (not starting with "
            "-)\n");
  auto const bad_group = berth({"add", "x", "--group", "a b"});
  EXPECT_EQ(bad_group.exit_code, 1);
  EXPECT_NE(bad_group.output.find("invalid group name \"a b\""), std::string::npos) << bad_group.output;
  for (auto const* expires : {"90", "soon", "0d", "-1d", "3651d", "1y"}) {
    auto const bad_expiry = berth({"add", "x", "--expires", expires});
    EXPECT_EQ(bad_expiry.exit_code, 2) << expires;
    EXPECT_NE(bad_expiry.output.find("expected a duration like 90d, 12h or 4w"), std::string::npos)
        << bad_expiry.output;
  }
  for (auto const* command : {"revoke", "rotate", "del"}) {
    auto const unknown = berth({command, "nobody"});
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_EQ(unknown.output,
              "berth: no robot nobody in " + robots.string() + "\nHINT: `berth robot list` shows the robots\n");
  }
  // Nothing was lost along the way.
  auto const list = berth({"list"});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_NE(list.output.find("NAME    LOGIN         STATE   GROUPS  CREATED"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("\nci "), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("\ndeploy "), std::string::npos) << list.output;
  EXPECT_EQ(list.output.find("\nx "), std::string::npos) << list.output;
}

// Robots alone turn authentication on; a robots file berth cannot use stops the start.
TEST(RobotStart, RobotsAloneTurnAuthenticationOnAndABadFileStopsTheStart) {
  TempDir dir;
  auto const robots = dir.path() / "robots";
  auto const config = dir.write(
      "berth.yaml", "auth:\n  robots: " + robots.string() + "\npostgres:\n  enabled: false\nvolumes:\n  primary: " +
                        (dir.path() / "var").string() + "\n  backup: " + (dir.path() / "backup").string() + "\n");
  auto const added = run({BERTH_BINARY, "--config", config.string(), "robot", "add", "ci"});
  ASSERT_EQ(added.exit_code, 0) << added.output;
  {
    Process berth({BERTH_BINARY, "--config", config.string(), "serve", "--listen", "127.0.0.1:0"},
                  dir.path() / "berth.log", dir.path());
    auto const listening = berth.wait_for_output("listening address=", 30s);
    ASSERT_TRUE(listening) << berth.output();
    EXPECT_NE(berth.output().find("authentication is on users=0 grants=0 robots=1"), std::string::npos)
        << berth.output();
    auto const port = static_cast<std::uint16_t>(std::stoi(listening->substr(listening->rfind(':') + 1)));
    EXPECT_EQ(http_request("127.0.0.1", port, "GET", "/v2/")->status, 401);
    EXPECT_EQ(
        http_request("127.0.0.1", port, "GET", "/v2/", "", {{"Authorization", basic("robot+ci", token_of(added))}})
            ->status,
        200);
    berth.send_signal(SIGTERM);
    EXPECT_EQ(berth.wait_exit(30s), 0);
  }
  std::ofstream(robots, std::ios::app) << "{\"name\":\"broken\"}\n";
  auto const refused = run({BERTH_BINARY, "--config", config.string(), "serve", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.output.find(robots.string() + ":4: the field \"secret_sha256\" is missing"), std::string::npos)
      << refused.output;
}

}  // namespace
}  // namespace berth::testing
