// Retention plans over a real Storage in a temp dir. Ages are made by setting the tag and
// revision files' modification times, which is what retention reads.
#include "berth/registry/retention.hpp"

#include <gtest/gtest.h>

#include "berth/testing/temp_dir.hpp"
#include "push_helpers.hpp"

namespace berth::registry {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

constexpr std::chrono::hours day{24};

class Retention : public ::testing::Test {
protected:
  Retention() {
    Config config;
    config.root = dir_.path() / "registry";
    storage_ = std::make_unique<Storage>(config);
  }

  Digest put_blob(std::string const& repo, std::string const& content) {
    return testing::put_blob(*storage_, repo, content);
  }

  std::string put_bytes(std::string const& repo, std::string const& bytes, std::optional<std::string> const& tag,
                        Digest& digest) {
    digest = storage_->put_manifest(repo, bytes, parse_manifest(bytes, ""), tag);
    return bytes;
  }

  // An image with one layer `layer` (which makes the digest unique), tagged `tag` unless empty,
  // optionally a referrer of `subject`. Its manifest and tag are made `age` old.
  Digest put_image(std::string const& repo, std::string const& tag, std::string const& layer, Clock::duration age = 0s,
                   std::optional<Digest> subject = std::nullopt) {
    auto config = put_blob(repo, "{}");
    auto layer_digest = put_blob(repo, layer);
    std::string bytes = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                        R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                        config.to_string() +
                        R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
                        layer_digest.to_string() + R"(","size":)" + std::to_string(layer.size()) + "}]";
    if (subject) {
      auto const size = storage_->get_manifest(repo, *subject)->bytes.size();
      bytes += R"(,"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
               subject->to_string() + R"(","size":)" + std::to_string(size) + "}";
    }
    bytes += "}";
    Digest digest = digest_of(bytes);
    put_bytes(repo, bytes, tag.empty() ? std::nullopt : std::optional(tag), digest);
    age_manifest(repo, digest, age);
    if (!tag.empty()) age_tag(repo, tag, age);
    return digest;
  }

  Digest put_index(std::string const& repo, std::string const& tag, std::vector<Digest> const& children,
                   Clock::duration age = 0s) {
    std::string list;
    for (auto const& child : children)
      list += (list.empty() ? "" : ",") +
              std::string(R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")") +
              child.to_string() + R"(","size":)" + std::to_string(storage_->get_manifest(repo, child)->bytes.size()) +
              "}";
    std::string bytes =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" + list + "]}";
    Digest digest = digest_of(bytes);
    // Storing an index stamps its children as in use (for garbage collection); these tests give
    // every manifest its age explicitly, so the children keep theirs.
    std::vector<fs::file_time_type> child_times;
    for (auto const& child : children) child_times.push_back(fs::last_write_time(revision(repo, child)));
    put_bytes(repo, bytes, tag, digest);
    for (std::size_t idx = 0; idx < children.size(); ++idx)
      fs::last_write_time(revision(repo, children[idx]), child_times[idx]);
    age_manifest(repo, digest, age);
    age_tag(repo, tag, age);
    return digest;
  }

  void set_time(fs::path const& file, Clock::time_point time) {
    fs::last_write_time(file, std::chrono::file_clock::from_sys(time));
  }
  void age_tag(std::string const& repo, std::string const& tag, Clock::duration age) {
    set_time(dir_.path() / "registry/repositories" / repo / "_manifests/tags" / tag, now_ - age);
  }
  fs::path revision(std::string const& repo, Digest const& digest) const {
    return dir_.path() / "registry/repositories" / repo / "_manifests/revisions/sha256" / digest.hex();
  }
  void age_manifest(std::string const& repo, Digest const& digest, Clock::duration age) {
    set_time(revision(repo, digest), now_ - age);
  }

  RetentionPlan plan(std::vector<RetentionRule> const& rules, ProtectedImages const& protected_images = {},
                     std::vector<ImmutableTagRule> const& immutable = {}, RetentionOptions const& options = {}) {
    return plan_retention(*storage_, rules, immutable, protected_images, now_, options);
  }

  // "name: reason" per item, in plan order.
  static std::vector<std::string> lines(std::vector<RetentionItem> const& items) {
    std::vector<std::string> result;
    for (auto const& item : items) result.push_back(item.name() + ": " + item.reason);
    return result;
  }
  using Lines = std::vector<std::string>;

  testing::TempDir dir_;
  std::unique_ptr<Storage> storage_;
  // Whole seconds, as file times round-trip exactly at any precision the file system keeps.
  Clock::time_point const now_ = std::chrono::floor<std::chrono::seconds>(Clock::now());
};

