// Verifying a snapshot against its manifest, and rebuilding a primary volume from it.
#include <archive.h>
#include <archive_entry.h>
#include <pwd.h>
#include <unistd.h>

#include <array>
#include <future>
#include <map>

#include "berth/backup/snapshot.hpp"
#include "berth/core/log.hpp"
#include "berth/registry/digest.hpp"
#include "io.hpp"
#include "snapshot_layout.hpp"

namespace berth::backup {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct ArchiveReader {
  archive* handle = archive_read_new();
  explicit ArchiveReader(fs::path const& file) {
    archive_read_support_filter_all(handle);
    archive_read_support_format_all(handle);
    if (archive_read_open_filename(handle, file.c_str(), 1 << 20) != ARCHIVE_OK)
      throw Error("cannot open archive " + file.string() + ": " + error());
  }
  ~ArchiveReader() { archive_read_free(handle); }
  ArchiveReader(ArchiveReader const&) = delete;
  ArchiveReader& operator=(ArchiveReader const&) = delete;
  std::string error() const { return archive_error_string(handle) ? archive_error_string(handle) : "unknown error"; }
};

// Rehashes every regular file in the archive against the manifest's entries.
void verify_archive(fs::path const& file, json const& entries, std::vector<Mismatch>& mismatches) {
  std::string const label = file.filename().string();
  std::map<std::string, json> expected;
  for (auto const& entry : entries)
    if (entry.at("type") == "file") expected[entry.at("path")] = entry;
  try {
    ArchiveReader reader(file);
    archive_entry* entry = nullptr;
    std::array<char, 1 << 16> buffer{};
    int rc = ARCHIVE_OK;
    while ((rc = archive_read_next_header(reader.handle, &entry)) == ARCHIVE_OK) {
      if (archive_entry_filetype(entry) != AE_IFREG) continue;
      std::string const name = archive_entry_pathname(entry);
      registry::Hasher hasher;
      std::uint64_t size = 0;
      la_ssize_t n = 0;
      while ((n = archive_read_data(reader.handle, buffer.data(), buffer.size())) > 0) {
        hasher.update({buffer.data(), static_cast<std::size_t>(n)});
        size += static_cast<std::uint64_t>(n);
      }
      if (n < 0) {
        mismatches.push_back({label + ":" + name, "cannot be read: " + reader.error()});
        return;
      }
      auto const found = expected.find(name);
      if (found == expected.end()) {
        mismatches.push_back({label + ":" + name, "is not in the manifest"});
        continue;
      }
      auto const hex = hasher.finish().hex();
      // Typed on our side: g++ 13+ with nlohmann 3.11 finds string != json ambiguous (C++20's
      // rewritten comparison candidates).
      if (hex != found->second.at("sha256").get<std::string>() || size != found->second.at("size").get<std::uint64_t>())
        mismatches.push_back({label + ":" + name, "sha256 is " + hex + " (expected " +
                                                      found->second.at("sha256").get<std::string>() + ")"});
      expected.erase(found);
    }
    if (rc != ARCHIVE_EOF) mismatches.push_back({label, "cannot be read: " + reader.error()});
  } catch (Error const& e) {
    mismatches.push_back({label, e.what()});
  }
  for (auto const& [name, entry] : expected) mismatches.push_back({label + ":" + name, "missing"});
}

void check_file(fs::path const& file, std::string const& label, std::uint64_t size, std::string const& hex, bool sha512,
                std::vector<Mismatch>& mismatches) {
  if (!fs::exists(file)) {
    mismatches.push_back({label, "missing"});
    return;
  }
  try {
    auto const actual = detail::hash_file(file, sha512);
    if (actual.hex != hex)
      mismatches.push_back({label, (sha512 ? "sha512 is " : "sha256 is ") + actual.hex + " (expected " + hex + ")"});
    else if (actual.size != size)
      mismatches.push_back(
          {label, "size is " + std::to_string(actual.size) + " (expected " + std::to_string(size) + ")"});
  } catch (Error const& e) {
    mismatches.push_back({label, e.what()});
  }
}

void extract(fs::path const& file, fs::path const& target) {
  ArchiveReader reader(file);
  archive* disk = archive_write_disk_new();
  archive_write_disk_set_options(disk, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                           ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_UNLINK);
  auto const fail = [&](std::string const& what) {
    std::string const message = "cannot extract " + file.string() + " into " + target.string() + ": " + what;
    archive_write_free(disk);
    throw Error(message);
  };
  archive_entry* entry = nullptr;
  int rc = ARCHIVE_OK;
  std::array<char, 1 << 16> buffer{};
  while ((rc = archive_read_next_header(reader.handle, &entry)) == ARCHIVE_OK) {
    auto const destination = (target / archive_entry_pathname(entry)).string();
    archive_entry_set_pathname(entry, destination.c_str());
    if (archive_write_header(disk, entry) != ARCHIVE_OK) fail(archive_error_string(disk));
    la_ssize_t n = 0;
    while ((n = archive_read_data(reader.handle, buffer.data(), buffer.size())) > 0)
      if (archive_write_data(disk, buffer.data(), static_cast<std::size_t>(n)) < 0) fail(archive_error_string(disk));
    if (n < 0) fail(reader.error());
    if (archive_write_finish_entry(disk) != ARCHIVE_OK) fail(archive_error_string(disk));
  }
  if (rc != ARCHIVE_EOF) fail(reader.error());
  if (archive_write_close(disk) != ARCHIVE_OK) fail(archive_error_string(disk));
  archive_write_free(disk);
}

// PostgreSQL refuses a data directory it does not own or that others can read.
void hand_data_dir_over(fs::path const& data_dir, std::string const& os_user) {
  fs::permissions(data_dir, fs::perms::owner_all);
  if (::geteuid() != 0) return;
  auto const name = os_user.empty() ? std::string("postgres") : os_user;
  struct passwd const* user = ::getpwnam(name.c_str());
  if (user == nullptr)
    throw Error("cannot give " + data_dir.string() + " to OS user " + name + ": no such user" +
                "\nHINT: set postgres.os_user to the user the server runs as");
  auto const give = [&](fs::path const& path) {
    if (::lchown(path.c_str(), user->pw_uid, user->pw_gid) != 0)
      throw Error(detail::errno_message("cannot chown " + path.string()));
  };
  give(data_dir);
  for (auto const& entry : fs::recursive_directory_iterator(data_dir)) give(entry.path());
}

}  // namespace

