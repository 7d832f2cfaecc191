// Builds OCI image-layout directories (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) on disk
// so tests can push real images with skopeo and compare what comes back byte for byte. Not a
// registry client and not a validator: it writes what it is told, with digests computed
// independently of berth's own code (OpenSSL), so it can serve as the oracle.
//
// What skopeo 1.9.3 does with these (pinned by tests/integration/oci_layout_test.cpp; the
// registry lines were checked by hand against docker-registry 2.8):
//  - OCI images, OCI indexes and OCI 1.1 artifacts (empty config, `subject`, `artifactType`)
//    copy byte for byte, every manifest and blob, with no extra flags:
//      skopeo --insecure-policy copy [--all] oci:SRC:TAG oci:DST:TAG    (or dir:DST)
//      skopeo --insecure-policy copy [--all] oci:SRC:TAG docker://127.0.0.1:PORT/api/app:TAG --dest-tls-verify=false
//    `--all` keeps an index and all its images; without it skopeo copies only the image for
//    the host's platform (or `--override-arch`/`--override-variant`, global flags).
//  - Docker media types cannot come from an `oci:` layout: skopeo's oci: reader skips
//    index.json entries that are not OCI-typed ("no descriptor found for reference"). Use
//    export_dir() and a `dir:` source instead; `dir:` keeps schema2 manifests and manifest
//    lists byte for byte in both directions:
//      skopeo --insecure-policy copy [--all] dir:SRC docker://127.0.0.1:PORT/api/app:TAG --dest-tls-verify=false
//  - An `oci:` destination converts Docker manifests to OCI (new bytes and digest); with
//    `--preserve-digests` it stores a schema2 manifest unchanged (which skopeo then cannot read
//    back) and refuses a manifest list ("Manifest list must be converted ..."). So pull back
//    into `dir:`, the one destination that keeps everything:
//      skopeo --insecure-policy copy [--all] --preserve-digests --src-tls-verify=false docker://... dir:DST
//    `dir:DST/manifest.json` holds the top manifest's bytes, each blob is `DST/<hex>`, and with
//    `--all` each child manifest is `DST/<hex>.manifest.json`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "berth/testing/process.hpp"

namespace berth::testing {

/// Which family of media types a manifest, index, config or layer uses.
enum class MediaTypes { oci, docker };

namespace media_type {
inline constexpr char oci_manifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char oci_index[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char oci_config[] = "application/vnd.oci.image.config.v1+json";
inline constexpr char oci_layer[] = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr char oci_empty[] = "application/vnd.oci.empty.v1+json";
inline constexpr char docker_manifest[] = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char docker_list[] = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char docker_config[] = "application/vnd.docker.container.image.v1+json";
inline constexpr char docker_layer[] = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}  // namespace media_type

/// A blob written to the layout, and what a descriptor pointing at it needs.
struct Blob {
  std::string digest;  ///< "sha256:<hex>"
  std::uint64_t size = 0;
  std::string media_type;
  std::string diff_id;  ///< layers from add_layer(): digest of the uncompressed tar; empty otherwise
};

struct Platform {
  std::string architecture = "amd64";
  std::string os = "linux";
  std::string variant;  ///< omitted from JSON when empty
};

struct ManifestOptions {
  MediaTypes media_types = MediaTypes::oci;
  std::optional<Blob> subject;                     ///< OCI 1.1 referrer; OCI only
  std::string artifact_type;                       ///< omitted when empty; OCI only
  std::map<std::string, std::string> annotations;  ///< omitted when empty
};

/// An image made by add_image(): its manifest, config and layers.
struct Image {
  Blob manifest;
  Blob config;
  std::vector<Blob> layers;
};

/// One layout directory. Every add_* writes a blob (temp file, then rename) and returns its
/// descriptor; nothing is referenced from index.json until tag(). The same inputs always give
/// the same bytes and digests. Throws std::runtime_error on I/O or libarchive failures. Not
/// thread-safe; use from one thread.
class OciLayout {
public:
  /// Opens `dir`, creating it with `oci-layout` and an empty `index.json` when absent; an
  /// existing index.json is kept and extended by tag().
  explicit OciLayout(std::filesystem::path dir);

  std::filesystem::path const& dir() const { return dir_; }

  /// Stores `bytes` as a blob.
  Blob add_blob(std::string_view bytes, std::string media_type);

  /// A real gzip-compressed tar (libarchive) holding one file, `layer-<seed>.bin`, of `size`
  /// pseudo-random bytes drawn from `seed`. Streams: memory use does not grow with `size`.
  /// The result carries diff_id for add_config().
  Blob add_layer(std::uint64_t size, std::uint64_t seed, MediaTypes media_types = MediaTypes::oci);

  /// A valid image config: `platform`, rootfs.diff_ids from `layers` (each needs a diff_id),
  /// one history entry per layer, a fixed creation time.
  Blob add_config(std::vector<Blob> const& layers, Platform const& platform = {},
                  MediaTypes media_types = MediaTypes::oci);

  /// An image manifest (OCI or Docker schema2) over `config` and `layers`. Throws
  /// std::invalid_argument for a subject or artifact_type on a Docker manifest.
  Blob add_image_manifest(Blob const& config, std::vector<Blob> const& layers, ManifestOptions const& options = {});

  /// An OCI image index, or a Docker manifest list, of `manifests` with their platforms.
  Blob add_index(std::vector<std::pair<Blob, Platform>> const& manifests, MediaTypes media_types = MediaTypes::oci);

  /// An OCI 1.1 artifact manifest: the empty config (`{}`, application/vnd.oci.empty.v1+json),
  /// `payload` as its one layer, `artifact_type`, and `subject`.
  Blob add_artifact(std::string const& artifact_type, Blob const& subject, std::string_view payload,
                    std::string payload_media_type = "application/octet-stream");

  /// Layers of `layer_sizes` (seeds derived from `seed`), a config and a manifest, in one call.
  Image add_image(std::vector<std::uint64_t> const& layer_sizes, std::uint64_t seed,
                  MediaTypes media_types = MediaTypes::oci, Platform const& platform = {});

  /// Lists `manifest` (an image manifest, index or artifact) in index.json under
  /// org.opencontainers.image.ref.name=`tag`, replacing an earlier entry with that tag.
  /// skopeo 1.9 ignores entries with Docker media types; use export_dir() for those.
  void tag(Blob const& manifest, std::string const& tag);

  /// Writes `manifest` (an image manifest, artifact or index, with everything it references)
  /// as a skopeo `dir:` directory: `version`, `manifest.json` (the top manifest's bytes), one
  /// file per blob named by its hex digest, `<hex>.manifest.json` per child of an index. Blobs
  /// are hard links where possible. The way to hand skopeo Docker media types (see above).
  void export_dir(Blob const& manifest, std::filesystem::path const& dir) const;

  /// The path of a blob in this layout (it need not exist).
  std::filesystem::path blob_path(std::string_view digest) const;
  /// The whole content of a blob. Throws std::runtime_error when it is missing.
  std::string read_blob(std::string_view digest) const;

private:
  std::filesystem::path dir_;
};

/// "sha256:<hex>" of `bytes` (OpenSSL).
std::string sha256_digest(std::string_view bytes);

/// Runs /usr/bin/skopeo with `--insecure-policy` (a global flag, so it goes before the
/// subcommand) followed by `args`, e.g. {"copy", "oci:SRC:t", "dir:DST"}. Waits at most 60 s.
RunResult skopeo(std::vector<std::string> args);

}  // namespace berth::testing
