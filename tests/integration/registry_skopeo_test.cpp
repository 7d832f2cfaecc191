// The registry as users meet it: real skopeo pushing OCI layouts into `berth serve` and pulling
// them back, byte for byte; every OCI error code the registry answers, provoked over HTTP.
#include <fstream>

#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/testing/oci_layout.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth/testing/temp_dir.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;

class RegistrySkopeo : public ::testing::Test {
protected:
  std::string registry(std::string const& repository_and_tag) const {
    return "docker://127.0.0.1:" + std::to_string(berth_.port()) + "/" + repository_and_tag;
  }
  RunResult push(std::string const& source, std::string const& target, bool all = false) {
    std::vector<std::string> args = {"copy", "--dest-tls-verify=false"};
    if (all) args.push_back("--all");
    args.push_back(source);
    args.push_back(registry(target));
    return skopeo(args);
  }
  // Pulls into a fresh dir: layout, which keeps manifests and blobs byte for byte.
  fs::path pull(std::string const& target, bool all = false) {
    auto out = scratch_.path() / ("pulled-" + std::to_string(++pulls_));
    std::vector<std::string> args = {"copy", "--src-tls-verify=false", "--preserve-digests"};
    if (all) args.push_back("--all");
    args.push_back(registry(target));
    args.push_back("dir:" + out.string());
    auto result = skopeo(args);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return out;
  }
  static std::string hex(Blob const& blob) { return blob.digest.substr(7); }

  BerthInstance berth_;
  TempDir scratch_;
  int pulls_ = 0;
};

TEST_F(RegistrySkopeo, OciImageRoundTripsByteForByte) {
  OciLayout layout(scratch_.path() / "src");
  auto image = layout.add_image({300 * 1024, 2 * 1024 * 1024, 1024}, 7);
  layout.tag(image.manifest, "v1");
  auto pushed = push("oci:" + layout.dir().string() + ":v1", "api/orders:v1");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;

  auto out = pull("api/orders:v1");
  EXPECT_EQ(read_file(out / "manifest.json"), layout.read_blob(image.manifest.digest));
  EXPECT_EQ(read_file(out / hex(image.config)), layout.read_blob(image.config.digest));
  for (auto const& layer : image.layers) EXPECT_EQ(read_file(out / hex(layer)), layout.read_blob(layer.digest));

  auto inspect = skopeo({"inspect", "--tls-verify=false", registry("api/orders:v1")});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  auto json = nlohmann::json::parse(inspect.output.substr(inspect.output.find('{')));
  EXPECT_EQ(json["Digest"], image.manifest.digest);
  EXPECT_EQ(json["RepoTags"], nlohmann::json({"v1"}));
}

TEST_F(RegistrySkopeo, DockerSchema2ImageRoundTripsByteForByte) {
  OciLayout layout(scratch_.path() / "src");
  auto image = layout.add_image({200 * 1024, 64 * 1024}, 11, MediaTypes::docker);
  layout.export_dir(image.manifest, scratch_.path() / "docker-dir");
  auto pushed = push("dir:" + (scratch_.path() / "docker-dir").string(), "site/web:1.0");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;

  auto out = pull("site/web:1.0");
  EXPECT_EQ(read_file(out / "manifest.json"), layout.read_blob(image.manifest.digest));
  auto head = http_request("127.0.0.1", berth_.port(), "HEAD", "/v2/site/web/manifests/1.0");
  EXPECT_EQ(head->header("Content-Type"), media_type::docker_manifest);
  EXPECT_EQ(head->header("Docker-Content-Digest"), image.manifest.digest);
}

