// The registry API through the router, without sockets: every endpoint and every error code
// the spec names, on real storage in a temp dir.
#include "berth/registry/api.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "berth/testing/temp_dir.hpp"

namespace berth::registry {
namespace {

using proxy::Method;

struct Result {
  int status = 0;
  proxy::Headers headers;
  std::string body;
  std::string header(std::string_view name) const { return std::string(headers.get(name).value_or("")); }
  std::string error_code() const {
    auto json = nlohmann::json::parse(body, nullptr, false);
    return json.is_object() && json.contains("errors") ? json["errors"][0]["code"].get<std::string>() : "";
  }
};

class RegistryApi : public ::testing::Test {
protected:
  RegistryApi() {
    Config config;
    config.root = dir_.path() / "registry";
    storage_ = std::make_unique<Storage>(config);
    add_routes(router_, *storage_);
  }

  Result call(Method method, std::string target, std::string const& body = "",
              std::vector<std::pair<std::string, std::string>> const& headers = {}) {
    proxy::Request request;
    request.method = method;
    request.method_name = std::string(proxy::to_string(method));
    request.target = target;
    auto question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string::npos) request.query = target.substr(question + 1);
    for (auto const& [name, value] : headers) request.headers.add(name, value);
    request.has_body = !body.empty();
    if (request.has_body) request.content_length = body.size();
    proxy::Response response;
    try {
      auto reply = router_.dispatch(request);
      if (auto* sink = std::get_if<std::unique_ptr<proxy::BodySink>>(&reply)) {
        // Feed in uneven pieces, as a network would.
        for (std::size_t at = 0; at < body.size(); at += 7)
          (*sink)->write(std::span<char const>(body).subspan(at, std::min<std::size_t>(7, body.size() - at)));
        response = (*sink)->finish();
      } else {
        response = std::move(std::get<proxy::Response>(reply));
      }
    } catch (proxy::HttpError const& error) {
      response = proxy::error_response(error);
    }
    Result result{response.status, std::move(response.headers), {}};
    if (auto* text = std::get_if<std::string>(&response.body)) {
      result.body = *text;
    } else {
      std::vector<char> buffer(1000);
      while (auto n = std::get<std::unique_ptr<proxy::BodySource>>(response.body)->read(buffer))
        result.body.append(buffer.data(), n);
    }
    return result;
  }

  // Pushes a blob monolithically; returns its digest.
  std::string push_blob(std::string const& repo, std::string const& content) {
    auto digest = digest_of(content).to_string();
    auto result = call(Method::post, "/v2/" + repo + "/blobs/uploads/?digest=" + digest, content);
    EXPECT_EQ(result.status, 201) << result.body;
    return digest;
  }

  // An OCI image manifest over the given config and layers (already pushed).
  static std::string image_manifest(std::string const& config, std::vector<std::string> const& layers,
                                    std::string const& extra = "") {
    nlohmann::ordered_json manifest = {{"schemaVersion", 2},
                                       {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                       {"config",
                                        {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                                         {"digest", digest_of(config).to_string()},
                                         {"size", config.size()}}},
                                       {"layers", nlohmann::json::array()}};
    for (auto const& layer : layers)
      manifest["layers"].push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                                    {"digest", digest_of(layer).to_string()},
                                    {"size", layer.size()}});
    auto text = manifest.dump();
    if (!extra.empty()) text = text.substr(0, text.size() - 1) + "," + extra + "}";
    return text;
  }

  std::string push_image(std::string const& repo, std::string const& tag, std::string const& extra = "") {
    std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
    push_blob(repo, config);
    push_blob(repo, "layer-one");
    auto manifest = image_manifest(config, {"layer-one"}, extra);
    auto result = call(Method::put, "/v2/" + repo + "/manifests/" + tag, manifest,
                       {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}});
    EXPECT_EQ(result.status, 201) << result.body;
    return manifest;
  }

  testing::TempDir dir_;
  std::unique_ptr<Storage> storage_;
  proxy::Router router_;
};

TEST_F(RegistryApi, BaseEndpointAnnouncesRegistryV2) {
  auto result = call(Method::get, "/v2/");
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.header("Docker-Distribution-API-Version"), "registry/2.0");
}

TEST_F(RegistryApi, MonolithicUploadThenPull) {
  auto digest = push_blob("api/orders", "hello blob");
  auto get = call(Method::get, "/v2/api/orders/blobs/" + digest);
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "hello blob");
  EXPECT_EQ(get.header("Docker-Content-Digest"), digest);
  auto head = call(Method::head, "/v2/api/orders/blobs/" + digest);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("Content-Length"), "10");
  EXPECT_EQ(head.body, "");
}

