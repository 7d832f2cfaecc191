// The registry's storage on the primary volume: content-addressed blobs, per-repository links
// that decide what each repository may see, tags, upload sessions and the referrers index.
// Every change becomes visible by one atomic rename of a fsync'ed file, so a crash at any
// instant leaves either the old state or the new one. Knows nothing of HTTP.
//
// Layout under Config::root:
//   blobs/<alg>/<hex[0:2]>/<hex>                         content, immutable
//   uploads/<id>/{data,repository}                       upload sessions (survive restarts)
//   repositories/<name>/_layers/<alg>/<hex>              blob linked into the repository
//   repositories/<name>/_manifests/revisions/<alg>/<hex> manifest in the repository (holds its media type)
//   repositories/<name>/_manifests/tags/<tag>            tag (holds the manifest digest)
//   repositories/<name>/_referrers/<alg>/<subject hex>/<alg>-<hex>  referrer descriptor (JSON)
//   tmp/                                                 staging for small files
//   gc-trash/, gc.lock, gc.json                          garbage collection (gc.hpp)
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "berth/core/error.hpp"
#include "berth/registry/config.hpp"
#include "berth/registry/digest.hpp"
#include "berth/registry/manifest.hpp"

namespace berth::registry {

/// The upload's offset is not where the client says it continues (HTTP 416).
class UploadRangeError : public Error {
public:
  UploadRangeError(std::string const& message, std::uint64_t size) : Error(message), size_(size) {}
  std::uint64_t size() const { return size_; }  ///< bytes the upload holds

private:
  std::uint64_t size_;
};

/// The client's digest does not match the content (DIGEST_INVALID).
class DigestMismatch : public Error {
public:
  using Error::Error;
};

/// The primary volume is full (or a file size limit was hit): the write failed, the upload can
/// be resumed once space is freed.
class StorageFull : public Error {
public:
  using Error::Error;
};

/// The upload session is being written by another request (BLOB_UPLOAD_INVALID).
class UploadBusy : public Error {
public:
  using Error::Error;
};

/// A blob or manifest that a manifest refers to vanished while the manifest was being stored
/// (a concurrent garbage collection took it): the manifest is not stored (MANIFEST_BLOB_UNKNOWN).
class ReferenceGone : public Error {
public:
  using Error::Error;
};

/// Linking the blob would take the repository's namespace over its quota (DENIED).
class QuotaExceeded : public Error {
public:
  using Error::Error;
};

struct BlobInfo {
  std::filesystem::path path;
  std::uint64_t size = 0;
};

struct StoredManifest {
  Digest digest;
  std::string media_type;
  std::string bytes;
};

class Storage;
class QuotaLedger;

/// Appends to one upload session; holds it exclusively until destroyed or committed. Not
/// thread-safe; may move between threads.
class UploadWriter {
public:
  ~UploadWriter();
  UploadWriter(UploadWriter const&) = delete;
  UploadWriter& operator=(UploadWriter const&) = delete;

  /// Appends bytes. Throws berth::Error on I/O failure (e.g. disk full); the session then
  /// still holds exactly the bytes before this call.
  void write(std::span<char const> bytes);
  /// Free space in the session's write buffer: bytes received there and then given to write()
  /// are not copied again. Valid until the next write() or flush(); may be empty.
  std::span<char> receive_buffer();
  /// Makes sure the session's file holds every byte written so far (write() may keep up to a
  /// block buffered). Throws like write(); the session then holds a prefix of them.
  void flush();
  std::uint64_t size() const;
  /// Verifies the content against `expected`, moves it into the blob store (fsync'ed) and links
  /// it into the session's repository; the session ends. Throws DigestMismatch or QuotaExceeded
  /// (the session stays, its content unchanged) or berth::Error.
  BlobInfo commit(Digest const& expected);

private:
  friend class Storage;
  struct Session;
  UploadWriter(Storage& storage, std::shared_ptr<Session> session);
  Storage& storage_;
  std::shared_ptr<Session> session_;
};

class Storage {
public:
  /// Creates the layout under config.root if missing. Throws berth::Error when the root is
  /// unusable. Any number of Storage objects may read one root, in any process.
  explicit Storage(Config config);
  ~Storage();

  /// Clears staging files left by a crash and removes uploads older than config.upload_expiry.
  /// Only the process that serves the volume (holding its lock) may call this, before serving.
  void recover();
  Config const& config() const { return config_; }

  // --- blobs ---
  /// The blob if it is linked into `repository`.
  std::optional<BlobInfo> find_blob(std::string const& repository, Digest const& digest) const;
  /// Links an existing blob into `repository` (cross-repository mount). False if the blob is
  /// not in the store. Throws QuotaExceeded.
  bool link_blob(std::string const& repository, Digest const& digest);
  /// Removes the blob's link from `repository`; false if it was not linked. The content stays
  /// until garbage collection.
  bool unlink_blob(std::string const& repository, Digest const& digest);