std::vector<Mismatch> verify_snapshot(Config const& config, std::string const& id) {
  auto const manifest = detail::read_manifest(config, id);
  auto const folder = config.volume / "snapshots" / id;
  // Every file and blob is hashed on its own, on copy_threads threads; each keeps its own
  // mismatches so that the report comes out in the manifest's order.
  struct Check {
    fs::path file;
    std::string label, hex;
    std::uint64_t size = 0;
    bool sha512 = false;
    std::vector<Mismatch> found;
  };
  std::vector<Check> checks;
  for (auto const& file : manifest.at("files")) {
    std::string const name = file.at("path");
    checks.push_back({folder / name, "snapshots/" + id + "/" + name, file.at("sha256"), file.at("size"), false, {}});
  }
  for (auto const& blob : manifest.at("blobs")) {
    std::string const digest = blob.at("digest");
    auto const pooled = detail::pool_path(config.volume, digest);
    checks.push_back({pooled,
                      pooled.lexically_relative(config.volume).generic_string(),
                      digest.substr(digest.find(':') + 1),
                      blob.at("size"),
                      digest.rfind("sha512:", 0) == 0,
                      {}});
  }
  detail::run_in_parallel(checks.size(), [&](std::size_t index) {
    auto& check = checks[index];
    check_file(check.file, check.label, check.size, check.hex, check.sha512, check.found);
  });
  std::vector<Mismatch> mismatches;
  std::size_t const file_count = manifest.at("files").size();
  for (std::size_t index = 0; index < file_count; ++index)
    mismatches.insert(mismatches.end(), checks[index].found.begin(), checks[index].found.end());
  if (fs::exists(folder / "files.tar.zst"))
    verify_archive(folder / "files.tar.zst", manifest.at("entries"), mismatches);
  for (std::size_t index = file_count; index < checks.size(); ++index)
    mismatches.insert(mismatches.end(), checks[index].found.begin(), checks[index].found.end());
  return mismatches;
}

void restore_snapshot(Config const& config, std::string const& id, fs::path const& target, bool force,
                      std::string const& postgres_os_user) {
  auto const log = logger("backup");
  auto const manifest = detail::read_manifest(config, id);
  auto const folder = config.volume / "snapshots" / id;
  std::error_code ec;
  if (fs::exists(target) && !fs::is_empty(target, ec) && !force)
    throw Error("cannot restore into " + target.string() + ": it is not empty" +
                "\nHINT: choose an empty folder, or give --force to write over what it holds");

  // Check what restore reads before writing anything.
  std::vector<Mismatch> mismatches;
  for (auto const& file : manifest.at("files")) {
    std::string const name = file.at("path");
    check_file(folder / name, "snapshots/" + id + "/" + name, file.at("size"), file.at("sha256"), false, mismatches);
  }
  if (!mismatches.empty())
    throw Error("cannot restore snapshot " + id + ": " + mismatches.front().what + " " + mismatches.front().problem +
                "\nHINT: run `berth backup verify " + id + "`, and restore another snapshot");

  fs::create_directories(target);
  if (fs::exists(folder / "files.tar.zst")) extract(folder / "files.tar.zst", target);
  // The cluster is unpacked while the blobs are copied: decompression and copying each keep a core busy.
  std::future<void> database_restore;
  if (manifest.contains("postgres")) {
    database_restore = std::async(std::launch::async, [&] {
      auto const data_dir = target / "postgres";
      fs::remove_all(data_dir);
      fs::create_directories(data_dir);
      extract(folder / manifest.at("postgres").at("file").get<std::string>(), data_dir);
      hand_data_dir_over(data_dir, postgres_os_user);
    });
  }
  auto const& blobs = manifest.at("blobs");
  detail::run_in_parallel(blobs.size(), [&](std::size_t index) {
    std::string const digest = blobs[index].at("digest");
    auto const colon = digest.find(':');
    auto const hex = digest.substr(colon + 1);
    auto const destination = target / "registry" / "blobs" / digest.substr(0, colon) / hex.substr(0, 2) / hex;
    fs::create_directories(destination.parent_path());
    auto const copied = detail::copy_hashing(detail::pool_path(config.volume, digest), destination,
                                             digest.rfind("sha512:", 0) == 0, false);
    if (!copied || copied->hex != hex)
      throw Error("blob " + digest + " in the pool of " + config.volume.string() +
                  (copied ? " does not match its digest" : " is missing") +
                  "\nHINT: run `berth backup verify --all`; restore a snapshot whose blobs verify");
  });
  if (database_restore.valid()) database_restore.get();
  log->info("snapshot restored id={} target={} blobs={}", id, target.string(), manifest.at("blobs").size());
}

}  // namespace berth::backup
