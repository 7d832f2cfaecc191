// Unit tests for parse_manifest() and referrer_descriptor_json(): real manifests of each kind
// the registry stores, media-type negotiation, and the exact message for each malformed part.
#include "berth/registry/manifest.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace berth::registry {
namespace {

using nlohmann::json;

constexpr std::string_view config_digest = "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7";
constexpr std::string_view layer0_digest = "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0";
constexpr std::string_view layer1_digest = "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b";
constexpr std::string_view layer2_digest = "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736";
constexpr std::string_view ppc64le_digest = "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f";
constexpr std::string_view amd64_digest = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";
constexpr std::string_view empty_config_digest =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

// The image manifest example of the OCI image spec.
constexpr std::string_view oci_image = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
    "size": 7023
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
      "size": 32654
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b",
      "size": 16724
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736",
      "size": 73109
    }
  ],
  "annotations": {
    "com.example.key2": "value2",
    "com.example.key1": "value1"
  }
})";

constexpr std::string_view docker_image = R"({
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 7023,
        "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"
    },
    "layers": [
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 32654,
            "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0"
        },
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 16724,
            "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b"
        }
    ]
})";

constexpr std::string_view oci_index = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "size": 7143,
      "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
      "platform": {"architecture": "ppc64le", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "size": 7682,
      "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
      "platform": {"architecture": "amd64", "os": "linux"}
    }
  ],
  "annotations": {"com.example.key1": "value1"}
})";

constexpr std::string_view docker_list = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "digest": "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f",
      "size": 7143,
      "platform": {"architecture": "ppc64le", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
      "size": 7682,
      "platform": {"architecture": "amd64", "os": "linux", "features": ["sse4"]}
    }
  ]
})";

// An SBOM attached to the amd64 image, as `oras attach` pushes it (OCI 1.1).
constexpr std::string_view oci_artifact = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example.sbom.v1",
  "config": {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    "size": 2,
    "data": "e30="
  },
  "layers": [
    {
      "mediaType": "application/vnd.example.sbom.v1+json",
      "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
      "size": 1234,
      "annotations": {"org.opencontainers.image.title": "sbom.json"}
    }
  ],
  "subject": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
    "size": 7682
  },
  "annotations": {"org.opencontainers.image.created": "2024-05-01T12:00:00Z"}
})";

Digest digest(std::string_view text) {
  auto parsed = Digest::parse(text);
  if (!parsed) throw std::invalid_argument("bad test digest " + std::string(text));
  return *parsed;
}

ManifestError error_of(std::string_view bytes, std::string_view content_type = "") {
  try {
    parse_manifest(bytes, content_type);
  } catch (ManifestError const& error) {
    return error;
  }
  throw std::runtime_error("expected a ManifestError for " + std::string(bytes));
}

std::string message_of(json const& document, std::string_view content_type = "") {
  return error_of(document.dump(), content_type).what();
}

