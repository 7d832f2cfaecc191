// Immutable tags and retention as users meet them: real skopeo pushes into `berth serve`, raw
// HTTP for the exact refusals, and `berth registry retention` run beside the live server.
#include <fstream>

#include <gtest/gtest.h>

#include "berth/testing/oci_layout.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth_instance.hpp"
#include "command_output.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class RegistryRetention : public ::testing::Test {
protected:
  explicit RegistryRetention(std::string const& config_yaml) : berth_(config_yaml), layout_(scratch_.path() / "src") {}

  std::string registry(std::string const& repository_and_tag) const {
    return "docker://127.0.0.1:" + std::to_string(berth_.port()) + "/" + repository_and_tag;
  }
  RunResult push(Blob const& manifest, std::string const& target) {
    layout_.tag(manifest, "src");
    return skopeo({"copy", "--dest-tls-verify=false", "oci:" + layout_.dir().string() + ":src", registry(target)});
  }
  // GET of a manifest by tag or digest; its status.
  int manifest_status(std::string const& repository, std::string const& reference) {
    auto response = http_request("127.0.0.1", berth_.port(), "GET", "/v2/" + repository + "/manifests/" + reference, "",
                                 {{"Accept", media_type::oci_manifest}});
    return response ? response->status : -1;
  }
  std::optional<std::string> tag_digest(std::string const& repository, std::string const& tag) {
    auto response = http_request("127.0.0.1", berth_.port(), "HEAD", "/v2/" + repository + "/manifests/" + tag, "",
                                 {{"Accept", media_type::oci_manifest}});
    if (!response || response->status != 200) return std::nullopt;
    return response->header("Docker-Content-Digest");
  }

  TempDir scratch_;
  BerthInstance berth_;
  OciLayout layout_;
};

class ImmutableTagsOverHttp : public RegistryRetention {
protected:
  ImmutableTagsOverHttp()
      : RegistryRetention(
            "registry:\n  immutable_tags:\n    - repositories: \"api/*\"\n"
            "      tags: ['^v\\d+\\.\\d+\\.\\d+$']\n") {}
};

TEST_F(ImmutableTagsOverHttp, OverwritingIsRefusedWithTheRuleAndRetriesSucceed) {
  auto const first = layout_.add_image({1024}, 1);
  auto const second = layout_.add_image({1024}, 2);
  auto const pushed = push(first.manifest, "api/orders:v1.2.0");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;

  // A CI retry pushes the very same image again: fine.
  auto const retry = push(first.manifest, "api/orders:v1.2.0");
  EXPECT_EQ(retry.exit_code, 0) << retry.output;

  std::string const refusal =
      "tag api/orders:v1.2.0 is immutable (registry.immutable_tags rule 'api/*'); push a new tag instead";
  auto const overwrite = push(second.manifest, "api/orders:v1.2.0");
  EXPECT_NE(overwrite.exit_code, 0);
  EXPECT_TRUE(contains(overwrite.output, refusal)) << overwrite.output;
  EXPECT_EQ(tag_digest("api/orders", "v1.2.0"), first.manifest.digest);

  // The same refusal over plain HTTP, with its status and code.
  auto const put =
      http_request("127.0.0.1", berth_.port(), "PUT", "/v2/api/orders/manifests/v1.2.0",
                   layout_.read_blob(second.manifest.digest), {{"Content-Type", media_type::oci_manifest}});
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 409);
  EXPECT_TRUE(contains(put->body, R"("code":"DENIED")")) << put->body;
  EXPECT_TRUE(contains(put->body, refusal)) << put->body;

  // Tags the rule does not match move freely, in the same repository and elsewhere.
  ASSERT_EQ(push(first.manifest, "api/orders:latest").exit_code, 0);
  EXPECT_EQ(push(second.manifest, "api/orders:latest").exit_code, 0);
  EXPECT_EQ(tag_digest("api/orders", "latest"), second.manifest.digest);
  ASSERT_EQ(push(first.manifest, "site/web:v1.2.0").exit_code, 0);
  EXPECT_EQ(push(second.manifest, "site/web:v1.2.0").exit_code, 0);
  // A new release tag is the way forward.
  EXPECT_EQ(push(second.manifest, "api/orders:v1.2.1").exit_code, 0);
}

TEST_F(ImmutableTagsOverHttp, DeletingAnImmutableTagOrItsManifestIsRefused) {
  auto const image = layout_.add_image({1024}, 3);
  ASSERT_EQ(push(image.manifest, "api/orders:v2.0.0").exit_code, 0);

  auto const by_tag = http_request("127.0.0.1", berth_.port(), "DELETE", "/v2/api/orders/manifests/v2.0.0");
  ASSERT_TRUE(by_tag);
  EXPECT_EQ(by_tag->status, 409);
  EXPECT_TRUE(contains(by_tag->body,
                       "tag api/orders:v2.0.0 is immutable (registry.immutable_tags rule 'api/*'); it "
                       "cannot be deleted"))
      << by_tag->body;

  auto const by_digest =
      http_request("127.0.0.1", berth_.port(), "DELETE", "/v2/api/orders/manifests/" + image.manifest.digest);
  ASSERT_TRUE(by_digest);
  EXPECT_EQ(by_digest->status, 409);
  EXPECT_TRUE(contains(by_digest->body, "manifest " + image.manifest.digest +
                                            " is tagged api/orders:v2.0.0, which is immutable "
                                            "(registry.immutable_tags rule 'api/*'); it cannot be deleted"))
      << by_digest->body;
  EXPECT_EQ(manifest_status("api/orders", "v2.0.0"), 200);

  // A mutable tag on the same image can still go.
  ASSERT_EQ(push(image.manifest, "api/orders:scratch").exit_code, 0);
  auto const mutable_tag = http_request("127.0.0.1", berth_.port(), "DELETE", "/v2/api/orders/manifests/scratch");
  ASSERT_TRUE(mutable_tag);
  EXPECT_EQ(mutable_tag->status, 202);
}

