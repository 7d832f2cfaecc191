// Parsing and validating manifests as clients PUT them: OCI image manifest and index, Docker
// v2 schema 2 manifest and manifest list, and OCI 1.1 artifacts (artifactType, subject). The
// bytes themselves are stored as received; this only extracts what the registry must check
// (referenced blobs and manifests) and index (the subject, for the referrers API).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/core/error.hpp"
#include "berth/registry/digest.hpp"

namespace berth::registry {

namespace media_type {
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_manifest_list = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view docker_schema1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view docker_schema1_signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";
}  // namespace media_type

/// A manifest the registry refuses. `unsupported` for a kind it does not store (Docker schema
/// 1, an unknown media type: UNSUPPORTED / MANIFEST_INVALID by the caller's choice), else invalid.
class ManifestError : public Error {
public:
  ManifestError(std::string const& message, bool unsupported = false) : Error(message), unsupported_(unsupported) {}
  bool unsupported() const { return unsupported_; }

private:
  bool unsupported_;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  std::uint64_t size = 0;
  std::optional<std::string> artifact_type;
  std::string annotations_json;   ///< the "annotations" object as JSON text; empty when absent
  std::vector<std::string> urls;  ///< non-empty for foreign (non-distributable) layers
};

enum class ManifestKind { image, index };

struct Manifest {
  ManifestKind kind = ManifestKind::image;
  /// The media type to serve it with: the document's mediaType, else the request's
  /// Content-Type, else inferred from the structure (OCI manifest or OCI index).
  std::string media_type;
  std::optional<Descriptor> config;   ///< image only (always present for an image)
  std::vector<Descriptor> layers;     ///< image only
  std::vector<Descriptor> manifests;  ///< index only
  std::optional<Descriptor> subject;
  std::optional<std::string> artifact_type;  ///< the top-level artifactType
  std::string annotations_json;              ///< top-level "annotations" as JSON text; empty when absent

  /// Blobs the repository must hold before this manifest is accepted: the config and every
  /// layer, except foreign layers that carry `urls`.
  std::vector<Digest> required_blobs() const;
  /// The artifactType shown for this manifest in a referrers listing: artifactType if set,
  /// else the config's media type (images), else none.
  std::optional<std::string> effective_artifact_type() const;
};

/// Parses `bytes` as PUT with request header `content_type` (possibly empty). Requires a JSON
/// object with schemaVersion 2, a known media type (a mediaType field and a specific
/// Content-Type must agree), and well-formed descriptors (mediaType, digest, size >= 0).
/// Throws ManifestError saying exactly what is wrong, e.g. `layers[2].digest: "sha256:xyz" is
/// not a valid digest`.
Manifest parse_manifest(std::string_view bytes, std::string_view content_type);

/// The descriptor of a manifest stored at `digest` with `size` bytes, as the referrers API lists
/// it: {"mediaType","digest","size"} plus "artifactType" and "annotations" when present. JSON text.
std::string referrer_descriptor_json(Manifest const& manifest, Digest const& digest, std::uint64_t size);

}  // namespace berth::registry