  // --- uploads ---
  /// Starts an upload session for `repository`; returns its id (32 hex characters). Throws
  /// QuotaExceeded when the repository's namespace is already at its quota.
  std::string start_upload(std::string const& repository);
  /// Bytes received so far by the session, or nullopt if no such session for `repository`.
  std::optional<std::uint64_t> upload_size(std::string const& repository, std::string const& id);
  /// Opens the session for appending. `offset`: where the client says this chunk starts
  /// (Content-Range); a mismatch throws UploadRangeError. nullptr if no such session. Throws
  /// UploadBusy when another request holds it.
  std::unique_ptr<UploadWriter> open_upload(std::string const& repository, std::string const& id,
                                            std::optional<std::uint64_t> offset = std::nullopt);
  /// Cancels and removes the session; false if there was none.
  bool cancel_upload(std::string const& repository, std::string const& id);

  // --- manifests and tags ---
  /// Stores `bytes` (already validated as `manifest`) in `repository`, tagging it when `tag` is
  /// given, and indexes it under its subject. Returns its digest, computed with `algorithm`.
  /// Stamps the links and manifests it refers to, so a concurrent garbage collection keeps them;
  /// throws ReferenceGone when one has vanished meanwhile (nothing is stored).
  Digest put_manifest(std::string const& repository, std::string const& bytes, Manifest const& manifest,
                      std::optional<std::string> const& tag, DigestAlgorithm algorithm = DigestAlgorithm::sha256);
  bool has_manifest(std::string const& repository, Digest const& digest) const;
  std::optional<Digest> resolve_tag(std::string const& repository, std::string const& tag) const;
  /// When `tag` was last pushed (or moved): the time of its link. nullopt when there is no such tag.
  std::optional<std::chrono::system_clock::time_point> tag_pushed(std::string const& repository,
                                                                  std::string const& tag) const;
  std::optional<StoredManifest> get_manifest(std::string const& repository, Digest const& digest) const;
  /// Removes the manifest from `repository` with every tag that points to it and its referrer
  /// entry; false if it was not there.
  bool delete_manifest(std::string const& repository, Digest const& digest);
  bool delete_tag(std::string const& repository, std::string const& tag);
  /// Tags of the repository, sorted; nullopt if the repository does not exist.
  std::optional<std::vector<std::string>> tags(std::string const& repository) const;
  /// Every repository holding anything, sorted.
  std::vector<std::string> repositories() const;
  bool repository_exists(std::string const& repository) const;
  /// Descriptors (JSON objects) of the manifests in `repository` whose subject is `subject`.
  std::vector<std::string> referrers(std::string const& repository, Digest const& subject) const;

  /// Where the blob with `digest` lives in the store (whether or not it exists).
  std::filesystem::path blob_path(Digest const& digest) const;
  /// The file that links the blob into `repository` (whether or not it exists).
  std::filesystem::path blob_link_path(std::string const& repository, Digest const& digest) const;
  /// The file that puts the manifest into `repository` (whether or not it exists).
  std::filesystem::path manifest_revision_path(std::string const& repository, Digest const& digest) const;
  /// Where garbage collection moves `path` (a file under the root) while it decides whether it
  /// goes (gc.hpp). Readers look there too, so nothing in use is ever unreadable meanwhile.
  std::filesystem::path gc_trash_path(std::filesystem::path const& path) const;

  /// Replaces the (missing or damaged) blob with `digest` by a copy of `good_copy`, copied to
  /// staging, verified to hash to `digest`, fsync'ed and renamed into place. False when the copy
  /// does not hash right (nothing changed). Throws Error on I/O failure.
  bool restore_blob(Digest const& digest, std::filesystem::path const& good_copy);

  // --- inventory, for ls and fsck ---
  /// Every blob file in the store (manifests included), by digest. Skips stray files.
  std::vector<Digest> stored_blobs() const;
  /// Blobs linked into `repository`.
  std::vector<Digest> linked_blobs(std::string const& repository) const;
  /// Manifests in `repository`.
  std::vector<Digest> manifests(std::string const& repository) const;
  /// Referrer entries of `repository`: (subject, referrer) pairs.
  std::vector<std::pair<Digest, Digest>> referrer_entries(std::string const& repository) const;

private:
  friend class UploadWriter;
  std::filesystem::path repository_dir(std::string const& repository) const;
  std::filesystem::path upload_dir(std::string const& id) const;
  void write_small_file(std::filesystem::path const& target, std::string const& content) const;
  void release(std::string const& id);
  // `path`, or its twin in gc-trash/ while a collection decides about it.
  std::optional<std::filesystem::path> locate(std::filesystem::path const& path) const;
  std::optional<std::string> read_located(std::filesystem::path const& path) const;
  // Stamps `path` as in use now, taking it back from gc-trash/ if a collection moved it there;
  // false when it is gone for good.
  bool pin(std::filesystem::path const& path) const;
  void forget_if_expired(std::string const& id);
  BlobInfo commit_upload(UploadWriter::Session& session, Digest const& expected);

  Config config_;
  std::unique_ptr<QuotaLedger> quotas_;  // null when no quota is configured
  std::mutex sessions_mutex_;
  std::unordered_map<std::string, std::shared_ptr<UploadWriter::Session>> sessions_;
};

}  // namespace berth::registry
