// Authentication as clients meet it: `berth serve` on loopback with users from a real
// `htpasswd -B` file and grants in berth.yaml; skopeo and podman go through the Docker token
// flow over plain HTTP. Also the `berth user` commands against the real files.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/testing/oci_layout.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;

// Runs argv with `input` on its stdin (a pipe, so not a terminal); combined output returned.
RunResult run_with_stdin(std::vector<std::string> const& argv, std::string const& input) {
  int to_child[2];
  int from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_t const pid = ::fork();
  if (pid == 0) {
    ::dup2(to_child[0], 0);
    ::dup2(from_child[1], 1);
    ::dup2(from_child[1], 2);
    std::vector<char*> args;
    for (auto const& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  if (::write(to_child[1], input.data(), input.size()) < 0) throw std::runtime_error("write to child");
  ::close(to_child[1]);
  RunResult result;
  char buffer[4096];
  for (ssize_t count; (count = ::read(from_child[0], buffer, sizeof buffer)) > 0;)
    result.output.append(buffer, static_cast<std::size_t>(count));
  ::close(from_child[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// alice pushes and pulls api/ and site/; bob only pulls api/; anyone pulls site/.
constexpr char const* grants = R"(
access:
  - users: [alice]
    actions: [pull, push]
    repositories: [api, site]
  - users: [bob]
    actions: [pull]
    repositories: [api/*]
  - anonymous: true
    actions: [pull]
    repositories: [site]
)";

class Auth : public ::testing::Test {
public:
  static fs::path make_htpasswd_for(TempDir const& dir) { return make_htpasswd(dir); }

protected:
  static fs::path make_htpasswd(TempDir const& dir) {
    auto const file = dir.path() / "htpasswd";
    // Cost 5 keeps the test fast; the format is the one `htpasswd -B` writes at any cost.
    EXPECT_EQ(run({"/usr/bin/htpasswd", "-cbB", "-C", "5", file.string(), "alice", "alice-secret"}).exit_code, 0);
    EXPECT_EQ(run({"/usr/bin/htpasswd", "-bB", "-C", "5", file.string(), "bob", "bob-secret"}).exit_code, 0);
    return file;
  }

  std::string registry(std::string const& repository_and_tag) const {
    return "docker://127.0.0.1:" + std::to_string(berth_.port()) + "/" + repository_and_tag;
  }
  RunResult push(std::string const& target, std::optional<std::string> creds) {
    std::vector<std::string> args = {"copy", "--dest-tls-verify=false"};
    if (creds) args.push_back("--dest-creds=" + *creds);
    args.push_back("oci:" + layout_.dir().string() + ":v1");
    args.push_back(registry(target));
    return skopeo(args);
  }
  RunResult pull(std::string const& target, std::optional<std::string> creds) {
    std::vector<std::string> args = {"copy", "--src-tls-verify=false"};
    if (creds) args.push_back("--src-creds=" + *creds);
    args.push_back(registry(target));
    args.push_back("dir:" + (scratch_.path() / ("pulled-" + std::to_string(++pulls_))).string());
    return skopeo(args);
  }

  TempDir users_dir_;
  BerthInstance berth_{"auth:\n  htpasswd: " + make_htpasswd(users_dir_).string() + "\n" + grants};
  TempDir scratch_;
  OciLayout layout_{scratch_.path() / "src"};
  int pulls_ = 0;

  void SetUp() override {
    auto const image = layout_.add_image({64 * 1024, 1024}, 61);
    layout_.tag(image.manifest, "v1");
  }
};

TEST_F(Auth, UnauthenticatedProbeGetsTheTokenChallenge) {
  RawConnection connection("127.0.0.1", berth_.port());
  ASSERT_TRUE(connection.send("GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:5555\r\n\r\n"));
  auto const probe = connection.read_response();
  ASSERT_TRUE(probe);
  EXPECT_EQ(probe->status, 401);
  EXPECT_EQ(probe->header("WWW-Authenticate"), "Bearer realm=\"http://127.0.0.1:5555/token\",service=\"berth\"");
  auto const health = http_request("127.0.0.1", berth_.port(), "GET", "/healthz");
  EXPECT_EQ(health->status, 200);  // outside /v2/: no credentials needed
  EXPECT_NE(berth_.process().output().find("authentication is on users=2 grants=3"), std::string::npos)
      << berth_.process().output();
  // The signing key was made on first start, readable by the owner only.
  EXPECT_TRUE(fs::exists(berth_.data_dir() / "secrets" / "token-signing-key.pem"));
}

TEST_F(Auth, SkopeoPushesAndPullsThroughTheTokenFlow) {
  auto const pushed = push("api/orders:v1", "alice:alice-secret");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  auto const pulled = pull("api/orders:v1", "bob:bob-secret");
  EXPECT_EQ(pulled.exit_code, 0) << pulled.output;
  // The token endpoint and then bearer requests: the log shows GET /token and no secret.
  auto const log = berth_.process().output();
  EXPECT_NE(log.find("\"method\":\"GET\",\"path\":\"/token\""), std::string::npos) << log;
  EXPECT_EQ(log.find("alice-secret"), std::string::npos);
  EXPECT_EQ(log.find("Bearer ey"), std::string::npos);
}

TEST_F(Auth, UserWithoutPushIsDenied) {
  auto const pushed = push("api/orders:v1", "bob:bob-secret");
  EXPECT_NE(pushed.exit_code, 0);
  EXPECT_NE(pushed.output.find("denied"), std::string::npos) << pushed.output;
  EXPECT_NE(pushed.output.find("push access to repository api/orders is not granted to user bob"), std::string::npos)
      << pushed.output;
  // ...and says which grant is missing, in the configuration's words.
  EXPECT_NE(pushed.output.find("grants it under access: in berth.yaml (- users: [bob]  actions: [pull, push]  "
                               "repositories: [api/orders])"),
            std::string::npos)
      << pushed.output;
}

TEST_F(Auth, WrongPasswordAndUnknownUserFail) {
  auto const wrong = push("api/orders:v1", "alice:not-her-password");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.output.find("unauthorized"), std::string::npos) << wrong.output;
  auto const unknown = pull("api/orders:v1", "mallory:alice-secret");
  EXPECT_NE(unknown.exit_code, 0) << unknown.output;
  auto const anonymous = push("api/orders:v1", std::nullopt);
  EXPECT_NE(anonymous.exit_code, 0) << anonymous.output;
}

TEST_F(Auth, AnonymousPullOnSiteWhilePushStillNeedsAUser) {
  ASSERT_EQ(push("site/web:v1", "alice:alice-secret").exit_code, 0);
  auto const pulled = pull("site/web:v1", std::nullopt);
  EXPECT_EQ(pulled.exit_code, 0) << pulled.output;
  // Anonymous and not granted: a 401 that makes clients ask for a login, not a bare 403.
  auto const anonymous_push = push("site/web:v2", std::nullopt);
  EXPECT_NE(anonymous_push.exit_code, 0);
  EXPECT_NE(anonymous_push.output.find("authentication required"), std::string::npos) << anonymous_push.output;
  EXPECT_EQ(anonymous_push.output.find("denied"), std::string::npos) << anonymous_push.output;
  // Without a token, plain HTTP: anonymous reads of site/ work, of api/ they do not.
  EXPECT_EQ(http_request("127.0.0.1", berth_.port(), "GET", "/v2/site/web/tags/list")->status, 200);
  EXPECT_EQ(http_request("127.0.0.1", berth_.port(), "GET", "/v2/api/orders/tags/list")->status, 401);
}

TEST_F(Auth, ForgedBearerTokenIsRefused) {
  auto const token = http_request("127.0.0.1", berth_.port(), "GET", "/token?scope=repository:api/orders:pull", "",
                                  {{"Authorization", "Basic Ym9iOmJvYi1zZWNyZXQ="}});  // bob:bob-secret
  ASSERT_EQ(token->status, 200) << token->body;
  std::string jwt = nlohmann::json::parse(token->body)["token"];
  auto const ok = http_request("127.0.0.1", berth_.port(), "GET", "/v2/api/orders/tags/list", "",
                               {{"Authorization", "Bearer " + jwt}});
  EXPECT_NE(ok->status, 401);            // 404: nothing pushed yet, but through the door
  auto& flipped = jwt[jwt.size() - 10];  // inside the signature
  flipped = flipped == 'A' ? 'B' : 'A';
  auto const forged = http_request("127.0.0.1", berth_.port(), "GET", "/v2/api/orders/tags/list", "",
                                   {{"Authorization", "Bearer " + jwt}});
  EXPECT_EQ(forged->status, 401);
  EXPECT_NE(forged->body.find("UNAUTHORIZED"), std::string::npos);
}

TEST_F(Auth, PodmanLogsIn) {
  auto const target = "127.0.0.1:" + std::to_string(berth_.port());
  auto const auth_file = scratch_.path() / "auth.json";
  std::vector<std::string> base = {"/usr/bin/podman",
                                   "--root",
                                   (scratch_.path() / "podman-root").string(),
                                   "--runroot",
                                   (scratch_.path() / "podman-run").string(),
                                   "--storage-driver",
                                   "vfs",
                                   "--cgroup-manager",
                                   "cgroupfs",
                                   "--events-backend",
                                   "none",
                                   "login",
                                   "--tls-verify=false",
                                   "--authfile",
                                   auth_file.string(),
                                   "-u"};
  auto login = base;
  login.insert(login.end(), {"alice", "--password-stdin", target});
  auto const good = run_with_stdin(login, "alice-secret\n");
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_NE(read_file(auth_file).find(target), std::string::npos);
  auto bad = base;
  bad.insert(bad.end(), {"alice", "--password-stdin", target});
  auto const refused = run_with_stdin(bad, "wrong\n");
  EXPECT_NE(refused.exit_code, 0) << refused.output;
}

// `berth user` edits the files berth serve reads; no server needed.
TEST(UserCommands, AddPasswdListDel) {
  TempDir dir;
  auto const config = dir.write("berth.yaml", "volumes:\n  primary: " + (dir.path() / "var").string() +
                                                  "\n  backup: " + (dir.path() / "backup").string() +
                                                  "\nauth:\n  htpasswd: users/htpasswd\n");
  auto const berth = [&](std::vector<std::string> args, std::string const& input = "") {
    std::vector<std::string> argv = {BERTH_BINARY, "--config", config.string(), "user"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_with_stdin(argv, input);
  };
  auto const htpasswd = dir.path() / "users" / "htpasswd";

  auto added = berth({"add", "carol", "--group", "ci", "--group", "dev", "--password-stdin"}, "carol pw\n");
  ASSERT_EQ(added.exit_code, 0) << added.output;
  // No berth runs on this volume: nothing to restart (not "systemctl restart berth").
  EXPECT_NE(added.output.find("berth serve reads it when it starts (it is not running on "), std::string::npos)
      << added.output;
  EXPECT_EQ(run({"/usr/bin/htpasswd", "-vb", htpasswd.string(), "carol", "carol pw"}).exit_code, 0);
  EXPECT_EQ(read_file(dir.path() / "var" / "secrets" / "groups"), "ci: carol\ndev: carol\n");
  EXPECT_EQ(berth({"add", "dave", "--password-stdin"}, "d\n").exit_code, 0);
  EXPECT_EQ(berth({"list"}).output, "carol  groups: ci,dev\ndave\n");
  EXPECT_EQ(nlohmann::json::parse(berth({"list", "--json"}).output),
            nlohmann::json::parse(R"([{"name":"carol","groups":["ci","dev"]},{"name":"dave","groups":[]}])"));

  auto const again = berth({"add", "carol", "--password-stdin"}, "x\n");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.output, "berth: user carol already exists in " + htpasswd.string() +
                              "\nHINT: change the password with `berth user passwd carol`\n");
  auto const no_tty = berth({"add", "erin"}, "typed\n");
  EXPECT_EQ(no_tty.exit_code, 1);
  EXPECT_EQ(no_tty.output,
            "berth: stdin is not a terminal, so the password cannot be asked for\nHINT: pass "
            "--password-stdin to read it as one line from stdin\n");
  EXPECT_EQ(berth({"add", "erin", "--password-stdin"}, "").exit_code, 1);
  EXPECT_EQ(berth({"add", "bad:name", "--password-stdin"}, "x\n").exit_code, 1);

  ASSERT_EQ(berth({"passwd", "carol", "--password-stdin"}, "new pw\n").exit_code, 0);
  EXPECT_EQ(run({"/usr/bin/htpasswd", "-vb", htpasswd.string(), "carol", "new pw"}).exit_code, 0);
  EXPECT_NE(run({"/usr/bin/htpasswd", "-vb", htpasswd.string(), "carol", "carol pw"}).exit_code, 0);

  ASSERT_EQ(berth({"del", "carol"}).exit_code, 0);
  EXPECT_EQ(berth({"list"}).output, "dave\n");
  EXPECT_EQ(read_file(dir.path() / "var" / "secrets" / "groups"), "");
  EXPECT_EQ(berth({"del", "carol"}).exit_code, 1);
  EXPECT_EQ(read_file(htpasswd).find("carol"), std::string::npos);
  EXPECT_EQ(read_file(htpasswd).find("new pw"), std::string::npos);  // only hashes are stored
}

// A user file berth cannot use stops the start with the line that is wrong.
TEST(AuthStart, BadHtpasswdLineStopsTheStart) {
  TempDir dir;
  auto const users = dir.write("htpasswd", "alice:$apr1$abc$defghijklmnopqrstuvwx\n");
  auto const config = dir.write("berth.yaml", "auth:\n  htpasswd: " + users.string() + "\n");
  auto const result = run({BERTH_BINARY, "--config", config.string(), "serve", "--listen", "127.0.0.1:0", "--data",
                           (dir.path() / "var").string(), "--backup", (dir.path() / "backup").string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find(users.string() + ":1: user alice has a password hash that is not bcrypt"),
            std::string::npos)
      << result.output;
}

// Users but no grants (the first hour's trap): the start names the user and the grant that would
// help; an anonymous push is asked to sign in (401), the signed-in user is told what is missing.
TEST(AuthStart, AUserWithoutAnyGrantIsNamedAtStartAndEveryRefusalSaysWhy) {
  TempDir users_dir;
  BerthInstance berth("auth:\n  htpasswd: " + Auth::make_htpasswd_for(users_dir).string() + "\n");
  EXPECT_NE(berth.process().output().find("access: user alice has no grant, so every request of theirs is refused"),
            std::string::npos)
      << berth.process().output();
  TempDir scratch;
  OciLayout layout(scratch.path() / "src");
  layout.tag(layout.add_image({1024}, 62).manifest, "v1");
  auto const push = [&](std::optional<std::string> creds) {
    std::vector<std::string> args = {"copy", "--dest-tls-verify=false"};
    if (creds) args.push_back("--dest-creds=" + *creds);
    args.push_back("oci:" + layout.dir().string() + ":v1");
    args.push_back("docker://127.0.0.1:" + std::to_string(berth.port()) + "/api/orders:v1");
    return skopeo(args);
  };
  auto const anonymous = push(std::nullopt);
  EXPECT_NE(anonymous.exit_code, 0);
  EXPECT_NE(anonymous.output.find("authentication required"), std::string::npos) << anonymous.output;
  auto const alice = push("alice:alice-secret");
  EXPECT_NE(alice.exit_code, 0);
  EXPECT_NE(alice.output.find("403"), std::string::npos) << alice.output;  // skopeo stops at a HEAD: no body
  // Where the answer has a body, it names the grant that is missing.
  auto const upload = http_request("127.0.0.1", berth.port(), "POST", "/v2/api/orders/blobs/uploads/", "",
                                   {{"Authorization", "Basic YWxpY2U6YWxpY2Utc2VjcmV0"}});  // alice:alice-secret
  ASSERT_TRUE(upload);
  EXPECT_EQ(upload->status, 403);
  EXPECT_NE(upload->body.find("- users: [alice]  actions: [pull, push]  repositories: [api/orders]"), std::string::npos)
      << upload->body;
}

// A change to the users while berth serves in a terminal names that process, not systemd.
TEST(UserCommands, NameTheRunningServeToRestart) {
  BerthInstance berth;
  auto const added =
      run_with_stdin({BERTH_BINARY, "--config", berth.config_file().string(), "user", "add", "carol", "--password-stdin"},
                     "carol pw\n");
  ASSERT_EQ(added.exit_code, 0) << added.output;
  EXPECT_NE(added.output.find("restart the berth serve running as pid " + std::to_string(berth.process().pid())),
            std::string::npos)
      << added.output;
  EXPECT_EQ(added.output.find("systemctl"), std::string::npos) << added.output;
}

// With users, listening beyond loopback is allowed (and only then: serve_test covers the refusal).
TEST(AuthStart, UsersAllowListeningOnEveryInterface) {
  TempDir dir;
  auto const users = dir.path() / "htpasswd";
  ASSERT_EQ(run({"/usr/bin/htpasswd", "-cbB", "-C", "5", users.string(), "alice", "pw"}).exit_code, 0);
  auto const config =
      dir.write("berth.yaml", "auth:\n  htpasswd: " + users.string() + "\npostgres:\n  enabled: false\n");
  Process berth({BERTH_BINARY, "--config", config.string(), "serve", "--listen", "0.0.0.0:0", "--data",
                 (dir.path() / "var").string(), "--backup", (dir.path() / "backup").string()},
                dir.path() / "berth.log", dir.path());
  auto const listening = berth.wait_for_output("listening address=", std::chrono::seconds(30));
  ASSERT_TRUE(listening) << berth.output();
  EXPECT_NE(listening->find("0.0.0.0:"), std::string::npos) << *listening;
  EXPECT_EQ(berth.output().find("authentication is OFF"), std::string::npos);
  berth.send_signal(SIGTERM);
  EXPECT_EQ(berth.wait_exit(std::chrono::seconds(30)), 0);
}

}  // namespace
}  // namespace berth::testing
