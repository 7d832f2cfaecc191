// Parsing of pushed manifests with nlohmann::json. It decides the media type, checks the
// structure the registry relies on (descriptors it must resolve, the subject it must index)
// and ignores everything else: platform objects, unknown fields and the bytes' formatting
// are the client's business, and the stored manifest is always the bytes as received.
#include "berth/registry/manifest.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstddef>
#include <utility>

namespace berth::registry {
namespace {

using nlohmann::json;

constexpr std::array known_media_types{media_type::oci_manifest, media_type::oci_index, media_type::docker_manifest,
                                       media_type::docker_manifest_list};

// Offending values are quoted in error messages, which end up in logs and client output, so
// they are escaped to ASCII and cut short.
std::string quote(json const& value) {
  constexpr std::size_t max_quoted_size = 100;
  std::string text = value.dump(-1, ' ', true, json::error_handler_t::replace);
  if (text.size() > max_quoted_size) text = text.substr(0, max_quoted_size) + "...";
  return text;
}

std::string quote_text(std::string_view text) {
  return quote(json(std::string(text)));
}

[[noreturn]] void fail(std::string const& path, std::string const& problem) {
  throw ManifestError(path + ": " + problem);
}

bool is_schema1(std::string_view type) {
  return type == media_type::docker_schema1 || type == media_type::docker_schema1_signed;
}

[[noreturn]] void refuse_schema1(std::string_view where) {
  throw ManifestError(
      "docker image manifest schema 1 (" + std::string(where) +
          ") is not supported\n"
          "HINT: push with a current client (docker 1.10 or later, podman, skopeo, crane), which sends schema 2 or OCI",
      true);
}

bool is_known(std::string_view type) {
  for (auto known : known_media_types)
    if (type == known) return true;
  return false;
}

// The media type part of a Content-Type header: parameters dropped, surrounding whitespace
// trimmed, lowercased (media types are case-insensitive in HTTP). Empty when the client did
// not say anything specific: no header, or plain "application/json".
std::string content_media_type(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  auto const first = content_type.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  content_type = content_type.substr(first, content_type.find_last_not_of(" \t") - first + 1);
  std::string type;
  for (char c : content_type) type += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (type == "application/json") return {};
  return type;
}

std::string parse_annotations(json const& value, std::string const& path) {
  if (!value.is_object()) fail(path, "expected an object");
  // The image spec requires string values; enforcing it also keeps deeply nested values,
  // which dump() would recurse into, out of the stored text.
  for (auto const& [key, item] : value.items())
    if (!item.is_string()) fail(path + "[" + quote_text(key) + "]", "expected a string");
  return value.dump();
}

Descriptor parse_descriptor(json const& value, std::string const& path) {
  if (!value.is_object()) fail(path, "expected an object");

  auto const media_type = value.find("mediaType");
  if (media_type == value.end()) fail(path + ".mediaType", "missing");
  if (!media_type->is_string() || media_type->get_ref<std::string const&>().empty())
    fail(path + ".mediaType", "expected a non-empty string");

  auto const digest_field = value.find("digest");
  if (digest_field == value.end()) fail(path + ".digest", "missing");
  if (!digest_field->is_string()) fail(path + ".digest", "expected a string");
  auto digest = Digest::parse(digest_field->get_ref<std::string const&>());
  if (!digest) fail(path + ".digest", quote(*digest_field) + " is not a valid digest");

  // nlohmann stores non-negative integers as number_unsigned; negatives, fractions and
  // integers beyond 2^64 - 1 (parsed as floats) all fail this one check.
  auto const size = value.find("size");
  if (size == value.end()) fail(path + ".size", "missing");
  if (!size->is_number_unsigned()) fail(path + ".size", "expected a non-negative integer");

  Descriptor descriptor{.media_type = media_type->get<std::string>(),
                        .digest = *std::move(digest),
                        .size = size->get<std::uint64_t>(),
                        .artifact_type = std::nullopt,
                        .annotations_json = {},
                        .urls = {}};

  if (auto const artifact_type = value.find("artifactType"); artifact_type != value.end()) {
    if (!artifact_type->is_string()) fail(path + ".artifactType", "expected a string");
    if (!artifact_type->get_ref<std::string const&>().empty())
      descriptor.artifact_type = artifact_type->get<std::string>();
  }
  if (auto const annotations = value.find("annotations"); annotations != value.end())
    descriptor.annotations_json = parse_annotations(*annotations, path + ".annotations");
  if (auto const urls = value.find("urls"); urls != value.end()) {
    if (!urls->is_array()) fail(path + ".urls", "expected an array");
    for (std::size_t url_idx = 0; url_idx < urls->size(); ++url_idx) {
      auto const& url = (*urls)[url_idx];
      if (!url.is_string()) fail(path + ".urls[" + std::to_string(url_idx) + "]", "expected a string");
      descriptor.urls.push_back(url.get<std::string>());
    }
  }
  return descriptor;
}

std::vector<Descriptor> parse_descriptors(json const& document, std::string const& key) {
  auto const field = document.find(key);
  if (!field->is_array()) fail(key, "expected an array");
  std::vector<Descriptor> descriptors;
  descriptors.reserve(field->size());
  for (std::size_t item_idx = 0; item_idx < field->size(); ++item_idx)
    descriptors.push_back(parse_descriptor((*field)[item_idx], key + "[" + std::to_string(item_idx) + "]"));
  return descriptors;
}

// Decides the media type to serve the manifest with, refusing schema 1, unknown types and a
// document that contradicts its own Content-Type.
std::string decide_media_type(json const& document, std::string_view content_type) {
  std::string document_type;
  if (auto const field = document.find("mediaType"); field != document.end()) {
    if (!field->is_string()) fail("mediaType", "expected a string");
    document_type = field->get<std::string>();
  }
  std::string const header_type = content_media_type(content_type);

  if (is_schema1(document_type)) refuse_schema1("mediaType " + document_type);
  if (is_schema1(header_type)) refuse_schema1("Content-Type " + header_type);
  // Schema 1 documents carry no mediaType, and older clients send them as plain JSON.
  if (document_type.empty() && header_type.empty()) {
    if (auto const version = document.find("schemaVersion"); version != document.end() && *version == 1)
      refuse_schema1("schemaVersion 1");
  }

  if (!document_type.empty() && !is_known(document_type))
    throw ManifestError("mediaType " + quote_text(document_type) + " is not a supported manifest media type", true);
  if (!header_type.empty() && !is_known(header_type))
    throw ManifestError("Content-Type " + quote_text(header_type) + " is not a supported manifest media type", true);
  if (!document_type.empty() && !header_type.empty() && document_type != header_type)
    throw ManifestError("mediaType " + quote_text(document_type) + " does not match Content-Type " +
                        quote_text(header_type));

  if (!document_type.empty()) return document_type;
  if (!header_type.empty()) return header_type;
  return std::string(document.contains("manifests") ? media_type::oci_index : media_type::oci_manifest);
}

}  // namespace

std::vector<Digest> Manifest::required_blobs() const {
  std::vector<Digest> blobs;
  if (config) blobs.push_back(config->digest);
  for (auto const& layer : layers)
    if (layer.urls.empty()) blobs.push_back(layer.digest);
  return blobs;
}

std::optional<std::string> Manifest::effective_artifact_type() const {
  if (artifact_type) return artifact_type;
  if (kind == ManifestKind::image && config) return config->media_type;
  return std::nullopt;
}

Manifest parse_manifest(std::string_view bytes, std::string_view content_type) {
  json document;
  try {
    document = json::parse(bytes.begin(), bytes.end());
  } catch (json::parse_error const& error) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; the rest says where and why.
    std::string_view detail = error.what();
    if (auto const end = detail.find("] "); detail.starts_with("[json.exception.") && end != detail.npos)
      detail.remove_prefix(end + 2);
    throw ManifestError("manifest is not valid JSON: " + std::string(detail));
  }
  if (!document.is_object()) throw ManifestError("manifest is not a JSON object");

