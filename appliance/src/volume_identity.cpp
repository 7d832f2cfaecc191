#include "volume_identity.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "berth/core/error.hpp"
#include "berth/core/random.hpp"

namespace berth::appliance {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> read_id(fs::path const& file) {
  std::ifstream in(file);
  std::string id;
  if (!(in >> id) || id.empty()) return std::nullopt;
  return id;
}

// Written whole and synced under a temporary name, then renamed and the folder synced: after a
// crash or a power cut the file holds the old id or the new one, never nothing (an empty identity
// would make a volume a stranger to its own backup volume).
void write_id(fs::path const& file, std::string const& id) {
  auto const temp = file.string() + ".tmp-" + random_hex(4);
  auto const fail = [&](std::string const& what) {
    auto const error = std::string(std::strerror(errno));
    ::unlink(temp.c_str());
    return Error("cannot write " + file.string() + ": " + what + ": " + error +
                 "\nHINT: check the volume is mounted and writable by the user berth runs as");
  };
  int const fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw fail("create");
  auto const text = id + "\n";
  bool const written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  if (::close(fd) != 0 || !written) throw fail("write");
  if (::rename(temp.c_str(), file.c_str()) != 0) throw fail("rename");
  if (int const dir = ::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

}  // namespace

std::string primary_identity(fs::path const& primary) {
  auto const file = primary / "identity";
  if (auto id = read_id(file)) return *id;
  auto const id = random_hex(16);
  write_id(file, id);
  return id;
}

std::optional<std::string> existing_primary_identity(fs::path const& primary) {
  return read_id(primary / "identity");
}

bool backup_volume_is_foreign(fs::path const& primary, fs::path const& backup) {
  auto const id = existing_primary_identity(primary);
  auto const owner = backup_owner(backup);
  return id && owner && *id != *owner;
}

void renew_primary_identity(fs::path const& primary) {
  write_id(primary / "identity", random_hex(16));
}

std::optional<std::string> backup_owner(fs::path const& backup) {
  return read_id(backup / "owner");
}

bool owns_backup_volume(fs::path const& primary, fs::path const& backup) {
  auto const id = primary_identity(primary);
  if (auto const owner = backup_owner(backup)) return *owner == id;
  std::error_code ec;
  fs::create_directories(backup, ec);
  write_id(backup / "owner", id);
  return true;
}

void adopt_backup_volume(fs::path const& primary, fs::path const& backup) {
  write_id(backup / "owner", primary_identity(primary));
}

std::string foreign_backup_volume_problem(fs::path const& primary, fs::path const& backup) {
  return "the backup volume " + backup.string() + " belongs to another primary volume (owner " +
         backup_owner(backup).value_or("?") + "; " + primary.string() + " is " + primary_identity(primary) +
         "), e.g. the original this one was restored from: WAL archiving and snapshots are OFF here, so "
         "that the original's archive and snapshots stay its own" +
         "\nHINT: give this volume a backup volume of its own (volumes.backup, or --backup DIR); after losing the "
         "original for good, `berth backup adopt` makes this volume the owner";
}

}  // namespace berth::appliance