TEST_F(Retention, KeepLastKeepsTheNewestTagsByWriteTime) {
  for (int build = 1; build <= 5; ++build)
    put_image("api/orders", "build-" + std::to_string(build), "layer" + std::to_string(build), (6 - build) * 1h);
  auto const result = plan({{.repositories = "api/*", .keep_last = 3}});
  EXPECT_EQ(lines(result.tags_to_delete), (Lines{"api/orders:build-2: beyond keep_last 3 (4th newest)",
                                                 "api/orders:build-1: beyond keep_last 3 (5th newest)"}));
  EXPECT_EQ(result.tags_to_delete[0].rule, "api/*");
  EXPECT_TRUE(result.manifests_to_delete.empty());  // no untagged_after: untagged manifests stay
  EXPECT_EQ(result.repositories_checked, 1u);
}

TEST_F(Retention, KeepLastBoundaries) {
  for (int build = 1; build <= 3; ++build)
    put_image("api/orders", "build-" + std::to_string(build), "layer" + std::to_string(build), (4 - build) * 1h);
  EXPECT_TRUE(plan({{.repositories = "api/orders", .keep_last = 3}}).tags_to_delete.empty());
  EXPECT_EQ(plan({{.repositories = "api/orders", .keep_last = 2}}).tags_to_delete.size(), 1u);
  EXPECT_EQ(lines(plan({{.repositories = "api/orders", .keep_last = 0}}).tags_to_delete),
            (Lines{"api/orders:build-3: beyond keep_last 0 (1st newest)",
                   "api/orders:build-2: beyond keep_last 0 (2nd newest)",
                   "api/orders:build-1: beyond keep_last 0 (3rd newest)"}));
  EXPECT_TRUE(plan({{.repositories = "api/orders"}}).tags_to_delete.empty());  // no keep_last: all kept
}

TEST_F(Retention, TagsWrittenWithTheLastKeptOneAreKeptToo) {
  put_image("api/orders", "newest", "a", 1h);
  put_image("api/orders", "twin-a", "b", 2h);
  put_image("api/orders", "twin-b", "c", 2h);
  put_image("api/orders", "old", "d", 3h);
  auto const result = plan({{.repositories = "api/**", .keep_last = 2}}, {}, {}, {.explain_kept = true});
  EXPECT_EQ(lines(result.tags_to_delete), (Lines{"api/orders:old: beyond keep_last 2 (4th newest)"}));
  EXPECT_EQ(lines(result.kept)[2], "api/orders:twin-b: pushed at the same time as the 2nd newest (keep_last 2)");
}

TEST_F(Retention, KeepTagsAreRegularExpressionsMatchingTheWholeTag) {
  put_image("api/orders", "build-9", "a", 1h);
  put_image("api/orders", "v1.2.3", "b", 10 * day);
  put_image("api/orders", "v1.2", "c", 10 * day);
  put_image("api/orders", "latest", "d", 10 * day);
  put_image("api/orders", "not-latest", "e", 10 * day);
  auto const result = plan({{.repositories = "api/*", .keep_last = 1, .keep_tags = {R"(^v\d+\.\d+\.\d+$)", "latest"}}});
  Lines deleted;
  for (auto const& item : result.tags_to_delete) deleted.push_back(*item.tag);
  std::sort(deleted.begin(), deleted.end());
  EXPECT_EQ(deleted, (Lines{"not-latest", "v1.2"}));
}