TEST_F(RegistryApi, ChunkedSessionUpload) {
  auto start = call(Method::post, "/v2/api/orders/blobs/uploads/");
  ASSERT_EQ(start.status, 202);
  auto location = start.header("Location");
  EXPECT_EQ(start.header("Range"), "0-0");
  auto first = call(Method::patch, location, "hello ", {{"Content-Range", "0-5"}});
  EXPECT_EQ(first.status, 202);
  EXPECT_EQ(first.header("Range"), "0-5");
  auto out_of_order = call(Method::patch, location, "xx", {{"Content-Range", "9-10"}});
  EXPECT_EQ(out_of_order.status, 416);
  EXPECT_EQ(out_of_order.header("Range"), "0-5");
  auto streamed = call(Method::patch, location, "wor");  // no Content-Range: appended
  EXPECT_EQ(streamed.header("Range"), "0-8");
  auto status = call(Method::get, location);
  EXPECT_EQ(status.status, 204);
  EXPECT_EQ(status.header("Range"), "0-8");
  auto digest = digest_of("hello world").to_string();
  auto done = call(Method::put, location + "?digest=" + digest, "ld", {{"Content-Range", "9-10"}});
  EXPECT_EQ(done.status, 201) << done.body;
  EXPECT_EQ(done.header("Location"), "/v2/api/orders/blobs/" + digest);
  EXPECT_EQ(call(Method::get, "/v2/api/orders/blobs/" + digest).body, "hello world");
  EXPECT_EQ(call(Method::get, location).error_code(), "BLOB_UPLOAD_UNKNOWN");
}

TEST_F(RegistryApi, DigestMismatchKeepsTheUploadResumable) {
  auto location = call(Method::post, "/v2/api/orders/blobs/uploads/").header("Location");
  call(Method::patch, location, "abc");
  auto wrong = call(Method::put, location + "?digest=" + digest_of("abd").to_string());
  EXPECT_EQ(wrong.status, 400);
  EXPECT_EQ(wrong.error_code(), "DIGEST_INVALID");
  EXPECT_EQ(call(Method::get, location).header("Range"), "0-2");
  auto right = call(Method::put, location + "?digest=" + digest_of("abcd").to_string(), "d");
  EXPECT_EQ(right.status, 201) << right.body;
}

TEST_F(RegistryApi, MonolithicDigestMismatchStoresNothing) {
  auto result = call(Method::post, "/v2/api/orders/blobs/uploads/?digest=" + digest_of("other").to_string(), "data");
  EXPECT_EQ(result.error_code(), "DIGEST_INVALID");
  EXPECT_EQ(call(Method::head, "/v2/api/orders/blobs/" + digest_of("data").to_string()).status, 404);
}

TEST_F(RegistryApi, UploadSurvivesARestart) {
  auto location = call(Method::post, "/v2/api/orders/blobs/uploads/").header("Location");
  call(Method::patch, location, "first half ");
  // A new Storage and router on the same directory: what `berth serve` does after a restart.
  Config config = storage_->config();
  storage_ = std::make_unique<Storage>(config);
  router_ = proxy::Router();
  add_routes(router_, *storage_);
  EXPECT_EQ(call(Method::get, location).header("Range"), "0-10");
  auto digest = digest_of("first half second half").to_string();
  auto done = call(Method::put, location + "?digest=" + digest, "second half", {{"Content-Range", "11-21"}});
  EXPECT_EQ(done.status, 201) << done.body;
}

TEST_F(RegistryApi, CancelledUploadIsGone) {
  auto location = call(Method::post, "/v2/api/orders/blobs/uploads/").header("Location");
  EXPECT_EQ(call(Method::delete_, location).status, 204);
  EXPECT_EQ(call(Method::delete_, location).error_code(), "BLOB_UPLOAD_UNKNOWN");
  EXPECT_EQ(call(Method::patch, location, "x").error_code(), "BLOB_UPLOAD_UNKNOWN");
}

TEST_F(RegistryApi, UploadIdsAreNotPaths) {
  for (std::string id : {"..", "0123", "ABCDEF0123456789ABCDEF0123456789", "%2e%2e"}) {
    EXPECT_EQ(call(Method::get, "/v2/api/orders/blobs/uploads/" + id).error_code(), "BLOB_UPLOAD_UNKNOWN") << id;
  }
  EXPECT_EQ(call(Method::get, "/v2/api/orders/blobs/uploads/../../etc").status, 404);
}

