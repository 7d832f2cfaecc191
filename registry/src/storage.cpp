// Storage on the primary volume; the layout is described in storage.hpp. Names, tags, digests
// and upload ids reaching this file have been validated, so none can escape the root.
#include "berth/registry/storage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "berth/core/log.hpp"
#include "berth/core/random.hpp"
#include "file_io.hpp"
#include "quota.hpp"
#include "staging_file.hpp"

namespace berth::registry {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t hash_buffer_bytes = 256 * 1024;

bool is_upload_id(std::string const& id) {
  return id.size() == 32 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Feeds a whole file to `hasher`; returns its length. Rebuilds an upload's running hash after a
// restart (the EVP state cannot be saved) and hashes sha512 digests (only sha256 is streamed).
std::uint64_t feed_file(fs::path const& path, Hasher& hasher) {
  File file(path, O_RDONLY);
  std::vector<char> buffer(hash_buffer_bytes);
  std::uint64_t offset = 0;
  while (auto got = file.read_at(buffer, offset)) {
    hasher.update({buffer.data(), got});
    offset += got;
  }
  return offset;
}

Digest hash_file(fs::path const& path, DigestAlgorithm algorithm) {
  Hasher hasher(algorithm);
  feed_file(path, hasher);
  return hasher.finish();
}

// Sets the file's times to now: the stamp that tells a concurrent garbage collection "in use".
// False when the file does not exist (any more).
bool stamp(fs::path const& path) {
  return ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) == 0;
}

void remove_quietly(fs::path const& path) {
  std::error_code ignored;
  fs::remove_all(path, ignored);
}

// Entries of a directory, sorted; empty if it does not exist.
std::vector<std::string> list_names(fs::path const& directory) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

struct UploadWriter::Session {
  std::string id;
  std::string repository;
  fs::path dir;
  std::uint64_t size = 0;
  std::optional<Hasher> hasher;       // sha256 of the bytes so far; empty when it must be rebuilt
  bool in_use = false;                // guarded by Storage::sessions_mutex_
  std::unique_ptr<StagingFile> data;  // open while a writer holds the session
};

// --- UploadWriter ---

UploadWriter::UploadWriter(Storage& storage, std::shared_ptr<Session> session)
    : storage_(storage), session_(std::move(session)) {}

UploadWriter::~UploadWriter() {
  if (!session_) return;
  if (session_->data) {
    // Leave every accepted byte in the file, so the upload's reported size is what it holds.
    try {
      session_->data->flush();
    } catch (std::exception const& error) {
      logger("registry")->warn("upload not flushed id={} error=\"{}\"", session_->id, error.what());
      session_->hasher.reset();  // rebuilt from the file on next use
    }
    session_->data.reset();
  }
  storage_.release(session_->id);
}

void UploadWriter::write(std::span<char const> bytes) {
  auto& session = *session_;
  // Hashed first: bytes received into the write buffer are not to be trusted there once
  // append() may have written them out.
  session.hasher->update(bytes);
  try {
    session.data->append(bytes);
  } catch (...) {
    // The file now holds an unknown prefix of this chunk: the running hash and size are rebuilt
    // from the file when the client resumes (it asks where to continue).
    session.hasher.reset();
    session.data.reset();
    throw;
  }
  session.size += bytes.size();
}

std::span<char> UploadWriter::receive_buffer() {
  return session_ && session_->data ? session_->data->free_space() : std::span<char>{};
}

void UploadWriter::flush() {
  auto& session = *session_;
  try {
    session.data->flush();
  } catch (...) {
    session.hasher.reset();  // the file holds an unknown prefix: rebuilt when the client resumes
    session.data.reset();
    throw;
  }
}

std::uint64_t UploadWriter::size() const {
  return session_->size;
}

BlobInfo UploadWriter::commit(Digest const& expected) {
  auto info = storage_.commit_upload(*session_, expected);
  session_.reset();  // the session is gone; nothing to release
  return info;
}

// --- Storage ---

Storage::Storage(Config config) : config_(std::move(config)) {
  if (!config_.quotas.empty()) quotas_ = std::make_unique<QuotaLedger>(*this, config_.quotas);
  for (auto const* sub : {"blobs", "uploads", "repositories", "tmp"}) {
    std::error_code ec;
    fs::create_directories(config_.root / sub, ec);
    if (ec)
      throw Error("cannot create registry directory " + (config_.root / sub).string() + ": " + ec.message() +
                  "\nHINT: check volumes.primary points at a writable directory");
  }
}

void Storage::recover() {
  // Staging files of a crashed process are garbage: nothing refers to them.
  for (auto const& name : list_names(config_.root / "tmp")) remove_quietly(config_.root / "tmp" / name);

  // Uploads are resumable across restarts, but not forever.
  auto log = logger("registry");
  auto now = fs::file_time_type::clock::now();
  for (auto const& id : list_names(config_.root / "uploads")) {
    auto dir = config_.root / "uploads" / id;
    std::error_code ec;
    auto modified = fs::last_write_time(dir / "data", ec);
    if (!is_upload_id(id) || ec || now - modified > config_.upload_expiry) {
      log->info("removing expired upload id={}", id);
      remove_quietly(dir);
    }
  }
}

Storage::~Storage() = default;

fs::path Storage::blob_path(Digest const& digest) const {
  return config_.root / "blobs" / std::string(digest.algorithm_name()) / digest.hex().substr(0, 2) / digest.hex();
}

fs::path Storage::blob_link_path(std::string const& repository, Digest const& digest) const {
  return repository_dir(repository) / "_layers" / std::string(digest.algorithm_name()) / digest.hex();
}

fs::path Storage::manifest_revision_path(std::string const& repository, Digest const& digest) const {
  return repository_dir(repository) / "_manifests" / "revisions" / std::string(digest.algorithm_name()) / digest.hex();
}

fs::path Storage::repository_dir(std::string const& repository) const {
  return config_.root / "repositories" / repository;
}

fs::path Storage::upload_dir(std::string const& id) const {
  return config_.root / "uploads" / id;
}

void Storage::write_small_file(fs::path const& target, std::string const& content) const {
  static std::atomic<std::uint64_t> counter{0};
  auto staging = config_.root / "tmp" / (std::to_string(::getpid()) + "-" + std::to_string(counter++));
  write_file_atomically(target, content, staging);
}

fs::path Storage::gc_trash_path(fs::path const& path) const {
  auto relative = path.lexically_relative(config_.root).string();
  std::replace(relative.begin(), relative.end(), '/', '+');
  return config_.root / "gc-trash" / relative;
}

std::optional<fs::path> Storage::locate(fs::path const& path) const {
  // The second look at `path` covers a collection putting it back while we looked at the twin.
  for (auto const& candidate : {path, gc_trash_path(path), path})
    if (std::error_code ec; fs::exists(candidate, ec)) return candidate;
  return std::nullopt;
}

std::optional<std::string> Storage::read_located(fs::path const& path) const {
  for (auto const& candidate : {path, gc_trash_path(path), path})
    if (auto content = read_small_file(candidate)) return content;
  return std::nullopt;
}

bool Storage::pin(fs::path const& path) const {
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (stamp(path)) return true;
    // Moved aside by a collection: a second name keeps the file whatever the collection decides.
    if (::link(gc_trash_path(path).c_str(), path.c_str()) != 0 && errno != EEXIST) return false;
  }
  return false;
}