TEST_F(Retention, UntaggedManifestsGoAfterUntaggedAfter) {
  auto const old_untagged = put_image("api/orders", "", "a", 9 * day);
  put_image("api/orders", "", "b", 3 * day);                             // young: stays
  auto const tagged_old = put_image("api/orders", "v1", "c", 30 * day);  // tagged: stays
  put_image("api/orders", "v2", "d", 1h);
  auto const result = plan({{.repositories = "api/*", .untagged_after = 7 * day}});
  EXPECT_TRUE(result.tags_to_delete.empty());
  EXPECT_EQ(lines(result.manifests_to_delete),
            (Lines{"api/orders@" + old_untagged.to_string() + ": untagged, pushed 9 days ago (untagged_after 7d)"}));
  (void)tagged_old;
}

TEST_F(Retention, AManifestLosingItsTagInThePlanGoesOnlyWhenOldEnough) {
  put_image("api/orders", "new", "a", 1h);
  auto const old = put_image("api/orders", "old", "b", 10 * day);
  auto const recent = put_image("api/orders", "recent", "c", 2 * day);
  auto const result = plan({{.repositories = "api/*", .keep_last = 1, .untagged_after = 7 * day}});
  EXPECT_EQ(result.tags_to_delete.size(), 2u);
  ASSERT_EQ(result.manifests_to_delete.size(), 1u);
  EXPECT_EQ(result.manifests_to_delete[0].digest, old);
  (void)recent;
}

TEST_F(Retention, ChildrenOfAKeptIndexAreKept) {
  auto const amd64 = put_image("api/orders", "", "amd64", 30 * day);
  auto const arm64 = put_image("api/orders", "", "arm64", 30 * day);
  auto const stray = put_image("api/orders", "", "stray", 30 * day);
  auto const index = put_index("api/orders", "v1", {amd64, arm64}, 30 * day);
  auto const result =
      plan({{.repositories = "api/*", .keep_last = 5, .untagged_after = 7 * day}}, {}, {}, {.explain_kept = true});
  ASSERT_EQ(result.manifests_to_delete.size(), 1u);
  EXPECT_EQ(result.manifests_to_delete[0].digest, stray);
  auto const kept = lines(result.kept);
  EXPECT_NE(
      std::find(kept.begin(), kept.end(), "api/orders@" + amd64.to_string() + ": in kept index " + index.to_string()),
      kept.end());
}

TEST_F(Retention, ChildrenOfAnIndexWhoseTagGoesGoToo) {
  auto const amd64 = put_image("api/orders", "", "amd64", 30 * day);
  auto const index = put_index("api/orders", "v1", {amd64}, 30 * day);
  put_image("api/orders", "v2", "other", 1h);
  auto const result = plan({{.repositories = "api/*", .keep_last = 1, .untagged_after = 7 * day}});
  std::set<Digest> deleted;
  for (auto const& item : result.manifests_to_delete) deleted.insert(item.digest);
  EXPECT_EQ(deleted, (std::set<Digest>{amd64, index}));
}

TEST_F(Retention, ReferrersFollowTheirSubject) {
  auto const kept_image = put_image("api/orders", "v2", "kept", 1h);
  auto const signature = put_image("api/orders", "", "signature", 30 * day, kept_image);
  auto const sbom_of_signature = put_image("api/orders", "", "sbom", 30 * day, signature);
  auto const gone_image = put_image("api/orders", "v1", "gone", 30 * day);
  auto const orphan = put_image("api/orders", "", "orphan-signature", 30 * day, gone_image);
  auto const result = plan({{.repositories = "api/*", .keep_last = 1, .untagged_after = 7 * day}});
  std::set<Digest> deleted;
  for (auto const& item : result.manifests_to_delete) deleted.insert(item.digest);
  EXPECT_EQ(deleted, (std::set<Digest>{gone_image, orphan}));
  (void)sbom_of_signature;
}

