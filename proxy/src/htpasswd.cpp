// htpasswd and group files, bcrypt through libcrypt, and the cache of successful checks.
#include "berth/proxy/htpasswd.hpp"

#include <crypt.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_map>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "atomic_file.hpp"

namespace berth::proxy {
namespace {

namespace fs = std::filesystem;

// A bcrypt hash of a random password nobody knows: checked for unknown users so that their
// refusal takes as long as a wrong password.
constexpr char const* unknown_user_hash = "$2y$12$ZG6tI0Db35WQlyEz3Dynxer5d.70i/prHazYes0dv.dOC6yvKujh6";

bool is_bcrypt(std::string_view hash) {
  return hash.size() == 60 && (hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$"));
}

std::string trim(std::string_view text) {
  auto const first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return std::string(text.substr(first, text.find_last_not_of(" \t\r") - first + 1));
}

[[noreturn]] void bad_line(fs::path const& file, std::size_t line_idx, std::string const& problem,
                           std::string const& hint) {
  throw Error(file.string() + ":" + std::to_string(line_idx + 1) + ": " + problem + "\nHINT: " + hint);
}

}  // namespace

void write_file_atomically(fs::path const& file, std::string const& text, bool durable) {
  auto fail = [&](std::string const& what) {
    return Error("cannot write " + file.string() + ": " + what + ": " + std::strerror(errno) +
                 "\nHINT: check the directory exists and is writable (run as root for /etc/berth)");
  };
  auto const dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  struct stat existing {};
  bool const replacing = ::stat(file.c_str(), &existing) == 0;
  std::string temp = (dir / ("." + file.filename().string() + ".tmp-XXXXXX")).string();
  int const fd = ::mkstemp(temp.data());
  if (fd < 0) throw fail("create temporary file");
  auto give_up = [&](std::string const& what) {
    auto error = fail(what);
    ::close(fd);
    ::unlink(temp.c_str());
    return error;
  };
  // A new file is its owner's alone (0600), unless its directory belongs to another group
  // (/etc/berth is root:berth): then it takes that group, which may read it (0640), so the service
  // can. A rewrite keeps the mode, and the owner and group that let the service read it.
  struct stat directory {};
  bool const group_directory = ::stat(dir.c_str(), &directory) == 0 && directory.st_gid != ::getegid();
  mode_t const mode = replacing ? (existing.st_mode & 07777) : (group_directory ? 0640 : 0600);
  if (::fchmod(fd, mode) != 0) throw give_up("set mode");
  if (replacing && (existing.st_uid != ::geteuid() || existing.st_gid != ::getegid()) &&
      ::fchown(fd, existing.st_uid, existing.st_gid) != 0 && errno != EPERM)
    throw give_up("set owner");
  if (!replacing && group_directory &&
      ::fchown(fd, static_cast<uid_t>(-1), directory.st_gid) != 0 && errno != EPERM)
    throw give_up("set group");
  for (std::size_t written = 0; written < text.size();) {
    auto const count = ::write(fd, text.data() + written, text.size() - written);
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) throw give_up("write");
    written += static_cast<std::size_t>(count);
  }
  if (durable && ::fsync(fd) != 0) throw give_up("fsync");
  if (::close(fd) != 0) {
    auto error = fail("close");
    ::unlink(temp.c_str());
    throw error;
  }
  if (::rename(temp.c_str(), file.c_str()) != 0) {
    auto error = fail("rename");
    ::unlink(temp.c_str());
    throw error;
  }
  if (!durable) return;
  if (int const dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

std::string hash_password(std::string_view password, int cost) {
  std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> salt{};
  // A null rbytes makes libcrypt take the salt's randomness from the operating system.
  if (::crypt_gensalt_rn("$2y$", static_cast<unsigned long>(cost), nullptr, 0, salt.data(),
                         static_cast<int>(salt.size())) == nullptr)
    throw Error(std::string("cannot make a bcrypt salt: ") + std::strerror(errno));
  auto data = std::make_unique<crypt_data>();
  std::string const phrase(password);
  char const* hash = ::crypt_rn(phrase.c_str(), salt.data(), data.get(), sizeof(crypt_data));
  if (hash == nullptr || hash[0] == '*') throw Error(std::string("cannot hash the password: ") + std::strerror(errno));
  std::string result(hash);
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return result;
}

bool verify_password(std::string_view password, std::string const& hash) {
  bool const usable = is_bcrypt(hash);
  auto data = std::make_unique<crypt_data>();
  std::string const phrase(password);
  // Hash even when the stored hash is unusable, so that the answer takes the usual time.
  char const* computed =
      ::crypt_rn(phrase.c_str(), usable ? hash.c_str() : unknown_user_hash, data.get(), sizeof(crypt_data));
  bool const matches = usable && computed != nullptr && std::strlen(computed) == hash.size() &&
                       CRYPTO_memcmp(computed, hash.data(), hash.size()) == 0;
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return matches;
}

bool is_valid_account_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
           ch == '@' || ch == '-';
  });
}