std::optional<BlobInfo> Storage::find_blob(std::string const& repository, Digest const& digest) const {
  if (!locate(blob_link_path(repository, digest))) return std::nullopt;
  // One stat where the blob is (the common case), as locate() looks: here, aside, here again.
  auto path = blob_path(digest);
  for (auto const& candidate : {path, gc_trash_path(path), path}) {
    std::error_code ec;
    auto size = fs::file_size(candidate, ec);
    if (!ec) return BlobInfo{candidate, size};
  }
  return std::nullopt;
}

bool Storage::link_blob(std::string const& repository, Digest const& digest) {
  std::error_code ec;
  auto size = fs::file_size(blob_path(digest), ec);
  if (ec) return false;
  if (quotas_) quotas_->reserve(repository, digest, size);
  auto link = blob_link_path(repository, digest);
  write_small_file(link, "");
  // A garbage collection may have taken the blob for good between the check and the link: then
  // there is nothing to mount, and the client uploads it instead.
  if (!pin(blob_path(digest))) {
    remove_quietly(link);
    return false;
  }
  return true;
}

bool Storage::unlink_blob(std::string const& repository, Digest const& digest) {
  auto link = blob_link_path(repository, digest);
  std::error_code ec;
  if (!fs::remove(link, ec)) return false;
  sync_directory(link.parent_path());
  if (quotas_) quotas_->forget(repository);
  return true;
}