TEST_F(Retention, PromotedImagesAreProtectedInTheirRepositoryOnly) {
  put_image("api/orders", "new", "a", 1h);
  auto const promoted = put_image("api/orders", "release", "b", 30 * day);
  auto const promoted_untagged = put_image("api/orders", "", "c", 30 * day);
  put_image("api/billing", "new", "a2", 1h);
  put_image("api/billing", "release", "b", 30 * day);  // the same digest, but promoted from api/orders
  ASSERT_EQ(storage_->resolve_tag("api/billing", "release"), promoted);
  auto const result = plan({{.repositories = "api/*", .keep_last = 1, .untagged_after = 7 * day}},
                           {{"api/orders", promoted}, {"api/orders", promoted_untagged}}, {}, {.explain_kept = true});
  EXPECT_EQ(lines(result.tags_to_delete), (Lines{"api/billing:release: beyond keep_last 1 (2nd newest)"}));
  ASSERT_EQ(result.manifests_to_delete.size(), 1u);
  EXPECT_EQ(result.manifests_to_delete[0].name(), "api/billing@" + promoted.to_string());
  auto const kept = lines(result.kept);
  EXPECT_NE(std::find(kept.begin(), kept.end(), "api/orders:release: points at a promoted image"), kept.end());
}

TEST_F(Retention, ImmutableTagsAreNeverDeleted) {
  put_image("api/orders", "new", "a", 1h);
  auto const release = put_image("api/orders", "v1.0.0", "b", 30 * day);
  put_image("api/orders", "build-7", "c", 31 * day);
  auto const result = plan({{.repositories = "api/*", .keep_last = 1, .untagged_after = 7 * day}}, {},
                           {{.repositories = "api/*", .tags = {R"(v\d+\.\d+\.\d+)"}}}, {.explain_kept = true});
  EXPECT_EQ(lines(result.tags_to_delete), (Lines{"api/orders:build-7: beyond keep_last 1 (3rd newest)"}));
  ASSERT_EQ(result.manifests_to_delete.size(), 1u);
  EXPECT_NE(result.manifests_to_delete[0].digest, release);
  auto const kept = lines(result.kept);
  EXPECT_NE(std::find(kept.begin(), kept.end(), "api/orders:v1.0.0: immutable (registry.immutable_tags rule 'api/*')"),
            kept.end());
}

TEST_F(Retention, TheFirstMatchingRuleAppliesAndOtherRepositoriesAreUntouched) {
  for (auto const* repo : {"api/orders", "api/billing", "site/web"})
    for (int build = 1; build <= 3; ++build)
      put_image(repo, "b" + std::to_string(build), std::string(repo) + std::to_string(build), (4 - build) * 1h);
  auto const result = plan({{.repositories = "api/orders", .keep_last = 2}, {.repositories = "api/*", .keep_last = 1}});
  EXPECT_EQ(lines(result.tags_to_delete),
            (Lines{"api/billing:b2: beyond keep_last 1 (2nd newest)", "api/billing:b1: beyond keep_last 1 (3rd newest)",
                   "api/orders:b1: beyond keep_last 2 (3rd newest)"}));
  EXPECT_EQ(result.tags_to_delete[0].rule, "api/*");
  EXPECT_EQ(result.tags_to_delete[2].rule, "api/orders");
  EXPECT_EQ(result.repositories_checked, 2u);

  auto const only_orders = plan({{.repositories = "**", .keep_last = 1}}, {}, {}, {.repositories = "api/orders"});
  EXPECT_EQ(only_orders.repositories_checked, 1u);
  EXPECT_EQ(only_orders.tags_to_delete.size(), 2u);
}

TEST_F(Retention, ApplyDeletesWhatThePlanSays) {
  put_image("api/orders", "new", "a", 1h);
  auto const old = put_image("api/orders", "old", "b", 30 * day);
  auto const untagged = put_image("api/orders", "", "c", 30 * day);
  auto const result = plan({{.repositories = "api/*", .keep_last = 1, .untagged_after = 7 * day}});
  auto const report = apply_retention(*storage_, result);
  EXPECT_EQ(report.tags_deleted, 1u);
  EXPECT_EQ(report.manifests_deleted, 2u);
  EXPECT_TRUE(report.skipped.empty());
  EXPECT_EQ(storage_->tags("api/orders"), (std::vector<std::string>{"new"}));
  EXPECT_FALSE(storage_->has_manifest("api/orders", old));
  EXPECT_FALSE(storage_->has_manifest("api/orders", untagged));
  // Applying again finds nothing left to do.
  auto const again = apply_retention(*storage_, result);
  EXPECT_EQ(again.tags_deleted + again.manifests_deleted, 0u);
}

