// `berth promote` end to end: a source berth (images pushed with skopeo) and a second berth as
// the target, with TLS from its own CA and htpasswd users, so promotion goes through the real
// token handshake over verified TLS. Images are pulled back from the target with skopeo and
// compared byte for byte. The ECR flow runs against a stand-in ECR API (SigV4 checked by
// recomputation) whose tokens are the target's password for user AWS.
#include <algorithm>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/registry/ecr_client.hpp"
#include "berth/registry/http_client.hpp"
#include "berth/registry/sts.hpp"
#include "berth/testing/error_of.hpp"
#include "berth/testing/eventually.hpp"
#include "berth/testing/oci_layout.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth_instance.hpp"
#include "command_output.hpp"
#include "ecr_stand_in.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The one-line JSON summary among the command's output (logs go to stderr, also captured).
nlohmann::json summary_of(RunResult const& result) {
  std::string last;
  std::istringstream lines(result.output);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with("{")) last = line;
  auto json = nlohmann::json::parse(last, nullptr, false);
  if (!json.is_object()) throw std::runtime_error("no JSON summary in:\n" + result.output);
  return json;
}

fs::path make_htpasswd(TempDir const& dir, std::string const& user, std::string const& password) {
  auto const file = dir.path() / "htpasswd";
  auto const created = run({"/usr/bin/htpasswd", "-cbB", "-C", "5", file.string(), user, password});
  if (created.exit_code != 0) throw std::runtime_error(created.output);
  return file;
}

// The target: TLS from its own CA, one user with push rights on `namespaces`.
std::string target_yaml(fs::path const& htpasswd, std::string const& user, std::string const& namespaces) {
  return "server:\n  tls:\n    enabled: true\n    hostnames: [localhost, 127.0.0.1]\n"
         "registry:\n  namespaces: [" +
         namespaces + "]\nauth:\n  htpasswd: " + htpasswd.string() + "\naccess:\n  - users: [" + user +
         "]\n    actions: [pull, push]\n    repositories: [" + namespaces + "]\n";
}

class Promote : public ::testing::Test {
protected:
  std::string target_address() const { return "127.0.0.1:" + std::to_string(target_.port()); }
  fs::path target_ca() const { return target_.dir().path() / "tls" / "ca.crt"; }

  // skopeo trusts a directory of *.crt files.
  fs::path cert_dir() const {
    auto const dir = scratch_.path() / "certs";
    fs::create_directories(dir);
    fs::copy_file(target_ca(), dir / "ca.crt", fs::copy_options::overwrite_existing);
    return dir;
  }

  void push(std::string const& tag, bool all = false) {
    std::vector<std::string> args = {"copy", "--dest-tls-verify=false"};
    if (all) args.push_back("--all");
    args.push_back("oci:" + layout_.dir().string() + ":" + tag);
    args.push_back("docker://127.0.0.1:" + std::to_string(source_.port()) + "/api/app:" + tag);
    auto result = skopeo(args);
    ASSERT_EQ(result.exit_code, 0) << result.output;
  }

  // Pulls `reference` from the target into a dir: layout; returns the directory.
  fs::path pull_back(std::string const& reference, bool all = false) {
    auto const dir = scratch_.path() / ("pulled-" + std::to_string(++pulls_));
    std::vector<std::string> args = {"copy",        "--preserve-digests", "--src-cert-dir", cert_dir().string(),
                                     "--src-creds", "ci:ci-secret"};
    if (all) args.push_back("--all");
    args.push_back("docker://" + target_address() + "/" + reference);
    args.push_back("dir:" + dir.string());
    auto result = skopeo(args);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return dir;
  }

  RunResult promote(std::vector<std::string> extra) const {
    std::vector<std::string> args = {"promote"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--to-registry", "https://" + target_address(), "--ca-file", target_ca().string(),
                             "--creds", "ci:ci-secret"});
    return source_.command(args);
  }

  TempDir users_;
  BerthInstance target_{target_yaml(make_htpasswd(users_, "ci", "ci-secret"), "ci", "api, site, model")};
  BerthInstance source_;
  TempDir scratch_;
  OciLayout layout_{scratch_.path() / "layout"};
  int pulls_ = 0;
};