std::string Storage::start_upload(std::string const& repository) {
  if (quotas_) quotas_->check_not_full(repository);
  auto id = random_hex(16);
  auto dir = upload_dir(id);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create upload directory " + dir.string() + ": " + ec.message());
  // The repository file is written last: a session without it is unusable and expires.
  File(dir / "data", O_WRONLY | O_CREAT | O_EXCL).sync();
  write_small_file(dir / "repository", repository);
  auto session = std::make_shared<UploadWriter::Session>();
  session->id = id;
  session->repository = repository;
  session->dir = dir;
  session->hasher.emplace();
  std::lock_guard lock(sessions_mutex_);
  sessions_.emplace(id, std::move(session));
  return id;
}

std::optional<std::uint64_t> Storage::upload_size(std::string const& repository, std::string const& id) {
  if (!is_upload_id(id)) return std::nullopt;
  forget_if_expired(id);
  {
    std::lock_guard lock(sessions_mutex_);
    if (auto found = sessions_.find(id); found != sessions_.end()) {
      if (found->second->repository != repository) return std::nullopt;
      // After a failed write only the file knows how much was kept.
      if (found->second->hasher) return found->second->size;
    }
  }
  if (read_small_file(upload_dir(id) / "repository") != repository) return std::nullopt;
  std::error_code ec;
  auto size = fs::file_size(upload_dir(id) / "data", ec);
  return ec ? std::nullopt : std::optional(size);
}

std::unique_ptr<UploadWriter> Storage::open_upload(std::string const& repository, std::string const& id,
                                                   std::optional<std::uint64_t> offset) {
  if (!is_upload_id(id)) return nullptr;
  forget_if_expired(id);
  std::shared_ptr<UploadWriter::Session> session;
  {
    std::lock_guard lock(sessions_mutex_);
    auto found = sessions_.find(id);
    if (found == sessions_.end()) {
      // Not in memory: a session from before a restart, if its files say so.
      if (read_small_file(upload_dir(id) / "repository") != repository) return nullptr;
      auto restored = std::make_shared<UploadWriter::Session>();
      restored->id = id;
      restored->repository = repository;
      restored->dir = upload_dir(id);
      found = sessions_.emplace(id, std::move(restored)).first;
    }
    session = found->second;
    if (session->repository != repository) return nullptr;
    if (session->in_use) throw UploadBusy("upload " + id + " is being written by another request");
    session->in_use = true;
  }
  std::unique_ptr<UploadWriter> writer(new UploadWriter(*this, session));
  if (!session->hasher) {
    Hasher hasher;
    session->size = feed_file(session->dir / "data", hasher);
    session->hasher.emplace(std::move(hasher));
  }
  if (offset && *offset != session->size)
    throw UploadRangeError("upload " + id + " holds " + std::to_string(session->size) + " bytes; a chunk starting at " +
                               std::to_string(*offset) + " does not follow on",
                           session->size);
  session->data = std::make_unique<StagingFile>(session->dir / "data", session->size);
  return writer;
}