TEST_F(RegistrySkopeo, MultiArchIndexRoundTripsWithAll) {
  for (auto types : {MediaTypes::oci, MediaTypes::docker}) {
    OciLayout layout(scratch_.path() / (types == MediaTypes::oci ? "oci" : "docker"));
    auto amd64 = layout.add_image({100 * 1024}, 21, types, Platform{"amd64", "linux", ""});
    auto arm64 = layout.add_image({120 * 1024}, 22, types, Platform{"arm64", "linux", "v8"});
    auto index =
        layout.add_index({{amd64.manifest, {"amd64", "linux", ""}}, {arm64.manifest, {"arm64", "linux", "v8"}}}, types);
    std::string source;
    if (types == MediaTypes::oci) {
      layout.tag(index, "multi");
      source = "oci:" + layout.dir().string() + ":multi";
    } else {
      layout.export_dir(index, scratch_.path() / "docker-list");
      source = "dir:" + (scratch_.path() / "docker-list").string();
    }
    auto target = std::string(types == MediaTypes::oci ? "api/multi" : "api/multi-docker") + ":latest";
    auto pushed = push(source, target, true);
    ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
    auto out = pull(target, true);
    EXPECT_EQ(read_file(out / "manifest.json"), layout.read_blob(index.digest));
    EXPECT_EQ(read_file(out / (hex(arm64.manifest) + ".manifest.json")), layout.read_blob(arm64.manifest.digest));
    EXPECT_EQ(read_file(out / hex(arm64.layers[0])), layout.read_blob(arm64.layers[0].digest));
  }
}

TEST_F(RegistrySkopeo, ArtifactWithSubjectIsListedAsAReferrer) {
  OciLayout layout(scratch_.path() / "src");
  auto image = layout.add_image({50 * 1024}, 31);
  layout.tag(image.manifest, "v1");
  auto sbom = layout.add_artifact("application/spdx+json", image.manifest, R"({"spdxVersion":"SPDX-2.3"})",
                                  "application/spdx+json");
  layout.tag(sbom, "sbom");
  ASSERT_EQ(push("oci:" + layout.dir().string() + ":v1", "model/llama-ft:v1").exit_code, 0);
  auto pushed = push("oci:" + layout.dir().string() + ":sbom", "model/llama-ft:sbom");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;

  auto referrers =
      http_request("127.0.0.1", berth_.port(), "GET", "/v2/model/llama-ft/referrers/" + image.manifest.digest);
  ASSERT_EQ(referrers->status, 200);
  auto index = nlohmann::json::parse(referrers->body);
  ASSERT_EQ(index["manifests"].size(), 1u);
  EXPECT_EQ(index["manifests"][0]["digest"], sbom.digest);
  EXPECT_EQ(index["manifests"][0]["artifactType"], "application/spdx+json");

  auto out = pull("model/llama-ft:sbom");
  EXPECT_EQ(read_file(out / "manifest.json"), layout.read_blob(sbom.digest));
}

TEST_F(RegistrySkopeo, PushOutsideTheNamespacesIsRefusedWithTheReason) {
  OciLayout layout(scratch_.path() / "src");
  auto image = layout.add_image({1024}, 41);
  layout.tag(image.manifest, "v1");
  auto pushed = push("oci:" + layout.dir().string() + ":v1", "library/nginx:v1");
  EXPECT_NE(pushed.exit_code, 0);
  EXPECT_NE(pushed.output.find("outside the registry's namespaces (api/, site/, model/)"), std::string::npos)
      << pushed.output;
}