  Manifest manifest;
  manifest.media_type = decide_media_type(document, content_type);

  auto const version = document.find("schemaVersion");
  if (version == document.end()) fail("schemaVersion", "missing, expected 2");
  if (!version->is_number_integer() || *version != 2) fail("schemaVersion", "expected 2, got " + quote(*version));

  bool const is_index =
      manifest.media_type == media_type::oci_index || manifest.media_type == media_type::docker_manifest_list;
  manifest.kind = is_index ? ManifestKind::index : ManifestKind::image;
  if (is_index) {
    if (document.contains("config")) fail("config", "not allowed in an image index");
    if (document.contains("layers")) fail("layers", "not allowed in an image index");
    if (!document.contains("manifests")) fail("manifests", "missing, an image index requires it");
    manifest.manifests = parse_descriptors(document, "manifests");
  } else {
    if (document.contains("manifests")) fail("manifests", "not allowed in an image manifest");
    if (!document.contains("config")) fail("config", "missing, an image manifest requires it");
    if (!document.contains("layers")) fail("layers", "missing, an image manifest requires it");
    manifest.config = parse_descriptor(*document.find("config"), "config");
    manifest.layers = parse_descriptors(document, "layers");
  }

  if (auto const subject = document.find("subject"); subject != document.end())
    manifest.subject = parse_descriptor(*subject, "subject");
  if (auto const artifact_type = document.find("artifactType"); artifact_type != document.end()) {
    if (!artifact_type->is_string()) fail("artifactType", "expected a string");
    if (!artifact_type->get_ref<std::string const&>().empty())
      manifest.artifact_type = artifact_type->get<std::string>();
  }
  if (auto const annotations = document.find("annotations"); annotations != document.end())
    manifest.annotations_json = parse_annotations(*annotations, "annotations");
  return manifest;
}

std::string referrer_descriptor_json(Manifest const& manifest, Digest const& digest, std::uint64_t size) {
  nlohmann::ordered_json descriptor;
  descriptor["mediaType"] = manifest.media_type;
  descriptor["digest"] = digest.to_string();
  descriptor["size"] = size;
  if (auto artifact_type = manifest.effective_artifact_type()) descriptor["artifactType"] = *artifact_type;
  if (!manifest.annotations_json.empty())
    descriptor["annotations"] = nlohmann::ordered_json::parse(manifest.annotations_json);
  return descriptor.dump();
}

}  // namespace berth::registry