TEST_F(RegistryApi, UploadBelongsToItsRepository) {
  auto location = call(Method::post, "/v2/api/orders/blobs/uploads/").header("Location");
  auto id = location.substr(location.rfind('/') + 1);
  EXPECT_EQ(call(Method::get, "/v2/api/other/blobs/uploads/" + id).error_code(), "BLOB_UPLOAD_UNKNOWN");
}

TEST_F(RegistryApi, BlobRanges) {
  auto digest = push_blob("api/orders", "0123456789");
  auto part = call(Method::get, "/v2/api/orders/blobs/" + digest, "", {{"Range", "bytes=2-5"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "2345");
  EXPECT_EQ(part.header("Content-Range"), "bytes 2-5/10");
  auto open_ended = call(Method::get, "/v2/api/orders/blobs/" + digest, "", {{"Range", "bytes=7-"}});
  EXPECT_EQ(open_ended.body, "789");
  auto suffix = call(Method::get, "/v2/api/orders/blobs/" + digest, "", {{"Range", "bytes=-2"}});
  EXPECT_EQ(suffix.body, "89");
  auto clipped = call(Method::get, "/v2/api/orders/blobs/" + digest, "", {{"Range", "bytes=8-100"}});
  EXPECT_EQ(clipped.body, "89");
  auto outside = call(Method::get, "/v2/api/orders/blobs/" + digest, "", {{"Range", "bytes=10-"}});
  EXPECT_EQ(outside.status, 416);
  EXPECT_EQ(outside.header("Content-Range"), "bytes */10");
  auto garbage = call(Method::get, "/v2/api/orders/blobs/" + digest, "", {{"Range", "pages=1-2"}});
  EXPECT_EQ(garbage.status, 200);  // an unknown range unit is ignored (RFC 9110)
}

TEST_F(RegistryApi, BlobsAreVisibleOnlyWhereLinked) {
  auto digest = push_blob("api/orders", "private layer");
  auto other = call(Method::get, "/v2/site/web/blobs/" + digest);
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(other.error_code(), "BLOB_UNKNOWN");
}

TEST_F(RegistryApi, CrossRepositoryMount) {
  auto digest = push_blob("api/orders", "shared layer");
  auto mounted = call(Method::post, "/v2/site/web/blobs/uploads/?mount=" + digest + "&from=api/orders");
  EXPECT_EQ(mounted.status, 201);
  EXPECT_EQ(mounted.header("Location"), "/v2/site/web/blobs/" + digest);
  EXPECT_EQ(call(Method::get, "/v2/site/web/blobs/" + digest).body, "shared layer");
  // Not readable from `from`: a normal upload session instead.
  auto fallback = call(Method::post, "/v2/model/x/blobs/uploads/?mount=" + digest + "&from=api/none");
  EXPECT_EQ(fallback.status, 202);
  EXPECT_TRUE(fallback.header("Location").starts_with("/v2/model/x/blobs/uploads/"));
}

TEST_F(RegistryApi, DeleteBlob) {
  auto digest = push_blob("api/orders", "to delete");
  EXPECT_EQ(call(Method::delete_, "/v2/api/orders/blobs/" + digest).status, 202);
  EXPECT_EQ(call(Method::get, "/v2/api/orders/blobs/" + digest).error_code(), "BLOB_UNKNOWN");
  EXPECT_EQ(call(Method::delete_, "/v2/api/orders/blobs/" + digest).error_code(), "BLOB_UNKNOWN");
}

TEST_F(RegistryApi, ManifestByTagAndDigest) {
  auto manifest = push_image("api/orders", "v1");
  auto digest = digest_of(manifest).to_string();
  auto by_tag = call(Method::get, "/v2/api/orders/manifests/v1");
  EXPECT_EQ(by_tag.status, 200);
  EXPECT_EQ(by_tag.body, manifest);
  EXPECT_EQ(by_tag.header("Content-Type"), "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(by_tag.header("Docker-Content-Digest"), digest);
  EXPECT_EQ(call(Method::get, "/v2/api/orders/manifests/" + digest).body, manifest);
  auto head = call(Method::head, "/v2/api/orders/manifests/v1");
  EXPECT_EQ(head.header("Content-Length"), std::to_string(manifest.size()));
  EXPECT_EQ(head.body, "");
}

TEST_F(RegistryApi, ManifestPutByDigestMustMatch) {
  std::string config = "{}";
  push_blob("api/orders", config);
  auto manifest = image_manifest(config, {});
  auto wrong = call(Method::put, "/v2/api/orders/manifests/" + digest_of("x").to_string(), manifest,
                    {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}});
  EXPECT_EQ(wrong.error_code(), "DIGEST_INVALID");
  auto right = call(Method::put, "/v2/api/orders/manifests/" + digest_of(manifest).to_string(), manifest,
                    {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}});
  EXPECT_EQ(right.status, 201);
  auto tags = nlohmann::json::parse(call(Method::get, "/v2/api/orders/tags/list").body);
  EXPECT_TRUE(tags["tags"].empty());
}

TEST_F(RegistryApi, ManifestWithMissingBlobIsRefused) {
  auto manifest = image_manifest("{\"never\":1}", {});
  auto result = call(Method::put, "/v2/api/orders/manifests/v1", manifest,
                     {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}});
  EXPECT_EQ(result.status, 400);
  EXPECT_EQ(result.error_code(), "MANIFEST_BLOB_UNKNOWN");
}