TEST_F(RegistrySkopeo, RepushIsIdempotentAndFsckIsClean) {
  OciLayout layout(scratch_.path() / "src");
  auto image = layout.add_image({64 * 1024, 64 * 1024}, 51);
  layout.tag(image.manifest, "v1");
  ASSERT_EQ(push("oci:" + layout.dir().string() + ":v1", "api/again:v1").exit_code, 0);
  auto uploads = [&] {
    auto log = berth_.process().output();
    std::size_t count = 0;
    std::string const upload_start = "\"method\":\"POST\",\"path\":\"/v2/api/again/blobs/uploads/";
    for (auto at = log.find(upload_start); at != std::string::npos; at = log.find(upload_start, at + 1)) ++count;
    return count;
  };
  auto first_uploads = uploads();
  EXPECT_EQ(first_uploads, 3u);  // two layers and the config
  auto again = push("oci:" + layout.dir().string() + ":v1", "api/again:v1");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(uploads(), first_uploads);  // every blob was found by HEAD and skipped
  auto fsck = berth_.command({"registry", "fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
  auto ls = berth_.command({"registry", "ls", "api"});
  EXPECT_NE(ls.output.find("api/again"), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("\n1 repository, "), std::string::npos) << ls.output;
  // Each tag with the digest it names and when it was pushed.
  EXPECT_TRUE(std::regex_search(ls.output, std::regex("\napi/again:v1 +" + image.manifest.digest +
                                                       R"( +20\d\d-\d\d-\d\d \d\d:\d\d:\d\d\n)")))
      << ls.output;
  auto const listed = nlohmann::json::parse(berth_.command({"registry", "ls", "api", "--json"}).output);
  EXPECT_EQ(listed["repositories"][0]["name"], "api/again") << listed.dump();
  EXPECT_EQ(listed["repositories"][0]["tags"][0]["name"], "v1") << listed.dump();
  EXPECT_EQ(listed["repositories"][0]["tags"][0]["digest"], image.manifest.digest) << listed.dump();
  EXPECT_EQ(listed["namespaces"][0]["name"], "api") << listed.dump();
  auto unknown = berth_.command({"registry", "ls", "apps/again"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("no namespace apps in this registry: its namespaces are api, site, model"),
            std::string::npos)
      << unknown.output;
}

// Each error code the registry can answer today, provoked over real HTTP (UNAUTHORIZED and
// TOOMANYREQUESTS arrive with authentication and rate limits in the front door).
TEST_F(RegistrySkopeo, AnswersEveryErrorCodeOverHttp) {
  auto port = berth_.port();
  auto code_of = [](std::optional<HttpResponse> const& response) -> std::string {
    if (!response) return "(no response)";
    auto json = nlohmann::json::parse(response->body, nullptr, false);
    if (!json.is_object() || !json.contains("errors")) return "(status " + std::to_string(response->status) + ")";
    return std::to_string(response->status) + " " + json["errors"][0]["code"].get<std::string>();
  };
  auto digest = sha256_digest("content");
  auto missing = sha256_digest("never pushed");
  auto request = [&](std::string method, std::string target, std::string body = "",
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
    return code_of(http_request("127.0.0.1", port, method, target, body, headers));
  };
  EXPECT_EQ(request("GET", "/v2/api/x/blobs/" + digest), "404 BLOB_UNKNOWN");
  ASSERT_EQ(http_request("127.0.0.1", port, "POST", "/v2/api/x/blobs/uploads/?digest=" + digest, "content")->status,
            201);
  auto location = *http_request("127.0.0.1", port, "POST", "/v2/api/x/blobs/uploads/")->header("Location");
  EXPECT_EQ(request("PATCH", location, "abc", {{"Content-Range", "5-7"}}), "416 BLOB_UPLOAD_INVALID");
  EXPECT_EQ(request("PATCH", "/v2/api/x/blobs/uploads/0123456789abcdef0123456789abcdef", "abc"),
            "404 BLOB_UPLOAD_UNKNOWN");
  EXPECT_EQ(request("PUT", location + "?digest=" + sha256_digest("other"), "content"), "400 DIGEST_INVALID");
  std::string manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                         missing + R"(","size":12},"layers":[]})";
  EXPECT_EQ(request("PUT", "/v2/api/x/manifests/v1", manifest, {{"Content-Type", media_type::oci_manifest}}),
            "400 MANIFEST_BLOB_UNKNOWN");
  EXPECT_EQ(
      request("PUT", "/v2/api/x/manifests/v1", "{\"schemaVersion\":2", {{"Content-Type", media_type::oci_manifest}}),
      "400 MANIFEST_INVALID");
  EXPECT_EQ(request("GET", "/v2/api/x/manifests/v9"), "404 MANIFEST_UNKNOWN");
  EXPECT_EQ(request("GET", "/v2/api/Bad/tags/list"), "400 NAME_INVALID");
  EXPECT_EQ(request("GET", "/v2/api/never/tags/list"), "404 NAME_UNKNOWN");
  EXPECT_EQ(request("PUT", "/v2/api/x/manifests/v1", std::string(5 * 1024 * 1024, ' '),
                    {{"Content-Type", media_type::oci_manifest}}),
            "413 SIZE_INVALID");
  EXPECT_EQ(request("PUT", "/v2/api/x/tags/list"), "405 UNSUPPORTED");
  EXPECT_EQ(request("GET", "/v2/other/x/tags/list"), "403 DENIED");
}

}  // namespace
}  // namespace berth::testing