TEST_F(Retention, ApplyKeepsWhatWasPushedSincePlanning) {
  put_image("api/orders", "new", "a", 1h);
  put_image("api/orders", "old", "b", 30 * day);
  auto const untagged = put_image("api/orders", "", "c", 30 * day);
  auto const result = plan({{.repositories = "api/*", .keep_last = 1, .untagged_after = 7 * day}});
  // Meanwhile a client moves "old" to another image and tags the untagged one.
  auto const moved = put_image("api/orders", "old", "d");
  auto const bytes = storage_->get_manifest("api/orders", untagged)->bytes;
  storage_->put_manifest("api/orders", bytes, parse_manifest(bytes, ""), "rescued");
  auto const report = apply_retention(*storage_, result);
  EXPECT_EQ(report.tags_deleted, 0u);
  EXPECT_EQ(report.skipped.size(), 2u);
  EXPECT_EQ(report.skipped[0], "api/orders:old: now points at " + moved.to_string() + ", kept");
  EXPECT_EQ(report.skipped[1], "api/orders@" + untagged.to_string() + ": tagged rescued since planning, kept");
  EXPECT_EQ(storage_->resolve_tag("api/orders", "rescued"), untagged);
}

TEST_F(Retention, ApplyKeepsAManifestAnIndexListedSincePlanning) {
  auto const child = put_image("api/orders", "", "child", 30 * day);
  auto const result = plan({{.repositories = "api/*", .untagged_after = 7 * day}});
  ASSERT_EQ(result.manifests_to_delete.size(), 1u);
  auto const index = put_index("api/orders", "multi", {child});
  auto const report = apply_retention(*storage_, result);
  EXPECT_EQ(report.manifests_deleted, 0u);
  EXPECT_EQ(report.skipped, (std::vector<std::string>{"api/orders@" + child.to_string() + ": listed by index " +
                                                      index.to_string() + " since planning, kept"}));
  EXPECT_TRUE(storage_->has_manifest("api/orders", child));
}

TEST_F(Retention, ABadRegularExpressionIsAnErrorNamingTheRule) {
  put_image("api/orders", "v1", "a");
  try {
    plan({{.repositories = "api/*", .keep_last = 1, .keep_tags = {"v(1"}}});
    FAIL() << "no error";
  } catch (Error const& error) {
    EXPECT_TRUE(std::string(error.what())
                    .starts_with("registry.retention rule 'api/*' keep_tags: invalid regular expression \"v(1\": "))
        << error.what();
  }
}

TEST(ImmutableTags, MatchRepositoriesAndWholeTags) {
  ImmutableTags const immutable(
      {{.repositories = "api/*", .tags = {R"(v\d+\.\d+\.\d+)"}}, {.repositories = "model/**"}});
  EXPECT_EQ(immutable.rule_for("api/orders", "v1.2.0"), "api/*");
  EXPECT_EQ(immutable.rule_for("api/orders", "v1.2.0-rc1"), std::nullopt);
  EXPECT_EQ(immutable.rule_for("api/orders", "latest"), std::nullopt);
  EXPECT_EQ(immutable.rule_for("api/orders/worker", "v1.2.0"), std::nullopt);  // `*` is one component
  EXPECT_EQ(immutable.rule_for("model/llama/ft", "anything"), "model/**");
  EXPECT_EQ(immutable.rule_for("site/web", "v1.2.0"), std::nullopt);
  EXPECT_EQ(ImmutableTags::refusal("api/orders", "v1.2.0", "api/*"),
            "tag api/orders:v1.2.0 is immutable (registry.immutable_tags rule 'api/*'); push a new tag instead");
  EXPECT_THROW(ImmutableTags(std::vector<ImmutableTagRule>{{.repositories = "api/*", .tags = {"["}}}), Error);
}

}  // namespace
}  // namespace berth::registry
