// The user files of the front door: an htpasswd file of bcrypt entries (`user:$2y$12$...`,
// what `htpasswd -B` from apache2-utils writes) and its companion group file in Apache's
// AuthGroupFile form (`group: user1 user2`). Reading keeps comments and blank lines so that a
// rewrite changes only the entries it means to; writing is atomic. Also the password check
// itself: bcrypt through libcrypt, with a short-lived cache of successful checks because a
// bcrypt run costs ~250 ms at cost 12.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/core/error.hpp"

namespace berth::proxy {

/// The bcrypt cost for new hashes: ~250 ms per check on a current CPU.
inline constexpr int default_bcrypt_cost = 12;

/// A bcrypt hash ("$2y$12$...") of `password` with a fresh random salt. Throws berth::Error
/// if libcrypt fails. Thread-safe.
std::string hash_password(std::string_view password, int cost = default_bcrypt_cost);

/// True when `password` matches the bcrypt `hash` (compared in constant time). A hash that is
/// not bcrypt never matches. Thread-safe.
bool verify_password(std::string_view password, std::string const& hash);

/// A user or group name as the files accept it: 1 to 64 of [A-Za-z0-9._@-], not starting with
/// '-' (no ':' or blanks, which the file formats use as separators).
bool is_valid_account_name(std::string_view name);

/// An htpasswd file, line by line.
class HtpasswdFile {
public:
  /// Reads `file`; a missing file reads as empty. Throws berth::Error "FILE:LINE: ..." for a
  /// malformed line, a duplicate user or a hash that is not bcrypt, and for I/O errors.
  static HtpasswdFile read(std::filesystem::path const& file);

  std::vector<std::string> users() const;
  std::optional<std::string> hash_of(std::string_view user) const;
  /// Adds the user or replaces their hash, keeping the line where it was.
  void set(std::string const& user, std::string const& hash);
  /// False when there was no such user.
  bool remove(std::string_view user);

  /// Writes atomically (temp file, fsync, rename, fsync of the directory). A new file gets mode
  /// 0640 and its directory's group; a replaced file keeps its mode, owner and group. Throws
  /// berth::Error.
  void write(std::filesystem::path const& file) const;

private:
  struct Line {
    std::string text;  // the whole line for comments and blanks
    std::string user;  // empty for comments and blanks
  };
  std::vector<Line> lines_;
};

/// A group file: `group: member member ...` per line, '#' comments.
class GroupFile {
public:
  /// Reads `file`; a missing file reads as empty. Throws berth::Error "FILE:LINE: ..." for a
  /// malformed line, a duplicate group or an invalid name.
  static GroupFile read(std::filesystem::path const& file);

  /// group → members, sorted.
  std::map<std::string, std::vector<std::string>> groups() const;
  /// The groups `user` is in, sorted.
  std::vector<std::string> groups_of(std::string_view user) const;
  /// Puts `user` in exactly `groups` (removing them from every other), creating groups as needed
  /// and dropping groups left empty.
  void set_groups_of(std::string const& user, std::vector<std::string> const& groups);

  /// As HtpasswdFile::write.
  void write(std::filesystem::path const& file) const;

private:
  struct Line {
    std::string text;                  // comments and blanks
    std::string group;                 // empty for comments and blanks
    std::vector<std::string> members;  // in file order
  };
  std::vector<Line> lines_;
};

/// Checks user names and passwords against a fixed set of bcrypt hashes. A success is
/// remembered for `cache_for`, keyed by a keyed hash of (user, password) that is kept only in
/// memory, so that clients sending Basic credentials on every request stay fast. Unknown users
/// cost a bcrypt run too, so timing does not tell which users exist. Thread-safe.
class PasswordChecker {
public:
  explicit PasswordChecker(std::map<std::string, std::string> hash_by_user,
                           std::chrono::seconds cache_for = std::chrono::seconds(120));
  ~PasswordChecker();
  PasswordChecker(PasswordChecker const&) = delete;
  PasswordChecker& operator=(PasswordChecker const&) = delete;

  bool check(std::string_view user, std::string_view password) const;
  bool empty() const { return hash_by_user_.empty(); }

private:
  struct Cache;
  std::map<std::string, std::string, std::less<>> hash_by_user_;
  std::chrono::seconds cache_for_;
  std::unique_ptr<Cache> cache_;
  std::string unknown_user_hash_;  // a hash nobody knows the password of
};

}  // namespace berth::proxy