TEST(Manifest, ParsesOciImageManifest) {
  auto manifest = parse_manifest(oci_image, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(manifest.kind, ManifestKind::image);
  EXPECT_EQ(manifest.media_type, media_type::oci_manifest);
  ASSERT_TRUE(manifest.config);
  EXPECT_EQ(manifest.config->media_type, "application/vnd.oci.image.config.v1+json");
  EXPECT_EQ(manifest.config->digest, digest(config_digest));
  EXPECT_EQ(manifest.config->size, 7023u);
  ASSERT_EQ(manifest.layers.size(), 3u);
  EXPECT_EQ(manifest.layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(manifest.layers[2].digest, digest(layer2_digest));
  EXPECT_EQ(manifest.layers[2].size, 73109u);
  EXPECT_TRUE(manifest.layers[1].urls.empty());
  EXPECT_TRUE(manifest.layers[1].annotations_json.empty());
  EXPECT_TRUE(manifest.manifests.empty());
  EXPECT_FALSE(manifest.subject);
  EXPECT_FALSE(manifest.artifact_type);
  EXPECT_EQ(manifest.annotations_json, R"({"com.example.key1":"value1","com.example.key2":"value2"})");
  EXPECT_EQ(manifest.required_blobs(),
            (std::vector{digest(config_digest), digest(layer0_digest), digest(layer1_digest), digest(layer2_digest)}));
  EXPECT_EQ(manifest.effective_artifact_type(), "application/vnd.oci.image.config.v1+json");
}

TEST(Manifest, ParsesDockerV2Manifest) {
  auto manifest = parse_manifest(docker_image, "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(manifest.kind, ManifestKind::image);
  EXPECT_EQ(manifest.media_type, media_type::docker_manifest);
  ASSERT_TRUE(manifest.config);
  EXPECT_EQ(manifest.config->media_type, "application/vnd.docker.container.image.v1+json");
  ASSERT_EQ(manifest.layers.size(), 2u);
  EXPECT_EQ(manifest.layers[1].digest, digest(layer1_digest));
  EXPECT_TRUE(manifest.annotations_json.empty());
  EXPECT_EQ(manifest.required_blobs(),
            (std::vector{digest(config_digest), digest(layer0_digest), digest(layer1_digest)}));
}

TEST(Manifest, ParsesOciIndexWithTwoPlatforms) {
  auto manifest = parse_manifest(oci_index, "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(manifest.kind, ManifestKind::index);
  EXPECT_EQ(manifest.media_type, media_type::oci_index);
  EXPECT_FALSE(manifest.config);
  EXPECT_TRUE(manifest.layers.empty());
  ASSERT_EQ(manifest.manifests.size(), 2u);
  EXPECT_EQ(manifest.manifests[0].media_type, media_type::oci_manifest);
  EXPECT_EQ(manifest.manifests[0].digest, digest(ppc64le_digest));
  EXPECT_EQ(manifest.manifests[0].size, 7143u);
  EXPECT_EQ(manifest.manifests[1].digest, digest(amd64_digest));
  EXPECT_EQ(manifest.annotations_json, R"({"com.example.key1":"value1"})");
  EXPECT_TRUE(manifest.required_blobs().empty());
  EXPECT_FALSE(manifest.effective_artifact_type());
}

TEST(Manifest, ParsesDockerManifestList) {
  auto manifest = parse_manifest(docker_list, "application/vnd.docker.distribution.manifest.list.v2+json");
  EXPECT_EQ(manifest.kind, ManifestKind::index);
  EXPECT_EQ(manifest.media_type, media_type::docker_manifest_list);
  ASSERT_EQ(manifest.manifests.size(), 2u);
  EXPECT_EQ(manifest.manifests[1].media_type, media_type::docker_manifest);
  EXPECT_EQ(manifest.manifests[1].size, 7682u);
  EXPECT_TRUE(manifest.required_blobs().empty());
}

TEST(Manifest, ParsesOci11Artifact) {
  auto manifest = parse_manifest(oci_artifact, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(manifest.kind, ManifestKind::image);
  EXPECT_EQ(manifest.artifact_type, "application/vnd.example.sbom.v1");
  EXPECT_EQ(manifest.effective_artifact_type(), "application/vnd.example.sbom.v1");
  ASSERT_TRUE(manifest.config);
  EXPECT_EQ(manifest.config->media_type, "application/vnd.oci.empty.v1+json");
  EXPECT_EQ(manifest.config->digest, digest(empty_config_digest));
  EXPECT_EQ(manifest.config->size, 2u);
  ASSERT_EQ(manifest.layers.size(), 1u);
  EXPECT_EQ(manifest.layers[0].annotations_json, R"({"org.opencontainers.image.title":"sbom.json"})");
  ASSERT_TRUE(manifest.subject);
  EXPECT_EQ(manifest.subject->media_type, media_type::oci_manifest);
  EXPECT_EQ(manifest.subject->digest, digest(amd64_digest));
  EXPECT_EQ(manifest.subject->size, 7682u);
  EXPECT_EQ(manifest.required_blobs(), (std::vector{digest(empty_config_digest), digest(layer0_digest)}));
}

TEST(Manifest, AcceptsEmptyLayers) {
  auto document = json::parse(oci_artifact);
  document["layers"] = json::array();
  EXPECT_TRUE(parse_manifest(document.dump(), "").layers.empty());
}

TEST(Manifest, DescriptorKeepsArtifactTypeAndUrls) {
  auto document = json::parse(oci_index);
  document["manifests"][0]["artifactType"] = "application/vnd.example.thing";
  document["manifests"][0]["urls"] = {"https://example.com/a"};
  auto manifest = parse_manifest(document.dump(), "");
  EXPECT_EQ(manifest.manifests[0].artifact_type, "application/vnd.example.thing");
  EXPECT_EQ(manifest.manifests[0].urls, std::vector<std::string>{"https://example.com/a"});
  EXPECT_FALSE(manifest.manifests[1].artifact_type);
}

TEST(Manifest, InfersImageMediaTypeWithoutContentType) {
  auto document = json::parse(oci_image);
  document.erase("mediaType");
  auto manifest = parse_manifest(document.dump(), "");
  EXPECT_EQ(manifest.kind, ManifestKind::image);
  EXPECT_EQ(manifest.media_type, media_type::oci_manifest);
}

TEST(Manifest, InfersIndexMediaTypeFromManifestsField) {
  auto document = json::parse(oci_index);
  document.erase("mediaType");
  auto manifest = parse_manifest(document.dump(), "application/json");
  EXPECT_EQ(manifest.kind, ManifestKind::index);
  EXPECT_EQ(manifest.media_type, media_type::oci_index);
}

TEST(Manifest, TakesMediaTypeFromContentType) {
  auto document = json::parse(docker_list);
  document.erase("mediaType");
  auto manifest = parse_manifest(document.dump(), " application/vnd.docker.distribution.manifest.list.v2+json ");
  EXPECT_EQ(manifest.kind, ManifestKind::index);
  EXPECT_EQ(manifest.media_type, media_type::docker_manifest_list);
}

TEST(Manifest, IgnoresContentTypeParameters) {
  auto manifest = parse_manifest(oci_image, "application/vnd.oci.image.manifest.v1+json; charset=utf-8");
  EXPECT_EQ(manifest.media_type, media_type::oci_manifest);
  EXPECT_EQ(parse_manifest(oci_image, "application/json; charset=utf-8").media_type, media_type::oci_manifest);
}

TEST(Manifest, RejectsMediaTypeMismatch) {
  auto error = error_of(oci_image, "application/vnd.oci.image.index.v1+json");
  EXPECT_STREQ(error.what(), R"(mediaType "application/vnd.oci.image.manifest.v1+json" does not match Content-Type )"
                             R"("application/vnd.oci.image.index.v1+json")");
  EXPECT_FALSE(error.unsupported());
}

TEST(Manifest, RejectsDockerMediaTypeUnderOciContentType) {
  auto error = error_of(docker_image, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_FALSE(error.unsupported());
}

TEST(Manifest, RefusesSchema1InContentType) {
  constexpr std::string_view schema1 = R"({
    "schemaVersion": 1, "name": "library/hello", "tag": "latest", "architecture": "amd64",
    "fsLayers": [{"blobSum": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0"}],
    "history": [{"v1Compatibility": "{}"}], "signatures": []})";
  auto error = error_of(schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws");
  EXPECT_TRUE(error.unsupported());
  EXPECT_STREQ(
      error.what(),
      "docker image manifest schema 1 (Content-Type application/vnd.docker.distribution.manifest.v1+prettyjws) "
      "is not supported\n"
      "HINT: push with a current client (docker 1.10 or later, podman, skopeo, crane), which sends schema 2 or "
      "OCI");
  EXPECT_TRUE(error_of(schema1, "application/vnd.docker.distribution.manifest.v1+json").unsupported());
}

TEST(Manifest, RefusesSchema1WithoutContentType) {
  auto error = error_of(R"({"schemaVersion": 1, "name": "library/hello", "fsLayers": []})", "application/json");
  EXPECT_TRUE(error.unsupported());
  EXPECT_STREQ(
      error.what(),
      "docker image manifest schema 1 (schemaVersion 1) is not supported\n"
      "HINT: push with a current client (docker 1.10 or later, podman, skopeo, crane), which sends schema 2 or "
      "OCI");
}

TEST(Manifest, RefusesSchema1InMediaType) {
  auto document = json::parse(docker_image);
  document["mediaType"] = media_type::docker_schema1;
  auto error = error_of(document.dump(), "");
  EXPECT_TRUE(error.unsupported());
  EXPECT_STREQ(
      error.what(),
      "docker image manifest schema 1 (mediaType application/vnd.docker.distribution.manifest.v1+json) "
      "is not supported\n"
      "HINT: push with a current client (docker 1.10 or later, podman, skopeo, crane), which sends schema 2 or "
      "OCI");
}

TEST(Manifest, RefusesUnknownMediaType) {
  auto document = json::parse(oci_image);
  document["mediaType"] = "application/vnd.example.thing+json";
  auto error = error_of(document.dump(), "");
  EXPECT_TRUE(error.unsupported());
  EXPECT_STREQ(error.what(),
               R"(mediaType "application/vnd.example.thing+json" is not a supported manifest media type)");

  document.erase("mediaType");
  error = error_of(document.dump(), "Text/Plain; charset=utf-8");
  EXPECT_TRUE(error.unsupported());
  EXPECT_STREQ(error.what(), R"(Content-Type "text/plain" is not a supported manifest media type)");
}

TEST(Manifest, RejectsNonStringMediaType) {
  auto document = json::parse(oci_image);
  document["mediaType"] = 2;
  EXPECT_EQ(message_of(document), "mediaType: expected a string");
}

TEST(Manifest, RejectsWrongSchemaVersion) {
  auto document = json::parse(oci_image);
  document["schemaVersion"] = 1;
  auto error = error_of(document.dump(), "");
  EXPECT_FALSE(error.unsupported());
  EXPECT_STREQ(error.what(), "schemaVersion: expected 2, got 1");
  document["schemaVersion"] = "2";
  EXPECT_EQ(message_of(document), R"(schemaVersion: expected 2, got "2")");
  document["schemaVersion"] = 2.0;
  EXPECT_EQ(message_of(document), "schemaVersion: expected 2, got 2.0");
  document["schemaVersion"] = 3;
  EXPECT_EQ(message_of(document), "schemaVersion: expected 2, got 3");
  document.erase("schemaVersion");
  EXPECT_EQ(message_of(document), "schemaVersion: missing, expected 2");
}

TEST(Manifest, RejectsInvalidJson) {
  for (std::string_view bytes : {"", "{", R"({"schemaVersion": 2,})", "{\"a\": \"\xff\"}", "nul"}) {
    auto error = error_of(bytes);
    std::string_view message = error.what();
    EXPECT_TRUE(message.starts_with("manifest is not valid JSON: ")) << message;
    EXPECT_EQ(message.find("[json.exception"), std::string_view::npos) << message;
    EXPECT_FALSE(error.unsupported());
  }
  // The detail is nlohmann's own wording, which may change between releases; the position is ours to promise.
  EXPECT_NE(std::string_view(error_of("{").what()).find("line 1, column 2"), std::string_view::npos);
}

TEST(Manifest, RejectsNonObjectDocument) {
  for (std::string_view bytes : {"[]", "2", R"("manifest")", "null"})
    EXPECT_STREQ(error_of(bytes).what(), "manifest is not a JSON object") << bytes;
}

TEST(Manifest, RejectsMisplacedFields) {
  auto image = json::parse(oci_image);
  image["manifests"] = json::array();
  EXPECT_EQ(message_of(image), "manifests: not allowed in an image manifest");

  auto index = json::parse(oci_index);
  index["config"] = json::parse(oci_image)["config"];
  EXPECT_EQ(message_of(index), "config: not allowed in an image index");
  index.erase("config");
  index["layers"] = json::array();
  EXPECT_EQ(message_of(index), "layers: not allowed in an image index");

  // Without a mediaType, "manifests" makes it an index, which must not carry a config.
  auto mixed = json::parse(oci_image);
  mixed.erase("mediaType");
  mixed["manifests"] = json::array();
  EXPECT_EQ(message_of(mixed), "config: not allowed in an image index");
}

TEST(Manifest, RejectsMissingParts) {
  auto image = json::parse(oci_image);
  image.erase("config");
  EXPECT_EQ(message_of(image), "config: missing, an image manifest requires it");
  image = json::parse(oci_image);
  image.erase("layers");
  EXPECT_EQ(message_of(image), "layers: missing, an image manifest requires it");
  auto index = json::parse(oci_index);
  index.erase("manifests");
  EXPECT_EQ(message_of(index), "manifests: missing, an image index requires it");
}

struct DescriptorCase {
  std::string_view pointer;  // JSON pointer into oci_artifact of the value to replace or erase
  json value;                // discarded (null) means erase
  std::string message;
};

TEST(Manifest, NamesThePathOfEachDescriptorError) {
  json const erase = json::value_t::discarded;
  std::vector<DescriptorCase> const cases = {
      {"/config", "x", "config: expected an object"},
      {"/config", json::array(), "config: expected an object"},
      {"/layers", json::object(), "layers: expected an array"},
      {"/layers/0", 7, "layers[0]: expected an object"},
      {"/subject", "sha256:00", "subject: expected an object"},
      {"/config/mediaType", erase, "config.mediaType: missing"},
      {"/config/mediaType", "", "config.mediaType: expected a non-empty string"},
      {"/config/mediaType", 5, "config.mediaType: expected a non-empty string"},
      {"/layers/0/digest", erase, "layers[0].digest: missing"},
      {"/layers/0/digest", 12, "layers[0].digest: expected a string"},
      {"/layers/0/digest", "sha256:xyz", R"(layers[0].digest: "sha256:xyz" is not a valid digest)"},
      {"/layers/0/digest", "sha256:../../etc/passwd",
       R"(layers[0].digest: "sha256:../../etc/passwd" is not a valid digest)"},
      {"/layers/0/digest", "\n", R"(layers[0].digest: "\n" is not a valid digest)"},
      {"/layers/0/digest", "é", R"(layers[0].digest: "\u00e9" is not a valid digest)"},
      {"/subject/digest", std::string(200, 'a'),
       "subject.digest: \"" + std::string(99, 'a') + "... is not a valid digest"},
      {"/config/size", erase, "config.size: missing"},
      {"/config/size", -1, "config.size: expected a non-negative integer"},
      {"/config/size", 1.5, "config.size: expected a non-negative integer"},
      {"/config/size", 2.0, "config.size: expected a non-negative integer"},
      {"/config/size", "2", "config.size: expected a non-negative integer"},
      {"/config/size", nullptr, "config.size: expected a non-negative integer"},
      {"/subject/size", -7682, "subject.size: expected a non-negative integer"},
      {"/layers/0/artifactType", 1, "layers[0].artifactType: expected a string"},
      {"/layers/0/annotations", "x", "layers[0].annotations: expected an object"},
      {"/layers/0/annotations/org.opencontainers.image.title", 3,
       R"(layers[0].annotations["org.opencontainers.image.title"]: expected a string)"},
      {"/layers/0/urls", "https://example.com", "layers[0].urls: expected an array"},
      {"/layers/0/urls", {"https://example.com", 1}, "layers[0].urls[1]: expected a string"},
      {"/artifactType", json::object(), "artifactType: expected a string"},
      {"/annotations", json::array(), "annotations: expected an object"},
      {"/annotations/org.opencontainers.image.created", json::object(),
       R"(annotations["org.opencontainers.image.created"]: expected a string)"},
  };
  for (auto const& test_case : cases) {
    auto document = json::parse(oci_artifact);
    json::json_pointer const pointer{std::string(test_case.pointer)};
    if (test_case.value.is_discarded())
      document[pointer.parent_pointer()].erase(pointer.back());
    else
      document[pointer] = test_case.value;
    EXPECT_EQ(message_of(document), test_case.message) << test_case.pointer << " = " << test_case.value.dump();
  }
}

TEST(Manifest, NamesTheIndexOfABadLayer) {
  auto document = json::parse(oci_image);
  document["layers"][2]["digest"] = "sha256:xyz";
  EXPECT_EQ(message_of(document), R"(layers[2].digest: "sha256:xyz" is not a valid digest)");
}

TEST(Manifest, NamesTheIndexOfABadManifest) {
  auto document = json::parse(oci_index);
  document["manifests"][0] = "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f";
  EXPECT_EQ(message_of(document), "manifests[0]: expected an object");
  document = json::parse(docker_list);
  document["manifests"][1]["size"] = -1;
  EXPECT_EQ(message_of(document), "manifests[1].size: expected a non-negative integer");
  document["manifests"] = json::object();
  EXPECT_EQ(message_of(document), "manifests: expected an array");
}

TEST(Manifest, AcceptsLargestSize) {
  auto document = json::parse(oci_image);
  document["layers"][0]["size"] = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(parse_manifest(document.dump(), "").layers[0].size, std::numeric_limits<std::uint64_t>::max());
  auto text = document.dump();
  text.replace(text.find("18446744073709551615"), 20, "18446744073709551616");
  EXPECT_STREQ(error_of(text).what(), "layers[0].size: expected a non-negative integer");
}

TEST(Manifest, RequiredBlobsSkipForeignLayers) {
  auto document = json::parse(docker_image);
  document["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
  document["layers"][0]["urls"] = {"https://mcr.microsoft.com/v2/windows/servercore/blobs/" +
                                   std::string(layer0_digest)};
  auto manifest = parse_manifest(document.dump(), "");
  ASSERT_EQ(manifest.layers[0].urls.size(), 1u);
  EXPECT_EQ(manifest.required_blobs(), (std::vector{digest(config_digest), digest(layer1_digest)}));

  // An empty urls list is not a foreign layer.
  document["layers"][0]["urls"] = json::array();
  EXPECT_EQ(parse_manifest(document.dump(), "").required_blobs().size(), 3u);
}

TEST(Manifest, EmptyArtifactTypeCountsAsAbsent) {
  auto document = json::parse(oci_artifact);
  document["artifactType"] = "";
  auto manifest = parse_manifest(document.dump(), "");
  EXPECT_FALSE(manifest.artifact_type);
  EXPECT_EQ(manifest.effective_artifact_type(), "application/vnd.oci.empty.v1+json");
}

TEST(ReferrerDescriptor, ListsArtifactWithTypeAndAnnotations) {
  auto manifest = parse_manifest(oci_artifact, "");
  EXPECT_EQ(referrer_descriptor_json(manifest, digest(layer2_digest), 1021),
            R"({"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
            R"("digest":"sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736","size":1021,)"
            R"("artifactType":"application/vnd.example.sbom.v1",)"
            R"("annotations":{"org.opencontainers.image.created":"2024-05-01T12:00:00Z"}})");
}

TEST(ReferrerDescriptor, FallsBackToConfigMediaType) {
  auto document = json::parse(docker_image);
  auto manifest = parse_manifest(document.dump(), "");
  EXPECT_EQ(referrer_descriptor_json(manifest, digest(layer2_digest), 7),
            R"({"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
            R"("digest":"sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736","size":7,)"
            R"("artifactType":"application/vnd.docker.container.image.v1+json"})");
}

TEST(ReferrerDescriptor, OmitsArtifactTypeForPlainIndex) {
  auto document = json::parse(oci_index);
  document.erase("annotations");
  auto manifest = parse_manifest(document.dump(), "");
  EXPECT_EQ(referrer_descriptor_json(manifest, digest(layer2_digest), 512),
            R"({"mediaType":"application/vnd.oci.image.index.v1+json",)"
            R"("digest":"sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736","size":512})");
}

}  // namespace
}  // namespace berth::registry