void Storage::forget_if_expired(std::string const& id) {
  std::error_code ec;
  if (fs::exists(upload_dir(id) / "data", ec)) return;
  // Expired and removed by garbage collection (possibly in another process).
  std::lock_guard lock(sessions_mutex_);
  if (auto found = sessions_.find(id); found != sessions_.end() && !found->second->in_use) sessions_.erase(found);
}

void Storage::release(std::string const& id) {
  std::lock_guard lock(sessions_mutex_);
  if (auto found = sessions_.find(id); found != sessions_.end()) found->second->in_use = false;
}

BlobInfo Storage::commit_upload(UploadWriter::Session& session, Digest const& expected) {
  auto data_path = session.dir / "data";
  session.data->flush();
  Digest actual = expected.algorithm() == DigestAlgorithm::sha256
                      ? std::exchange(session.hasher, std::nullopt)->finish()
                      : hash_file(data_path, expected.algorithm());
  if (actual != expected) {
    // The running hash is consumed; the next writer rebuilds it from the file.
    session.data.reset();
    release(session.id);
    throw DigestMismatch("digest mismatch: the client said " + expected.to_string() + ", the " +
                         std::to_string(session.size) + " bytes received hash to " + actual.to_string());
  }
  if (quotas_) {
    try {
      quotas_->reserve(session.repository, expected, session.size);
    } catch (QuotaExceeded const&) {
      session.data.reset();
      release(session.id);
      throw;
    }
  }
  session.data->sync();
  session.data.reset();

  auto target = blob_path(expected);
  auto store = [&] {
    if (::rename(data_path.c_str(), target.c_str()) != 0)
      throw Error("cannot move upload into the blob store " + target.string() + ": " + std::strerror(errno));
    sync_directory(target.parent_path());
  };
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) throw Error("cannot create blob directory " + target.parent_path().string() + ": " + ec.message());
  // Same content already stored (a concurrent or earlier push): keep the existing file...
  bool stored_before = pin(target);
  if (!stored_before) store();
  write_small_file(blob_link_path(session.repository, expected), "");
  // ...unless a garbage collection took it for good between the check and the (fresh) link.
  if (stored_before && !pin(target)) store();
  remove_quietly(session.dir);
  {
    std::lock_guard lock(sessions_mutex_);
    sessions_.erase(session.id);
  }
  return BlobInfo{target, session.size};
}

bool Storage::cancel_upload(std::string const& repository, std::string const& id) {
  if (!upload_size(repository, id)) return false;
  {
    std::lock_guard lock(sessions_mutex_);
    if (auto found = sessions_.find(id); found != sessions_.end()) {
      if (found->second->in_use) throw UploadBusy("upload " + id + " is being written by another request");
      sessions_.erase(found);
    }
  }
  remove_quietly(upload_dir(id));
  return true;
}

Digest Storage::put_manifest(std::string const& repository, std::string const& bytes, Manifest const& manifest,
                             std::optional<std::string> const& tag, DigestAlgorithm algorithm) {
  auto digest = digest_of(bytes, algorithm);
  auto alg = std::string(digest.algorithm_name());
  // Pin what the manifest refers to: a garbage collection running now keeps what is stamped (or
  // taken back), and what it has removed for good is missing here, so the push is refused, not
  // stored broken.
  for (auto const& blob : manifest.required_blobs())
    if (!pin(blob_link_path(repository, blob)) || !pin(blob_path(blob)))
      throw ReferenceGone("blob " + blob.to_string() + " left repository " + repository +
                          " while the manifest was being stored; push it again");
  for (auto const& child : manifest.manifests)
    if (!pin(manifest_revision_path(repository, child.digest)) || !pin(blob_path(child.digest)))
      throw ReferenceGone("manifest " + child.digest.to_string() + " left repository " + repository +
                          " while the index was being stored; push it again");
  // Content first, then the repository's link to it, then its index entries and the tag: each
  // step only ever points at something already complete.
  bool stored_before = pin(blob_path(digest));
  if (!stored_before) write_small_file(blob_path(digest), bytes);
  auto manifests = repository_dir(repository) / "_manifests";
  write_small_file(manifest_revision_path(repository, digest), manifest.media_type);
  // The fresh revision protects the content from now on; a collection may have removed it just before.
  if (stored_before && !pin(blob_path(digest))) write_small_file(blob_path(digest), bytes);
  if (manifest.subject) {
    auto const& subject = manifest.subject->digest;
    write_small_file(repository_dir(repository) / "_referrers" / std::string(subject.algorithm_name()) / subject.hex() /
                         (alg + "-" + digest.hex()),
                     referrer_descriptor_json(manifest, digest, bytes.size()));
  }
  if (tag) write_small_file(manifests / "tags" / *tag, digest.to_string());
  return digest;
}