TEST_F(RegistryApi, MalformedManifestIsRefused) {
  auto result = call(Method::put, "/v2/api/orders/manifests/v1", "{not json",
                     {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}});
  EXPECT_EQ(result.status, 400);
  EXPECT_EQ(result.error_code(), "MANIFEST_INVALID");
  auto schema1 = call(Method::put, "/v2/api/orders/manifests/v1", R"({"schemaVersion":1})",
                      {{"Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws"}});
  EXPECT_EQ(schema1.error_code(), "UNSUPPORTED");
}

TEST_F(RegistryApi, OversizedManifestIs413) {
  std::string huge(4 * 1024 * 1024 + 1, ' ');
  auto result = call(Method::put, "/v2/api/orders/manifests/v1", huge,
                     {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}});
  EXPECT_EQ(result.status, 413);
  EXPECT_EQ(result.error_code(), "SIZE_INVALID");
}

TEST_F(RegistryApi, IndexNeedsItsManifests) {
  auto child = push_image("api/orders", "amd64");
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", "application/vnd.oci.image.index.v1+json"},
                          {"manifests",
                           {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                             {"digest", digest_of(child).to_string()},
                             {"size", child.size()}}}}};
  auto ok = call(Method::put, "/v2/api/orders/manifests/multi", index.dump(),
                 {{"Content-Type", "application/vnd.oci.image.index.v1+json"}});
  EXPECT_EQ(ok.status, 201) << ok.body;
  index["manifests"].push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                {"digest", digest_of("missing").to_string()},
                                {"size", 7}});
  auto missing = call(Method::put, "/v2/api/orders/manifests/multi", index.dump(),
                      {{"Content-Type", "application/vnd.oci.image.index.v1+json"}});
  EXPECT_EQ(missing.error_code(), "MANIFEST_BLOB_UNKNOWN");
}

TEST_F(RegistryApi, UnknownManifestAndRepository) {
  push_image("api/orders", "v1");
  EXPECT_EQ(call(Method::get, "/v2/api/orders/manifests/v2").error_code(), "MANIFEST_UNKNOWN");
  EXPECT_EQ(call(Method::get, "/v2/api/orders/manifests/" + digest_of("x").to_string()).error_code(),
            "MANIFEST_UNKNOWN");
  EXPECT_EQ(call(Method::get, "/v2/api/nothing/manifests/v1").error_code(), "NAME_UNKNOWN");
  // Neither a tag nor a digest: not found, as distribution answers (not 400).
  for (auto method : {Method::get, Method::head})
    for (std::string reference : {"-leading-dash", "sha256:short", ".hidden"}) {
      auto const odd = call(method, "/v2/api/orders/manifests/" + reference);
      EXPECT_EQ(odd.status, 404) << reference;
      if (method == Method::get) {
        EXPECT_EQ(odd.error_code(), "MANIFEST_UNKNOWN") << reference;
      }
    }
  EXPECT_EQ(call(Method::get, "/v2/api/nothing/tags/list").error_code(), "NAME_UNKNOWN");
}

TEST_F(RegistryApi, DeleteTagKeepsTheManifest) {
  auto manifest = push_image("api/orders", "v1");
  auto digest = digest_of(manifest).to_string();
  EXPECT_EQ(call(Method::delete_, "/v2/api/orders/manifests/v1").status, 202);
  EXPECT_EQ(call(Method::get, "/v2/api/orders/manifests/v1").error_code(), "MANIFEST_UNKNOWN");
  EXPECT_EQ(call(Method::get, "/v2/api/orders/manifests/" + digest).status, 200);
}