HtpasswdFile HtpasswdFile::read(fs::path const& file) {
  HtpasswdFile result;
  auto const lines = read_lines(file);
  std::set<std::string, std::less<>> seen;
  for (std::size_t line_idx = 0; line_idx < lines.size(); ++line_idx) {
    auto const& text = lines[line_idx];
    auto const content = trim(text);
    if (content.empty() || content.front() == '#') {
      result.lines_.push_back({text, {}});
      continue;
    }
    auto const colon = content.find(':');
    if (colon == std::string::npos)
      bad_line(file, line_idx, "expected USER:HASH, got a line without ':'",
               "lines are written by `berth user add` or `htpasswd -B`");
    auto const user = content.substr(0, colon);
    auto const hash = content.substr(colon + 1);
    if (!is_valid_account_name(user))
      bad_line(file, line_idx, "invalid user name \"" + user + "\"",
               "user names are 1 to 64 letters, digits, . _ @ - (not starting with -)");
    if (!is_bcrypt(hash))
      bad_line(file, line_idx, "user " + user + " has a password hash that is not bcrypt",
               "set the password again with `berth user passwd " + user + "` or `htpasswd -B`");
    if (!seen.insert(user).second)
      bad_line(file, line_idx, "user " + user + " appears twice", "remove one of the two lines");
    result.lines_.push_back({text, user});
  }
  return result;
}

std::vector<std::string> HtpasswdFile::users() const {
  std::vector<std::string> users;
  for (auto const& line : lines_)
    if (!line.user.empty()) users.push_back(line.user);
  return users;
}

std::optional<std::string> HtpasswdFile::hash_of(std::string_view user) const {
  for (auto const& line : lines_)
    if (!line.user.empty() && line.user == user) {
      auto const content = trim(line.text);
      return content.substr(content.find(':') + 1);
    }
  return std::nullopt;
}

void HtpasswdFile::set(std::string const& user, std::string const& hash) {
  for (auto& line : lines_)
    if (line.user == user) {
      line.text = user + ":" + hash;
      return;
    }
  lines_.push_back({user + ":" + hash, user});
}

bool HtpasswdFile::remove(std::string_view user) {
  return std::erase_if(lines_, [&](Line const& line) { return !line.user.empty() && line.user == user; }) > 0;
}

void HtpasswdFile::write(fs::path const& file) const {
  std::string text;
  for (auto const& line : lines_) text += line.text + "\n";
  write_file_atomically(file, text);
}

GroupFile GroupFile::read(fs::path const& file) {
  GroupFile result;
  auto const lines = read_lines(file);
  std::set<std::string, std::less<>> seen;
  for (std::size_t line_idx = 0; line_idx < lines.size(); ++line_idx) {
    auto const& text = lines[line_idx];
    auto const content = trim(text);
    if (content.empty() || content.front() == '#') {
      result.lines_.push_back({text, {}, {}});
      continue;
    }
    auto const colon = content.find(':');
    if (colon == std::string::npos)
      bad_line(file, line_idx, "expected GROUP: USER USER ..., got a line without ':'",
               "lines are written by `berth user add NAME --group GROUP`");
    auto const group = trim(content.substr(0, colon));
    if (!is_valid_account_name(group))
      bad_line(file, line_idx, "invalid group name \"" + group + "\"",
               "group names are 1 to 64 letters, digits, . _ @ - (not starting with -)");
    if (!seen.insert(group).second)
      bad_line(file, line_idx, "group " + group + " appears twice", "merge the two lines into one");
    Line line{text, group, {}};
    std::istringstream members(content.substr(colon + 1));
    for (std::string member; members >> member;) {
      if (!is_valid_account_name(member))
        bad_line(file, line_idx, "invalid user name \"" + member + "\" in group " + group,
                 "separate members with spaces");
      line.members.push_back(member);
    }
    result.lines_.push_back(std::move(line));
  }
  return result;
}

std::map<std::string, std::vector<std::string>> GroupFile::groups() const {
  std::map<std::string, std::vector<std::string>> groups;
  for (auto const& line : lines_) {
    if (line.group.empty()) continue;
    auto& members = groups[line.group];
    members = line.members;
    std::sort(members.begin(), members.end());
  }
  return groups;
}

std::vector<std::string> GroupFile::groups_of(std::string_view user) const {
  std::vector<std::string> groups;
  for (auto const& line : lines_)
    if (!line.group.empty() && std::find(line.members.begin(), line.members.end(), user) != line.members.end())
      groups.push_back(line.group);
  std::sort(groups.begin(), groups.end());
  return groups;
}