TEST_F(Promote, CopiesAMultiLayerImageByteForByteAndThenSendsNothing) {
  auto const image = layout_.add_image({300 * 1024, 2 * 1024 * 1024, 4096}, 11);
  layout_.tag(image.manifest, "v1");
  push("v1");

  auto const first = promote({"api/app:v1"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto const summary = summary_of(first);
  EXPECT_EQ(summary["result"], "ok");
  EXPECT_EQ(summary["digest"], image.manifest.digest);
  EXPECT_EQ(summary["blobs_sent"], 4);  // three layers and the config
  EXPECT_EQ(summary["manifests_sent"], 1);
  std::uint64_t content = image.config.size + image.manifest.size;
  for (auto const& layer : image.layers) content += layer.size;
  EXPECT_EQ(summary["bytes_sent"], content);
  EXPECT_EQ(summary["tags"], nlohmann::json::array({"v1"}));

  auto const pulled = pull_back("api/app:v1");
  EXPECT_EQ(read_file(pulled / "manifest.json"), layout_.read_blob(image.manifest.digest));
  for (auto const& layer : image.layers)
    EXPECT_EQ(read_file(pulled / layer.digest.substr(7)), layout_.read_blob(layer.digest));

  // Unchanged: only HEADs, no content, well under a second.
  auto const again = promote({"api/app:v1"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  auto const second = summary_of(again);
  EXPECT_EQ(second["bytes_sent"], 0);
  EXPECT_EQ(second["blobs_sent"], 0);
  EXPECT_EQ(second["blobs_present"], 4);
  EXPECT_EQ(second["manifests_sent"], 0);
  EXPECT_LT(second["seconds"].get<double>(), 1.0);

  // A new tag for the same image: only the manifest goes.
  auto const retag = promote({"api/app:v1", "--tag", "stable", "--tag", "2026-11"});
  ASSERT_EQ(retag.exit_code, 0) << retag.output;
  EXPECT_EQ(summary_of(retag)["blobs_sent"], 0);
  EXPECT_EQ(summary_of(retag)["manifests_sent"], 1);
  EXPECT_EQ(read_file(pull_back("api/app:2026-11") / "manifest.json"), layout_.read_blob(image.manifest.digest));

  auto const history = source_.command({"promote", "--history"});
  ASSERT_EQ(history.exit_code, 0) << history.output;
  EXPECT_TRUE(contains(history.output, "api/app:v1")) << history.output;
  auto log = read_file(source_.data_dir() / "promotions" / "history.jsonl");
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 3) << log;
  auto const records = nlohmann::json::parse(source_.command({"promote", "--history", "--json"}).output);
  ASSERT_EQ(records.size(), 3u) << records.dump();
  EXPECT_EQ(records[0]["source"], "api/app:v1") << records.dump();
  EXPECT_TRUE(records[0].contains("time")) << records.dump();
  auto const record = nlohmann::json::parse(log.substr(0, log.find('\n')));
  EXPECT_EQ(record["digest"], image.manifest.digest);
  EXPECT_EQ(record["target"], "https://" + target_address() + "/api/app");
  EXPECT_EQ(record["bytes_sent"], content);
  EXPECT_FALSE(record["user"].get<std::string>().empty());
}

TEST_F(Promote, CopiesAMultiArchIndexWithEveryImage) {
  auto const amd64 = layout_.add_image({200 * 1024, 1024}, 21, MediaTypes::oci, {"amd64", "linux", ""});
  auto const arm64 = layout_.add_image({150 * 1024, 1024}, 22, MediaTypes::oci, {"arm64", "linux", "v8"});
  auto const index =
      layout_.add_index({{amd64.manifest, {"amd64", "linux", ""}}, {arm64.manifest, {"arm64", "linux", "v8"}}});
  layout_.tag(index, "multi");
  push("multi", true);

  auto const dry = promote({"api/app:multi", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  auto const planned = summary_of(dry);
  EXPECT_EQ(planned["result"], "dry_run");
  EXPECT_EQ(planned["would_send"].size(), 4u + 2u + 3u);  // 4 layers, 2 configs; 3 manifests
  EXPECT_FALSE(fs::exists(source_.data_dir() / "promotions" / "history.jsonl"));

  auto const result = promote({"api/app:multi", "--tag", "release", "--parallel", "2"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(summary_of(result)["manifests_sent"], 3);
  auto const pulled = pull_back("api/app:release", true);
  EXPECT_EQ(read_file(pulled / "manifest.json"), layout_.read_blob(index.digest));
  EXPECT_EQ(read_file(pulled / (amd64.manifest.digest.substr(7) + ".manifest.json")),
            layout_.read_blob(amd64.manifest.digest));
  EXPECT_EQ(read_file(pulled / (arm64.manifest.digest.substr(7) + ".manifest.json")),
            layout_.read_blob(arm64.manifest.digest));
  EXPECT_EQ(summary_of(promote({"api/app:multi", "--tag", "release"}))["bytes_sent"], 0);
}

TEST_F(Promote, ByDigestWithReferrers) {
  auto const image = layout_.add_image({64 * 1024}, 31);
  auto const signature =
      layout_.add_artifact("application/vnd.dev.cosign.artifact.sig.v1+json", image.manifest, "{\"critical\":{}}");
  layout_.tag(image.manifest, "v1");
  layout_.tag(signature, "sig");
  push("v1");
  push("sig");
  auto const result = promote({"api/app@" + image.manifest.digest, "--tag", "v1", "--with-referrers"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(summary_of(result)["manifests_sent"], 2);
  auto const referrers = pull_back("api/app@" + signature.digest);
  EXPECT_EQ(read_file(referrers / "manifest.json"), layout_.read_blob(signature.digest));
}

TEST_F(Promote, KilledMidTransferThenRunAgainCompletes) {
  auto const image = layout_.add_image({48 * 1024 * 1024, 48 * 1024 * 1024}, 41);
  layout_.tag(image.manifest, "big");
  push("big");
  auto const config = source_.dir().path() / "berth.yaml";
  Process promotion(
      {BERTH_BINARY, "--config", config.string(), "promote", "api/app:big", "--parallel", "1", "--to-registry",
       "https://" + target_address(), "--ca-file", target_ca().string(), "--creds", "ci:ci-secret"},
      scratch_.path() / "promote.log");
  // Kill once the target holds part of an upload.
  auto const uploads = target_.data_dir() / "registry" / "uploads";
  bool const partial = eventually(60s, [&] {
    std::error_code ec;
    for (auto const& entry : fs::recursive_directory_iterator(uploads, ec))
      if (entry.path().filename() == "data" && entry.file_size(ec) > 1024 * 1024) return true;
    return false;
  });
  ASSERT_TRUE(partial) << promotion.output();
  promotion.send_signal(SIGKILL);
  EXPECT_EQ(promotion.wait_exit(10s), 128 + SIGKILL);
  auto const head = skopeo({"inspect", "--cert-dir", cert_dir().string(), "--creds", "ci:ci-secret",
                            "docker://" + target_address() + "/api/app:big"});
  EXPECT_NE(head.exit_code, 0) << "the tag must not exist after an interrupted promotion";

  auto const rerun = promote({"api/app:big"});
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
  auto const pulled = pull_back("api/app:big");
  EXPECT_EQ(read_file(pulled / "manifest.json"), layout_.read_blob(image.manifest.digest));
  EXPECT_EQ(fs::file_size(pulled / image.layers[1].digest.substr(7)), image.layers[1].size);
}

TEST_F(Promote, ExplainsWhatIsWrong) {
  auto const image = layout_.add_image({4096}, 51);
  layout_.tag(image.manifest, "v1");
  push("v1");

  auto const missing = promote({"api/app:nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(contains(missing.output, "berth: no image api/app:nope in the local registry\nHINT: ")) << missing.output;

  auto const wrong_password = source_.command({"promote", "api/app:v1", "--to-registry", "https://" + target_address(),
                                               "--ca-file", target_ca().string(), "--creds", "ci:wrong"});
  EXPECT_EQ(wrong_password.exit_code, 1);
  EXPECT_TRUE(contains(wrong_password.output, "failed: HTTP 401")) << wrong_password.output;
  EXPECT_TRUE(contains(wrong_password.output, "HINT: check the credentials")) << wrong_password.output;

  auto const untrusted = source_.command(
      {"promote", "api/app:v1", "--to-registry", "https://" + target_address(), "--creds", "ci:ci-secret"});
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_TRUE(contains(untrusted.output, "the certificate is not trusted")) << untrusted.output;

  // No credentials at all: the hint says so, not that credentials lack rights.
  auto const anonymous = source_.command(
      {"promote", "api/app:v1", "--to-registry", "https://" + target_address(), "--ca-file", target_ca().string()});
  EXPECT_EQ(anonymous.exit_code, 1);
  EXPECT_TRUE(contains(anonymous.output, "wants a login and none was given: --creds USER:PASS")) << anonymous.output;
  EXPECT_FALSE(contains(anonymous.output, "credentials work")) << anonymous.output;

  // A plain-HTTP registry named without a scheme (https by default): said at once, never retried.
  auto const plain = "127.0.0.1:" + std::to_string(source_.port());
  auto const mismatch = source_.command({"promote", "api/app:v1", "--to-registry", plain});
  EXPECT_EQ(mismatch.exit_code, 1);
  EXPECT_TRUE(contains(mismatch.output, "this registry speaks plain HTTP, not HTTPS\nHINT: use http://" + plain))
      << mismatch.output;
  EXPECT_FALSE(contains(mismatch.output, "retrying")) << mismatch.output;

  auto const usage = source_.command({"promote", "api/app:v1"});
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  auto const bad_source = promote({"api/app"});
  EXPECT_EQ(bad_source.exit_code, 1);
  EXPECT_TRUE(contains(bad_source.output, "expected REPOSITORY:TAG or REPOSITORY@DIGEST")) << bad_source.output;

  // Failures are in the audit log too.
  auto const history = source_.command({"promote", "--history"});
  EXPECT_TRUE(contains(history.output, "failed")) << history.output;
}

// The ECR flow: GetAuthorizationToken and CreateRepository at the stand-in API (SigV4 checked),
// then the push to the target berth as user AWS with the token.
class PromoteToEcr : public ::testing::Test {
protected:
  PromoteToEcr() {
    bundle_ = scratch_.write("ca-bundle.pem",
                             read_file(target_.dir().path() / "tls" / "ca.crt") + read_file(stand_in_.ca_file()));
    source_ = std::make_unique<BerthInstance>(
        "promotion:\n  targets:\n    staging:\n      registry: 127.0.0.1:" + std::to_string(target_.port()) +
        "\n      region: eu-west-1\n      repository_prefix: prod\n      create_repository: " +
        "true\n      api_endpoint: " + stand_in_.url() + "\n      ca_file: " + bundle_.string() +
        "\n    locked:\n      registry: 127.0.0.1:" + std::to_string(target_.port()) +
        "\n      region: eu-west-1\n      repository_prefix: prod\n      api_endpoint: " + stand_in_.url() +
        "\n      ca_file: " + bundle_.string() + "\n");
  }

  RunResult promote(std::vector<std::string> args, std::vector<std::string> env) const {
    std::vector<std::string> argv = {BERTH_BINARY, "--config", (source_->dir().path() / "berth.yaml").string(),
                                     "promote"};
    argv.insert(argv.end(), args.begin(), args.end());
    for (char const* name : {"AWS_SHARED_CREDENTIALS_FILE=", "AWS_CONFIG_FILE="})
      if (std::none_of(env.begin(), env.end(), [&](std::string const& entry) { return entry.starts_with(name); }))
        env.push_back(name + (scratch_.path() / "none").string());
    return run(argv, env);
  }
  // Pushes a small image to the source as api/orders:TAG; returns its manifest digest.
  std::string push_source_image(std::string const& tag, int seed) {
    OciLayout layout(scratch_.path() / ("layout-" + tag));
    auto const image = layout.add_image({64 * 1024, 1024}, seed);
    layout.tag(image.manifest, tag);
    auto pushed = skopeo({"copy", "--dest-tls-verify=false", "oci:" + layout.dir().string() + ":" + tag,
                          "docker://127.0.0.1:" + std::to_string(source_->port()) + "/api/orders:" + tag});
    EXPECT_EQ(pushed.exit_code, 0) << pushed.output;
    return image.manifest.digest;
  }
  // A config file with a chain: promote (role in account 3, external ID) <- hop (role in
  // account 2) <- base (the stand-in's long-term keys, in the credentials file).
  fs::path write_role_profiles(std::string const& base_secret = EcrStandIn::secret_key) {
    scratch_.write("aws/credentials", std::string("[base]\naws_access_key_id = ") + EcrStandIn::access_key +
                                          "\naws_secret_access_key = " + base_secret + "\n");
    return scratch_.write("aws/config", "[profile hop]\nrole_arn = " + hop_role_ +
                                            "\nsource_profile = base\n"
                                            "[profile promote]\nregion = eu-west-1\nrole_arn = " +
                                            promote_role_ +
                                            "\nsource_profile = hop\nexternal_id = ext-42\nduration_seconds = 900\n"
                                            "[profile wrong-external-id]\nrole_arn = " +
                                            promote_role_ +
                                            "\nsource_profile = hop\nexternal_id = ext-43\n"
                                            "[profile untrusted]\nrole_arn = " +
                                            promote_role_ + "\nsource_profile = base\nexternal_id = ext-42\n");
  }
  std::vector<std::string> role_env(std::string const& profile) const {
    return {"AWS_PROFILE=" + profile, "AWS_CONFIG_FILE=" + (scratch_.path() / "aws" / "config").string(),
            "AWS_SHARED_CREDENTIALS_FILE=" + (scratch_.path() / "aws" / "credentials").string(),
            "AWS_ENDPOINT_URL_STS=" + stand_in_.url()};
  }
  void add_roles() {
    stand_in_.add_role(hop_role_, "", {EcrStandIn::user_arn});
    stand_in_.add_role(promote_role_, "ext-42", {hop_role_});
  }
  static std::vector<std::string> good_keys() {
    return {std::string("AWS_ACCESS_KEY_ID=") + EcrStandIn::access_key,
            std::string("AWS_SECRET_ACCESS_KEY=") + EcrStandIn::secret_key};
  }

  TempDir users_;
  std::string const token_password_ = "token-" + std::to_string(::getpid());
  BerthInstance target_{target_yaml(make_htpasswd(users_, "AWS", token_password_), "AWS", "prod")};
  EcrStandIn stand_in_{"eu-west-1", token_password_, "https://127.0.0.1:" + std::to_string(target_.port())};
  TempDir scratch_;
  fs::path bundle_;
  std::unique_ptr<BerthInstance> source_;
  std::string const hop_role_ = "arn:aws:iam::222222222222:role/hop";
  std::string const promote_role_ = "arn:aws:iam::333333333333:role/promote";
};

TEST_F(PromoteToEcr, CreatesTheRepositoryAndPushesWithTheToken) {
  OciLayout layout(scratch_.path() / "layout");
  auto const image = layout.add_image({128 * 1024, 2048}, 61);
  layout.tag(image.manifest, "v3");
  auto pushed = skopeo({"copy", "--dest-tls-verify=false", "oci:" + layout.dir().string() + ":v3",
                        "docker://127.0.0.1:" + std::to_string(source_->port()) + "/api/orders:v3"});
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;

  auto const result = promote({"api/orders:v3", "--to", "staging"}, good_keys());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto const summary = summary_of(result);
  EXPECT_EQ(summary["digest"], image.manifest.digest);
  EXPECT_EQ(summary["target"], "ecr:staging https://127.0.0.1:" + std::to_string(target_.port()) + "/prod/api/orders");
  EXPECT_EQ(stand_in_.repositories(), std::set<std::string>{"prod/api/orders"});
  EXPECT_EQ(stand_in_.calls("GetAuthorizationToken"), 1);
  EXPECT_EQ(stand_in_.calls("CreateRepository"), 1);

  auto certs = scratch_.path() / "certs";
  fs::create_directories(certs);
  fs::copy_file(target_.dir().path() / "tls" / "ca.crt", certs / "ca.crt");
  auto const inspected = skopeo({"inspect", "--raw", "--cert-dir", certs.string(), "--creds", "AWS:" + token_password_,
                                 "docker://127.0.0.1:" + std::to_string(target_.port()) + "/prod/api/orders:v3"});
  ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_EQ(inspected.output, layout.read_blob(image.manifest.digest));

  // Again: the repository exists now (Describe only), nothing is sent.
  auto const again = promote({"api/orders:v3", "--to", "staging"}, good_keys());
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(summary_of(again)["bytes_sent"], 0);
  EXPECT_EQ(stand_in_.calls("CreateRepository"), 1);
}

TEST_F(PromoteToEcr, ExplainsRefusedCredentialsAndAMissingRepository) {
  OciLayout layout(scratch_.path() / "layout");
  layout.tag(layout.add_image({1024}, 62).manifest, "v1");
  ASSERT_EQ(skopeo({"copy", "--dest-tls-verify=false", "oci:" + layout.dir().string() + ":v1",
                    "docker://127.0.0.1:" + std::to_string(source_->port()) + "/api/orders:v1"})
                .exit_code,
            0);

  auto const wrong_secret =
      promote({"api/orders:v1", "--to", "staging"},
              {std::string("AWS_ACCESS_KEY_ID=") + EcrStandIn::access_key, "AWS_SECRET_ACCESS_KEY=not-the-secret"});
  EXPECT_EQ(wrong_secret.exit_code, 1);
  EXPECT_TRUE(contains(wrong_secret.output, "InvalidSignatureException")) << wrong_secret.output;
  EXPECT_TRUE(contains(wrong_secret.output, "HINT: the secret access key from environment")) << wrong_secret.output;

  auto const unknown_key = promote({"api/orders:v1", "--to", "staging"},
                                   {"AWS_ACCESS_KEY_ID=AKIDUNKNOWN", "AWS_SECRET_ACCESS_KEY=whatever"});
  EXPECT_EQ(unknown_key.exit_code, 1);
  EXPECT_TRUE(contains(unknown_key.output, "HINT: AWS does not know the access key")) << unknown_key.output;

  auto env = good_keys();
  env.push_back(std::string("AWS_SESSION_TOKEN=") + EcrStandIn::expired_session_token);
  auto const expired = promote({"api/orders:v1", "--to", "staging"}, env);
  EXPECT_EQ(expired.exit_code, 1);
  EXPECT_TRUE(contains(expired.output, "have expired\nHINT: renew them")) << expired.output;

  auto const locked = promote({"api/orders:v1", "--to", "locked"}, good_keys());
  EXPECT_EQ(locked.exit_code, 1);
  EXPECT_TRUE(contains(locked.output, "RepositoryNotFoundException")) << locked.output;
  EXPECT_TRUE(contains(locked.output, "or set create_repository: true for this target")) << locked.output;

  auto const unknown_target = promote({"api/orders:v1", "--to", "nowhere"}, good_keys());
  EXPECT_EQ(unknown_target.exit_code, 1);
  EXPECT_TRUE(contains(unknown_target.output, "no promotion target \"nowhere\"")) << unknown_target.output;
}

TEST_F(PromoteToEcr, StandInRefusesAStaleDateAndTheTokenIsCached) {
  registry::http::Client http({.extra_ca_file = stand_in_.ca_file()});
  auto const send_signed_at = [&](std::chrono::system_clock::time_point time) {
    auto const authority = registry::http::Url::parse(stand_in_.url()).authority();
    auto signed_request =
        registry::ecr::sign_api_request("GetAuthorizationToken", "{}", "eu-west-1",
                                        {EcrStandIn::access_key, EcrStandIn::secret_key, ""}, time, authority);
    registry::http::Request request{.method = "POST", .url = stand_in_.url() + "/", .body = signed_request.body};
    for (auto const& header : signed_request.headers)
      if (header.name != "Host") request.headers.emplace_back(header.name, header.value);
    return http.send(request);
  };
  EXPECT_EQ(send_signed_at(std::chrono::system_clock::now()).status, 200);
  auto const stale = send_signed_at(std::chrono::system_clock::now() - 6min);
  EXPECT_EQ(stale.status, 400);
  EXPECT_TRUE(contains(stale.body, "Signature expired")) << stale.body;

  registry::ecr::Client client({.registry_host = "127.0.0.1:" + std::to_string(target_.port()),
                                .region = "eu-west-1",
                                .api_endpoint = stand_in_.url(),
                                .ca_file = stand_in_.ca_file(),
                                .create_repository = false},
                               [] {
                                 return registry::aws::ResolvedCredentials{
                                     {EcrStandIn::access_key, EcrStandIn::secret_key, ""}, std::nullopt, "test"};
                               });
  auto const token = client.authorization_token();
  EXPECT_EQ(token.username, "AWS");
  EXPECT_EQ(token.password, token_password_);
  client.authorization_token();
  EXPECT_EQ(client.token_requests(), 1);  // reused: 12 h left, refreshed only 5 min before
}

TEST_F(PromoteToEcr, AssumesAChainOfRolesAndSignsEcrCallsWithTheTemporaryKeys) {
  add_roles();
  write_role_profiles();
  auto const digest = push_source_image("v5", 63);

  auto const result = promote({"api/orders:v5", "--to", "staging"}, role_env("promote"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(summary_of(result)["digest"], digest);

  // base's long-term key assumed hop; hop's temporary key assumed promote (with the external ID).
  auto const assumers = stand_in_.signers("AssumeRole");
  ASSERT_EQ(assumers.size(), 2u);
  EXPECT_EQ(assumers[0], EcrStandIn::access_key);
  EXPECT_EQ(stand_in_.role_of(assumers[1]), hop_role_);
  // Every ECR call was signed with promote's temporary key; the stand-in accepts such a key only
  // with its own session token, signed.
  for (auto const* operation : {"DescribeRepositories", "CreateRepository", "GetAuthorizationToken"}) {
    auto const keys = stand_in_.signers(operation);
    ASSERT_EQ(keys.size(), 1u) << operation;
    EXPECT_EQ(stand_in_.role_of(keys[0]), promote_role_) << operation;
  }
  auto certs = scratch_.path() / "certs";
  fs::create_directories(certs);
  fs::copy_file(target_.dir().path() / "tls" / "ca.crt", certs / "ca.crt");
  auto const inspected = skopeo({"inspect", "--raw", "--cert-dir", certs.string(), "--creds", "AWS:" + token_password_,
                                 "docker://127.0.0.1:" + std::to_string(target_.port()) + "/prod/api/orders:v5"});
  ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_EQ(registry::sigv4::sha256_hex(inspected.output), digest.substr(7));
}

TEST_F(PromoteToEcr, ExplainsARefusedAssumeRole) {
  add_roles();
  auto const config = write_role_profiles();
  auto const credentials = scratch_.path() / "aws" / "credentials";
  push_source_image("v6", 64);

  // base may not assume promote directly: AccessDenied, naming the role and the source identity.
  auto const untrusted = promote({"api/orders:v6", "--to", "staging"}, role_env("untrusted"));
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_TRUE(contains(untrusted.output,
                       "cannot assume role " + promote_role_ + " (profile 'untrusted' in " + config.string() +
                           " line 15) at " + stand_in_.url() + ": AccessDenied (User: " + EcrStandIn::user_arn +
                           " is not authorized to perform: sts:AssumeRole on resource: " + promote_role_ +
                           ")\nthe request was signed with the credentials from profile 'base' in " +
                           credentials.string() + " (access key ...NDIN)\nHINT: the role's trust policy must allow"))
      << untrusted.output;
  EXPECT_EQ(stand_in_.calls("GetAuthorizationToken"), 0);

  auto const wrong_external_id = promote({"api/orders:v6", "--to", "staging"}, role_env("wrong-external-id"));
  EXPECT_EQ(wrong_external_id.exit_code, 1);
  EXPECT_TRUE(contains(wrong_external_id.output, "AccessDenied (User: arn:aws:sts::222222222222:assumed-role/hop/"))
      << wrong_external_id.output;
  EXPECT_TRUE(contains(wrong_external_id.output, "the request was signed with the credentials from role " + hop_role_))
      << wrong_external_id.output;

  write_role_profiles("not-the-secret");
  auto const wrong_secret = promote({"api/orders:v6", "--to", "staging"}, role_env("promote"));
  EXPECT_EQ(wrong_secret.exit_code, 1);
  EXPECT_TRUE(contains(wrong_secret.output, "SignatureDoesNotMatch")) << wrong_secret.output;
  EXPECT_TRUE(contains(wrong_secret.output, "HINT: the secret access key from profile 'base' in "))
      << wrong_secret.output;

  // Keys from the environment whose session token has expired (credential_source = Environment).
  auto const env_config = scratch_.write(
      "aws/env-config", "[profile fromenv]\nrole_arn = " + hop_role_ + "\ncredential_source = Environment\n");
  registry::aws::Environment environment{{{"AWS_PROFILE", "fromenv"},
                                          {"AWS_CONFIG_FILE", env_config.string()},
                                          {"AWS_SHARED_CREDENTIALS_FILE", (scratch_.path() / "none").string()},
                                          {"AWS_ENDPOINT_URL_STS", stand_in_.url()},
                                          {"AWS_REGION", "eu-west-1"},
                                          {"AWS_ACCESS_KEY_ID", EcrStandIn::access_key},
                                          {"AWS_SECRET_ACCESS_KEY", EcrStandIn::secret_key},
                                          {"AWS_SESSION_TOKEN", EcrStandIn::expired_session_token}},
                                         scratch_.path()};
  auto const expired =
      error_of([&] { registry::aws::resolve_credentials(environment, {.extra_ca_file = stand_in_.ca_file()}); });
  EXPECT_EQ(expired, "cannot assume role " + hop_role_ + " (profile 'fromenv' in " + env_config.string() +
                         " line 2) at " + stand_in_.url() +
                         ": ExpiredToken (The security token included in the request is expired)\nthe request was "
                         "signed with the credentials from environment (access key ...NDIN)\nHINT: the source "
                         "credentials from environment have expired; renew them (a new session token, or check "
                         "credential_process) and run the command again.");

  // The refusal is in the audit log, and nothing reached ECR.
  auto const history = source_->command({"promote", "--history"});
  EXPECT_TRUE(contains(history.output, "cannot assume role")) << history.output;
  EXPECT_EQ(stand_in_.calls("GetAuthorizationToken"), 0);
  EXPECT_TRUE(stand_in_.repositories().empty());
}

TEST_F(PromoteToEcr, StsStandInRefusesStaleDatesAndUnknownKeys) {
  add_roles();
  registry::http::Client http({.extra_ca_file = stand_in_.ca_file()});
  auto const send = [&](registry::sigv4::Credentials const& credentials, std::chrono::system_clock::time_point time) {
    auto const signed_request = registry::sts::sign_assume_role({.role_arn = hop_role_, .session_name = "test"},
                                                                {stand_in_.url(), "eu-west-1"}, credentials, time);
    registry::http::Request request{.method = "POST", .url = signed_request.url, .body = signed_request.body};
    for (auto const& header : signed_request.headers)
      if (header.name != "Host") request.headers.emplace_back(header.name, header.value);
    return http.send(request);
  };
  auto const now = std::chrono::system_clock::now();
  auto const good = send({EcrStandIn::access_key, EcrStandIn::secret_key, ""}, now);
  ASSERT_EQ(good.status, 200) << good.body;
  EXPECT_GT(registry::sts::parse_assume_role_response(good.body).expiration - now, 59min);
  auto const stale = send({EcrStandIn::access_key, EcrStandIn::secret_key, ""}, now - 6min);
  EXPECT_EQ(stale.status, 403);
  EXPECT_EQ(registry::sts::parse_error_response(stale.body).code, "SignatureDoesNotMatch");
  EXPECT_TRUE(contains(stale.body, "Signature expired")) << stale.body;
  auto const unknown = send({"AKIDUNKNOWN", EcrStandIn::secret_key, ""}, now);
  EXPECT_EQ(registry::sts::parse_error_response(unknown.body).code, "InvalidClientTokenId");
  // A temporary key without its session token is not accepted.
  auto const temporary = registry::sts::parse_assume_role_response(good.body).credentials;
  auto const no_token = send({temporary.access_key_id, temporary.secret_access_key, ""}, now);
  EXPECT_EQ(registry::sts::parse_error_response(no_token.body).code, "InvalidClientTokenId");
}

TEST_F(PromoteToEcr, AssumedCredentialsAreRenewedShortlyBeforeTheyExpire) {
  add_roles();
  write_role_profiles();
  registry::aws::Environment environment{{}, scratch_.path()};
  for (auto const& entry : role_env("promote"))
    environment.variables[entry.substr(0, entry.find('='))] = entry.substr(entry.find('=') + 1);
  auto const source = [&] {
    return registry::aws::resolve_credentials(environment, {.extra_ca_file = stand_in_.ca_file()});
  };
  registry::ecr::Target const target{.registry_host = "127.0.0.1:" + std::to_string(target_.port()),
                                     .region = "eu-west-1",
                                     .api_endpoint = stand_in_.url(),
                                     .ca_file = stand_in_.ca_file(),
                                     .create_repository = true};
  auto const resolved = source();
  EXPECT_EQ(resolved.source, "role " + promote_role_ + " (profile 'promote' in " +
                                 (scratch_.path() / "aws" / "config").string() + " line 6)");
  ASSERT_TRUE(resolved.expiration);
  auto const left = *resolved.expiration - std::chrono::system_clock::now();
  EXPECT_GT(left, 14min);  // duration_seconds = 900
  EXPECT_LE(left, 15min);
  auto const chains_before = stand_in_.calls("AssumeRole");

  // 15 minutes of validity, renewed 10 minutes before: both calls use the same keys.
  registry::ecr::Client relaxed(target, source, 10min);
  relaxed.ensure_repository("prod/a");
  relaxed.ensure_repository("prod/a");
  EXPECT_EQ(stand_in_.calls("AssumeRole"), chains_before + 2);  // hop and promote, once
  // Renewed 16 minutes before: the keys are always due, so every call (Describe, Create,
  // Describe) assumes the roles again.
  registry::ecr::Client eager(target, source, 16min);
  eager.ensure_repository("prod/b");
  eager.ensure_repository("prod/b");
  EXPECT_EQ(stand_in_.calls("AssumeRole"), chains_before + 2 + 6);
  auto const describers = stand_in_.signers("DescribeRepositories");
  ASSERT_EQ(describers.size(), 4u);
  EXPECT_EQ(describers[0], describers[1]);
  EXPECT_NE(describers[2], describers[3]);
  for (auto const& key : describers) EXPECT_EQ(stand_in_.role_of(key), promote_role_);
}

}  // namespace
}  // namespace berth::testing