class RetentionCommand : public RegistryRetention {
protected:
  RetentionCommand()
      : RegistryRetention(
            "registry:\n  retention:\n    - repositories: \"api/*\"\n      keep_last: 2\n"
            "      keep_tags: ['^v\\d+\\.\\d+\\.\\d+$']\n      untagged_after: 1d\n") {}

  // Makes the tag (and the manifest it points at) look pushed `age` ago.
  void age(std::string const& repository, std::string const& tag, std::string const& digest, std::chrono::hours age) {
    auto const repo = berth_.data_dir() / "registry/repositories" / repository / "_manifests";
    auto const time = fs::file_time_type::clock::now() - age;
    fs::last_write_time(repo / "tags" / tag, time);
    fs::last_write_time(repo / "revisions/sha256" / digest.substr(7), time);
  }
};

TEST_F(RetentionCommand, DryRunListsWhatTheRealRunThenDeletes) {
  auto const build1 = layout_.add_image({1024}, 11);
  auto const build2 = layout_.add_image({1024}, 12);
  auto const build3 = layout_.add_image({1024}, 13);
  auto const promoted = layout_.add_image({1024}, 14);
  auto const release = layout_.add_image({1024}, 15);
  for (auto const& [image, target] : {std::pair{&build1, "api/orders:build-1"},
                                      {&build2, "api/orders:build-2"},
                                      {&build3, "api/orders:build-3"},
                                      {&promoted, "api/orders:build-0"},
                                      {&release, "api/orders:v1.0.0"},
                                      {&build1, "site/web:old"}})
    ASSERT_EQ(push(image->manifest, target).exit_code, 0) << target;
  age("api/orders", "build-1", build1.manifest.digest, 72h);
  age("api/orders", "build-2", build2.manifest.digest, 48h);
  age("api/orders", "build-0", promoted.manifest.digest, 120h);
  age("api/orders", "v1.0.0", release.manifest.digest, 240h);
  age("site/web", "old", build1.manifest.digest, 240h);
  // build-0 went to production: its record in the promotion audit log protects it.
  fs::create_directories(berth_.data_dir() / "promotions");
  std::ofstream(berth_.data_dir() / "promotions/history.jsonl")
      << R"({"time":"2026-11-20T10:00:00Z","source":"api/orders:build-0","digest":")" << promoted.manifest.digest
      << R"(","result":"ok"})"
      << "\n"
      << R"({"time":"2026-11-21T10:00:00Z","source":"api/orders:build-1","digest":")" << build1.manifest.digest
      << R"(","result":"failed"})"
      << "\n";

  std::string const tag_line = "api/orders:build-1: beyond keep_last 2 (3rd newest) [rule api/*]";
  std::string const manifest_line =
      "api/orders@" + build1.manifest.digest + ": untagged, pushed 3 days ago (untagged_after 1d) [rule api/*]";
  auto const dry_run = berth_.command({"registry", "retention", "--dry-run"});
  ASSERT_EQ(dry_run.exit_code, 0) << dry_run.output;
  EXPECT_EQ(dry_run.output, "would delete tag " + tag_line + "\nwould delete manifest " + manifest_line +
                                "\ndry run: would delete 1 tag and 1 manifest in 1 repository with a rule; nothing "
                                "was changed\n");
  EXPECT_EQ(manifest_status("api/orders", "build-1"), 200);

  auto const verbose = berth_.command({"registry", "retention", "--dry-run", "-v", "api/orders"});
  EXPECT_TRUE(contains(verbose.output, "keep tag api/orders:build-0: points at a promoted image [rule api/*]\n"))
      << verbose.output;
  EXPECT_TRUE(contains(verbose.output, "keep tag api/orders:v1.0.0: matches keep_tags [rule api/*]\n"))
      << verbose.output;

  auto const applied = berth_.command({"registry", "retention"});
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  EXPECT_EQ(applied.output, "deleted tag " + tag_line + "\ndeleted manifest " + manifest_line +
                                "\ndeleted 1 tag and 1 manifest in 1 repository with a rule; run `berth registry gc` "
                                "to reclaim the space of their blobs\n");

  // The server saw it: removed ones are 404, kept ones pull.
  EXPECT_EQ(manifest_status("api/orders", "build-1"), 404);
  EXPECT_EQ(manifest_status("api/orders", build1.manifest.digest), 404);
  int pulls = 0;
  for (auto const* kept :
       {"api/orders:build-2", "api/orders:build-3", "api/orders:build-0", "api/orders:v1.0.0", "site/web:old"}) {
    auto const pulled = skopeo({"copy", "--src-tls-verify=false", registry(kept),
                                "dir:" + (scratch_.path() / ("pulled-" + std::to_string(++pulls))).string()});
    EXPECT_EQ(pulled.exit_code, 0) << kept << ": " << pulled.output;
  }

  auto const again = berth_.command({"registry", "retention"});
  EXPECT_EQ(again.output, "deleted 0 tags and 0 manifests in 1 repository with a rule\n");
}

}  // namespace
}  // namespace berth::testing