bool Storage::has_manifest(std::string const& repository, Digest const& digest) const {
  return locate(manifest_revision_path(repository, digest)).has_value();
}

std::optional<Digest> Storage::resolve_tag(std::string const& repository, std::string const& tag) const {
  auto text = read_small_file(repository_dir(repository) / "_manifests" / "tags" / tag);
  return text ? Digest::parse(*text) : std::nullopt;
}

std::optional<std::chrono::system_clock::time_point> Storage::tag_pushed(std::string const& repository,
                                                                        std::string const& tag) const {
  std::error_code ec;
  auto const time = fs::last_write_time(repository_dir(repository) / "_manifests" / "tags" / tag, ec);
  if (ec) return std::nullopt;
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(std::chrono::file_clock::to_sys(time));
}

std::optional<StoredManifest> Storage::get_manifest(std::string const& repository, Digest const& digest) const {
  auto media_type = read_located(manifest_revision_path(repository, digest));
  if (!media_type) return std::nullopt;
  auto bytes = read_located(blob_path(digest));
  if (!bytes) return std::nullopt;
  return StoredManifest{digest, std::move(*media_type), std::move(*bytes)};
}

bool Storage::delete_manifest(std::string const& repository, Digest const& digest) {
  auto stored = get_manifest(repository, digest);
  if (!stored) return false;
  auto manifests = repository_dir(repository) / "_manifests";
  // Tags first: a tag must never point at a manifest the repository no longer has.
  for (auto const& tag : list_names(manifests / "tags"))
    if (resolve_tag(repository, tag) == digest) delete_tag(repository, tag);
  try {
    auto manifest = parse_manifest(stored->bytes, stored->media_type);
    if (manifest.subject) {
      auto const& subject = manifest.subject->digest;
      remove_quietly(repository_dir(repository) / "_referrers" / std::string(subject.algorithm_name()) / subject.hex() /
                     (std::string(digest.algorithm_name()) + "-" + digest.hex()));
    }
  } catch (ManifestError const&) {
    // Stored manifests were valid when pushed; if one no longer parses there is no entry to remove.
  }
  auto revision = manifests / "revisions" / std::string(digest.algorithm_name()) / digest.hex();
  std::error_code ec;
  fs::remove(revision, ec);
  sync_directory(revision.parent_path());
  return true;
}

bool Storage::delete_tag(std::string const& repository, std::string const& tag) {
  auto path = repository_dir(repository) / "_manifests" / "tags" / tag;
  std::error_code ec;
  if (!fs::remove(path, ec)) return false;
  sync_directory(path.parent_path());
  return true;
}

bool Storage::repository_exists(std::string const& repository) const {
  std::error_code ec;
  auto dir = repository_dir(repository);
  return fs::is_directory(dir / "_layers", ec) || fs::is_directory(dir / "_manifests", ec);
}

std::optional<std::vector<std::string>> Storage::tags(std::string const& repository) const {
  if (!repository_exists(repository)) return std::nullopt;
  return list_names(repository_dir(repository) / "_manifests" / "tags");
}