void GroupFile::set_groups_of(std::string const& user, std::vector<std::string> const& groups) {
  for (auto& line : lines_) {
    if (line.group.empty()) continue;
    bool const wanted = std::find(groups.begin(), groups.end(), line.group) != groups.end();
    bool const member = std::find(line.members.begin(), line.members.end(), user) != line.members.end();
    if (wanted && !member) line.members.push_back(user);
    if (!wanted && member) std::erase(line.members, user);
  }
  for (auto const& group : groups) {
    if (std::none_of(lines_.begin(), lines_.end(), [&](Line const& line) { return line.group == group; }))
      lines_.push_back({{}, group, {user}});
  }
  std::erase_if(lines_, [](Line const& line) { return !line.group.empty() && line.members.empty(); });
}

void GroupFile::write(fs::path const& file) const {
  std::string text;
  for (auto const& line : lines_) {
    if (line.group.empty()) {
      text += line.text + "\n";
      continue;
    }
    text += line.group + ":";
    for (auto const& member : line.members) text += " " + member;
    text += "\n";
  }
  write_file_atomically(file, text);
}

struct PasswordChecker::Cache {
  std::array<unsigned char, 32> key{};
  std::mutex mutex;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> expiry_by_digest;
};

PasswordChecker::PasswordChecker(std::map<std::string, std::string> hash_by_user, std::chrono::seconds cache_for)
    : hash_by_user_(hash_by_user.begin(), hash_by_user.end()),
      cache_for_(cache_for),
      cache_(std::make_unique<Cache>()) {
  if (RAND_bytes(cache_->key.data(), static_cast<int>(cache_->key.size())) != 1)
    throw Error("cannot make a random key for the password cache");
  // Unknown users are checked against a hash of the most common cost here, so that their
  // refusal takes as long as a typical user's wrong password (htpasswd -B defaults to cost 5).
  std::map<int, std::size_t> users_by_cost;
  for (auto const& [user, hash] : hash_by_user_)
    if (is_bcrypt(hash)) ++users_by_cost[std::stoi(hash.substr(4, 2))];
  int cost = default_bcrypt_cost;
  std::size_t most = 0;
  for (auto const& [candidate, count] : users_by_cost)
    if (count > most) std::tie(cost, most) = std::pair{candidate, count};
  std::array<unsigned char, 16> secret{};
  RAND_bytes(secret.data(), static_cast<int>(secret.size()));
  unknown_user_hash_ =
      hash_password(std::string_view(reinterpret_cast<char const*>(secret.data()), secret.size()), cost);
}

PasswordChecker::~PasswordChecker() {
  OPENSSL_cleanse(cache_->key.data(), cache_->key.size());
}

bool PasswordChecker::check(std::string_view user, std::string_view password) const {
  // The cache key is an HMAC under a per-process random key: a memory dump does not yield
  // something to brute-force offline faster than the bcrypt hashes themselves.
  std::string message(user);
  message += '\0';
  message.append(password);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), cache_->key.data(), static_cast<int>(cache_->key.size()),
       reinterpret_cast<unsigned char const*>(message.data()), message.size(), mac.data(), &mac_size);
  OPENSSL_cleanse(message.data(), message.size());
  std::string const digest(reinterpret_cast<char const*>(mac.data()), mac_size);
  auto const now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(cache_->mutex);
    if (auto found = cache_->expiry_by_digest.find(digest); found != cache_->expiry_by_digest.end()) {
      if (found->second > now) return true;
      cache_->expiry_by_digest.erase(found);
    }
  }
  auto const entry = hash_by_user_.find(user);
  bool const matches = verify_password(password, entry == hash_by_user_.end() ? unknown_user_hash_ : entry->second) &&
                       entry != hash_by_user_.end();
  if (matches && cache_for_.count() > 0) {
    std::lock_guard lock(cache_->mutex);
    // Bounded: expired entries go first; a flood of distinct valid logins just clears it.
    if (cache_->expiry_by_digest.size() >= 10000) {
      std::erase_if(cache_->expiry_by_digest, [&](auto const& item) { return item.second <= now; });
      if (cache_->expiry_by_digest.size() >= 10000) cache_->expiry_by_digest.clear();
    }
    cache_->expiry_by_digest[digest] = now + cache_for_;
  }
  return matches;
}

std::vector<std::string> read_lines(std::filesystem::path const& file) {
  std::vector<std::string> lines;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return lines;
    throw Error("cannot read " + file.string() + ": " + std::strerror(errno) +
                "\nHINT: make it readable by the user berth runs as");
  }
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  if (in.bad()) throw Error("cannot read " + file.string() + ": " + std::strerror(errno));
  return lines;
}

}  // namespace berth::proxy