TEST_F(RegistryApi, DeleteManifestRemovesItsTags) {
  auto manifest = push_image("api/orders", "v1");
  auto digest = digest_of(manifest).to_string();
  call(Method::put, "/v2/api/orders/manifests/latest", manifest,
       {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}});
  EXPECT_EQ(call(Method::delete_, "/v2/api/orders/manifests/" + digest).status, 202);
  EXPECT_EQ(call(Method::get, "/v2/api/orders/manifests/" + digest).error_code(), "MANIFEST_UNKNOWN");
  EXPECT_EQ(nlohmann::json::parse(call(Method::get, "/v2/api/orders/tags/list").body)["tags"].size(), 0u);
}

TEST_F(RegistryApi, DeletionCanBeDisabled) {
  Config config = storage_->config();
  config.delete_enabled = false;
  storage_ = std::make_unique<Storage>(config);
  router_ = proxy::Router();
  add_routes(router_, *storage_);
  auto digest = push_blob("api/orders", "keep");
  auto result = call(Method::delete_, "/v2/api/orders/blobs/" + digest);
  EXPECT_EQ(result.status, 405);
  EXPECT_EQ(result.error_code(), "UNSUPPORTED");
}

TEST_F(RegistryApi, TagListPagination) {
  auto manifest = push_image("api/orders", "a");
  for (auto tag : {"b", "c", "d", "e"})
    call(Method::put, std::string("/v2/api/orders/manifests/") + tag, manifest,
         {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}});
  auto all = nlohmann::json::parse(call(Method::get, "/v2/api/orders/tags/list").body);
  EXPECT_EQ(all["tags"], nlohmann::json({"a", "b", "c", "d", "e"}));
  EXPECT_EQ(all["name"], "api/orders");
  auto first = call(Method::get, "/v2/api/orders/tags/list?n=2");
  EXPECT_EQ(nlohmann::json::parse(first.body)["tags"], nlohmann::json({"a", "b"}));
  EXPECT_EQ(first.header("Link"), "</v2/api/orders/tags/list?n=2&last=b>; rel=\"next\"");
  auto last_page = call(Method::get, "/v2/api/orders/tags/list?n=2&last=d");
  EXPECT_EQ(nlohmann::json::parse(last_page.body)["tags"], nlohmann::json({"e"}));
  EXPECT_EQ(last_page.header("Link"), "");
  auto exact = call(Method::get, "/v2/api/orders/tags/list?n=5");
  EXPECT_EQ(exact.header("Link"), "");
  auto zero = call(Method::get, "/v2/api/orders/tags/list?n=0");
  EXPECT_TRUE(nlohmann::json::parse(zero.body)["tags"].empty());
  auto past_end = call(Method::get, "/v2/api/orders/tags/list?last=zzz");
  EXPECT_TRUE(nlohmann::json::parse(past_end.body)["tags"].empty());
  EXPECT_EQ(call(Method::get, "/v2/api/orders/tags/list?n=-1").status, 400);
  EXPECT_EQ(call(Method::get, "/v2/api/orders/tags/list?n=abc").status, 400);
}

TEST_F(RegistryApi, CatalogPagination) {
  for (auto repo : {"api/a", "api/b", "site/c", "model/d/e"}) push_blob(repo, "x");
  auto all = nlohmann::json::parse(call(Method::get, "/v2/_catalog").body);
  EXPECT_EQ(all["repositories"], nlohmann::json({"api/a", "api/b", "model/d/e", "site/c"}));
  auto page = call(Method::get, "/v2/_catalog?n=3");
  EXPECT_EQ(nlohmann::json::parse(page.body)["repositories"], nlohmann::json({"api/a", "api/b", "model/d/e"}));
  EXPECT_EQ(page.header("Link"), "</v2/_catalog?n=3&last=model/d/e>; rel=\"next\"");
  auto next = call(Method::get, "/v2/_catalog?n=3&last=model/d/e");
  EXPECT_EQ(nlohmann::json::parse(next.body)["repositories"], nlohmann::json({"site/c"}));
}