std::vector<std::string> Storage::repositories() const {
  std::vector<std::string> found;
  auto base = config_.root / "repositories";
  std::error_code ec;
  for (fs::recursive_directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (!name.starts_with("_")) continue;  // repository names never start with '_'
    if (name == "_layers" || name == "_manifests") found.push_back(it->path().parent_path().lexically_relative(base));
    it.disable_recursion_pending();
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

std::vector<std::string> Storage::referrers(std::string const& repository, Digest const& subject) const {
  std::vector<std::string> descriptors;
  auto dir = repository_dir(repository) / "_referrers" / std::string(subject.algorithm_name()) / subject.hex();
  for (auto const& name : list_names(dir)) {
    if (auto descriptor = read_small_file(dir / name)) descriptors.push_back(std::move(*descriptor));
  }
  return descriptors;
}

bool Storage::restore_blob(Digest const& digest, fs::path const& good_copy) {
  static std::atomic<std::uint64_t> counter{0};
  auto staging = config_.root / "tmp" / (std::to_string(::getpid()) + "-restore-" + std::to_string(counter++));
  try {
    File source(good_copy, O_RDONLY);
    File copy(staging, O_WRONLY | O_CREAT | O_EXCL);
    Hasher hasher(digest.algorithm());
    std::vector<char> buffer(hash_buffer_bytes);
    std::uint64_t offset = 0;
    while (auto got = source.read_at(buffer, offset)) {
      hasher.update({buffer.data(), got});
      copy.write_all({buffer.data(), got});
      offset += got;
    }
    if (hasher.finish() != digest) {
      remove_quietly(staging);
      return false;
    }
    copy.sync();
    copy.close();
    auto target = blob_path(digest);
    fs::create_directories(target.parent_path());
    if (::rename(staging.c_str(), target.c_str()) != 0)
      throw Error("cannot move the restored blob into place " + target.string() + ": " + std::strerror(errno));
    sync_directory(target.parent_path());
    return true;
  } catch (...) {
    remove_quietly(staging);
    throw;
  }
}

namespace {

// Digests named by "<dir>/<alg>/<hex>" files.
std::vector<Digest> digests_under(fs::path const& dir) {
  std::vector<Digest> found;
  for (auto const& algorithm : list_names(dir))
    for (auto const& hex : list_names(dir / algorithm))
      if (auto digest = Digest::parse(algorithm + ":" + hex)) found.push_back(*digest);
  return found;
}

}  // namespace

std::vector<Digest> Storage::stored_blobs() const {
  std::vector<Digest> found;
  auto blobs = config_.root / "blobs";
  for (auto const& algorithm : list_names(blobs))
    for (auto const& prefix : list_names(blobs / algorithm))
      for (auto const& hex : list_names(blobs / algorithm / prefix))
        if (auto digest = Digest::parse(algorithm + ":" + hex); digest && hex.starts_with(prefix))
          found.push_back(*digest);
  return found;
}

std::vector<Digest> Storage::linked_blobs(std::string const& repository) const {
  return digests_under(repository_dir(repository) / "_layers");
}

std::vector<Digest> Storage::manifests(std::string const& repository) const {
  return digests_under(repository_dir(repository) / "_manifests" / "revisions");
}

std::vector<std::pair<Digest, Digest>> Storage::referrer_entries(std::string const& repository) const {
  std::vector<std::pair<Digest, Digest>> entries;
  auto dir = repository_dir(repository) / "_referrers";
  for (auto const& subject : digests_under(dir)) {
    for (auto const& name : list_names(dir / std::string(subject.algorithm_name()) / subject.hex())) {
      auto dash = name.find('-');
      if (dash == std::string::npos) continue;
      if (auto referrer = Digest::parse(name.substr(0, dash) + ":" + name.substr(dash + 1)))
        entries.emplace_back(subject, *referrer);
    }
  }
  return entries;
}

}  // namespace berth::registry