TEST_F(RegistryApi, ReferrersListsArtifactsWithASubject) {
  auto image = push_image("api/orders", "v1");
  auto subject_digest = digest_of(image).to_string();
  std::string subject = R"("subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                        subject_digest + R"(","size":)" + std::to_string(image.size()) + "}";
  push_blob("api/orders", "{}");
  auto signature = image_manifest("{}", {}, R"("artifactType":"application/vnd.example.sig",)" + subject);
  auto put = call(Method::put, "/v2/api/orders/manifests/" + digest_of(signature).to_string(), signature,
                  {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}});
  EXPECT_EQ(put.status, 201) << put.body;
  EXPECT_EQ(put.header("OCI-Subject"), subject_digest);
  auto sbom = image_manifest("{}", {}, R"("artifactType":"application/spdx+json",)" + subject);
  call(Method::put, "/v2/api/orders/manifests/" + digest_of(sbom).to_string(), sbom,
       {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}});

  auto all = call(Method::get, "/v2/api/orders/referrers/" + subject_digest);
  EXPECT_EQ(all.status, 200);
  EXPECT_EQ(all.header("Content-Type"), "application/vnd.oci.image.index.v1+json");
  auto index = nlohmann::json::parse(all.body);
  EXPECT_EQ(index["manifests"].size(), 2u);
  auto filtered =
      call(Method::get, "/v2/api/orders/referrers/" + subject_digest + "?artifactType=application/spdx%2Bjson");
  EXPECT_EQ(filtered.header("OCI-Filters-Applied"), "artifactType");
  auto only = nlohmann::json::parse(filtered.body)["manifests"];
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0]["digest"], digest_of(sbom).to_string());
  EXPECT_EQ(only[0]["artifactType"], "application/spdx+json");

  // Deleting the referrer takes it out of the listing.
  call(Method::delete_, "/v2/api/orders/manifests/" + digest_of(sbom).to_string());
  EXPECT_EQ(
      nlohmann::json::parse(call(Method::get, "/v2/api/orders/referrers/" + subject_digest).body)["manifests"].size(),
      1u);
  auto none = nlohmann::json::parse(call(Method::get, "/v2/api/orders/referrers/" + digest_of("x").to_string()).body);
  EXPECT_TRUE(none["manifests"].empty());
  EXPECT_EQ(call(Method::get, "/v2/api/orders/referrers/sha256:nothex").error_code(), "DIGEST_INVALID");
}

TEST_F(RegistryApi, NamespacesAreEnforced) {
  auto outside = call(Method::post, "/v2/library/nginx/blobs/uploads/");
  EXPECT_EQ(outside.status, 403);
  EXPECT_EQ(outside.error_code(), "DENIED");
  EXPECT_NE(outside.body.find("api/, site/, model/"), std::string::npos) << outside.body;
  EXPECT_EQ(call(Method::get, "/v2/api/manifests/latest").error_code(), "DENIED");  // a bare namespace
  // HEAD cannot carry the reason, so it says "unknown" and the client's next request gets DENIED.
  auto head = call(Method::head, "/v2/library/nginx/blobs/" + digest_of("x").to_string());
  EXPECT_EQ(head.status, 404);
}

TEST_F(RegistryApi, HostileNamesNeverReachTheFilesystem) {
  for (std::string name :
       {"api/..", "api/../../etc", "api/%2e%2e/x", "api//x", "api/X", "api/x%00y", "api/./x", "api/x\\y"}) {
    auto result = call(Method::get, "/v2/" + name + "/tags/list");
    EXPECT_EQ(result.error_code(), "NAME_INVALID") << name << ": " << result.body;
  }
  EXPECT_EQ(call(Method::get, "/v2/api/x/blobs/sha256:..%2f..%2fetc").error_code(), "DIGEST_INVALID");
  EXPECT_EQ(call(Method::get, "/v2/api/x/manifests/..").error_code(), "MANIFEST_UNKNOWN");
  EXPECT_EQ(call(Method::put, "/v2/api/x/manifests/..", "{}").error_code(), "MANIFEST_INVALID");
}

TEST_F(RegistryApi, RepositoryNamesMayContainEndpointWords) {
  auto digest = push_blob("api/blobs/manifests", "odd name");
  EXPECT_EQ(call(Method::get, "/v2/api/blobs/manifests/blobs/" + digest).body, "odd name");
}

TEST_F(RegistryApi, WrongMethodIsUnsupported) {
  auto result = call(Method::put, "/v2/api/orders/tags/list");
  EXPECT_EQ(result.status, 405);
  EXPECT_EQ(result.error_code(), "UNSUPPORTED");
}

}  // namespace
}  // namespace berth::registry
