// Robot accounts: the robots file (JSON lines), secrets and their hashes, and the checker the
// running server asks, which follows the file as `berth robot` rewrites it.
#include "berth/proxy/robots.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <set>
#include <utility>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <nlohmann/json.hpp>

#include "atomic_file.hpp"
#include "berth/core/log.hpp"
#include "berth/proxy/htpasswd.hpp"
#include "berth/proxy/jwt.hpp"

namespace berth::proxy {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr std::string_view secret_prefix = "berth_";
constexpr auto last_use_flush_interval = std::chrono::minutes(1);

bool is_hex_sha256(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(),
                                          [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'); });
}

// Only the exact form format_robot_time writes: a round trip rejects "2026-02-30" and the like.
std::optional<RobotClock::time_point> parse_robot_time(std::string const& text) {
  std::tm utc{};
  char zone = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &utc.tm_year, &utc.tm_mon, &utc.tm_mday, &utc.tm_hour,
                  &utc.tm_min, &utc.tm_sec, &zone, &consumed) != 7 ||
      zone != 'Z' || static_cast<std::size_t>(consumed) != text.size())
    return std::nullopt;
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  auto const seconds = ::timegm(&utc);
  if (seconds == static_cast<std::time_t>(-1)) return std::nullopt;
  auto const time = RobotClock::from_time_t(seconds);
  if (format_robot_time(time) != text) return std::nullopt;
  return time;
}

// One robot from its line; messages name the field, never a value that could be a secret.
Robot parse_robot(Json const& object) {
  if (!object.is_object()) throw Error("expected a JSON object");
  auto const text = [&](char const* field, bool required) -> std::optional<std::string> {
    auto const found = object.find(field);
    if (found == object.end() || found->is_null()) {
      if (required) throw Error(std::string("the field \"") + field + "\" is missing");
      return std::nullopt;
    }
    if (!found->is_string()) throw Error(std::string("the field \"") + field + "\" is not a string");
    return found->get<std::string>();
  };
  auto const time = [&](char const* field, bool required) -> std::optional<RobotClock::time_point> {
    auto const value = text(field, required);
    if (!value) return std::nullopt;
    auto const parsed = parse_robot_time(*value);
    if (!parsed) throw Error(std::string("the field \"") + field + "\" is not a time like 2026-01-31T12:00:00Z");
    return parsed;
  };
  Robot robot;
  robot.name = *text("name", true);
  if (!is_valid_account_name(robot.name)) throw Error("invalid robot name \"" + robot.name + "\"");
  robot.secret_sha256 = *text("secret_sha256", true);
  if (!is_hex_sha256(robot.secret_sha256))
    throw Error("robot " + robot.name + ": the field \"secret_sha256\" is not 64 lowercase hex digits");
  robot.description = text("description", false).value_or("");
  robot.created = *time("created", true);
  robot.secret_created = time("secret_created", false).value_or(robot.created);
  robot.expires = time("expires", false);
  robot.revoked = time("revoked", false);
  if (auto const groups = object.find("groups"); groups != object.end() && !groups->is_null()) {
    if (!groups->is_array()) throw Error("robot " + robot.name + ": the field \"groups\" is not a list");
    for (auto const& group : *groups) {
      if (!group.is_string() || !is_valid_account_name(group.get<std::string>()))
        throw Error("robot " + robot.name + ": invalid group name " + group.dump());
      robot.groups.push_back(group.get<std::string>());
    }
    std::sort(robot.groups.begin(), robot.groups.end());
    robot.groups.erase(std::unique(robot.groups.begin(), robot.groups.end()), robot.groups.end());
  }
  return robot;
}

Json to_json(Robot const& robot) {
  auto const optional_time = [](std::optional<RobotClock::time_point> const& time) {
    return time ? Json(format_robot_time(*time)) : Json(nullptr);
  };
  auto groups = robot.groups;
  std::sort(groups.begin(), groups.end());
  return Json{{"name", robot.name},
              {"groups", groups},
              {"description", robot.description},
              {"created", format_robot_time(robot.created)},
              {"secret_created", format_robot_time(robot.secret_created)},
              {"expires", optional_time(robot.expires)},
              {"revoked", optional_time(robot.revoked)},
              {"secret_sha256", robot.secret_sha256}};
}

// What tells that the file was replaced or edited: atomic writes give it a new inode, in-place
// edits a new size or modification time.
struct FileIdentity {
  bool exists = false;
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(FileIdentity const&) const = default;
};

FileIdentity identity_of(fs::path const& file) {
  struct stat status {};
  if (::stat(file.c_str(), &status) != 0) return {};
  return {true,
          status.st_dev,
          status.st_ino,
          status.st_size,
          static_cast<std::int64_t>(status.st_mtim.tv_sec) * 1'000'000'000 + status.st_mtim.tv_nsec,
          static_cast<std::int64_t>(status.st_ctim.tv_sec) * 1'000'000'000 + status.st_ctim.tv_nsec};
}

}  // namespace

std::string robot_login(std::string_view name) {
  return std::string(robot_login_prefix) + std::string(name);
}

std::optional<std::string> robot_name_of(std::string_view login) {
  if (!login.starts_with(robot_login_prefix)) return std::nullopt;
  auto const name = login.substr(robot_login_prefix.size());
  if (!is_valid_account_name(name)) return std::nullopt;
  return std::string(name);
}

std::string make_robot_secret() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
    throw Error("cannot make a robot secret: the random generator failed");
  auto secret = std::string(secret_prefix) +
                base64url_encode(std::string_view(reinterpret_cast<char const*>(bytes.data()), bytes.size()));
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return secret;
}

std::string robot_secret_hash(std::string_view secret) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(secret.data(), secret.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1)
    throw Error("cannot hash a robot secret: SHA-256 failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string text;
  for (unsigned int byte_idx = 0; byte_idx < size; ++byte_idx) {
    text += hex[digest[byte_idx] >> 4];
    text += hex[digest[byte_idx] & 0x0f];
  }
  return text;
}

std::string_view to_string(RobotState state) {
  switch (state) {
    case RobotState::active: return "active";
    case RobotState::expired: return "expired";
    case RobotState::revoked: return "revoked";
  }
  return "?";
}

RobotState Robot::state_at(RobotClock::time_point now) const {
  if (revoked && *revoked <= now) return RobotState::revoked;
  if (expires && *expires <= now) return RobotState::expired;
  return RobotState::active;
}

std::string format_robot_time(RobotClock::time_point time) {
  auto const seconds = RobotClock::to_time_t(time);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

RobotsFile RobotsFile::read(fs::path const& file) {
  RobotsFile result;
  auto const lines = read_lines(file);
  std::set<std::string, std::less<>> seen;
  for (std::size_t line_idx = 0; line_idx < lines.size(); ++line_idx) {
    auto const& line = lines[line_idx];
    auto const first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    auto const where = file.string() + ":" + std::to_string(line_idx + 1) + ": ";
    auto const hint = "\nHINT: the file is written by `berth robot`; fix or remove the line by hand";
    auto const object = Json::parse(line, nullptr, false);
    if (object.is_discarded()) throw Error(where + "not a JSON object" + hint);
    Robot robot;
    try {
      robot = parse_robot(object);
    } catch (Error const& error) {
      throw Error(where + error.what() + hint);
    }
    if (!seen.insert(robot.name).second) throw Error(where + "robot " + robot.name + " appears twice" + hint);
    result.robots_.push_back(std::move(robot));
  }
  return result;
}

Robot const* RobotsFile::find(std::string_view name) const {
  auto const found =
      std::find_if(robots_.begin(), robots_.end(), [&](Robot const& robot) { return robot.name == name; });
  return found == robots_.end() ? nullptr : &*found;
}

Robot* RobotsFile::find(std::string_view name) {
  return const_cast<Robot*>(std::as_const(*this).find(name));
}

void RobotsFile::set(Robot robot) {
  if (auto* existing = find(robot.name))
    *existing = std::move(robot);
  else
    robots_.push_back(std::move(robot));
}

bool RobotsFile::remove(std::string_view name) {
  return std::erase_if(robots_, [&](Robot const& robot) { return robot.name == name; }) > 0;
}

void RobotsFile::write(fs::path const& file) const {
  std::string text =
      "# berth robot accounts, one JSON object per line, managed with `berth robot`.\n"
      "# Only SHA-256 hashes of the secrets are kept here; the secrets themselves are shown once.\n";
  for (auto const& robot : robots_) text += to_json(robot).dump() + "\n";
  write_file_atomically(file, text);
}

std::map<std::string, RobotClock::time_point> read_robot_last_use(fs::path const& file) {
  std::map<std::string, RobotClock::time_point> last_use;
  std::ifstream in(file);
  for (std::string name, time; in >> name >> time;)
    if (auto const parsed = parse_robot_time(time)) last_use[name] = *parsed;
  return last_use;
}

struct RobotChecker::State {
  fs::path robots_file;
  fs::path last_use_file;
  std::mutex mutex;
  FileIdentity identity;
  bool loaded = false;
  bool unreadable = false;
  std::map<std::string, Robot, std::less<>> robots;
  std::map<std::string, RobotClock::time_point> last_use;  // this run's sign-ins
  bool last_use_dirty = false;
  std::optional<std::chrono::steady_clock::time_point> last_flush;

  // Re-reads the file when it changed. Called with the mutex held.
  void refresh() {
    auto const current = identity_of(robots_file);
    if (loaded && current == identity) return;
    identity = current;
    loaded = true;
    try {
      std::map<std::string, Robot, std::less<>> fresh;
      auto const file = RobotsFile::read(robots_file);
      for (auto const& robot : file.robots()) fresh.emplace(robot.name, robot);
      robots = std::move(fresh);
      if (unreadable) logger("auth")->info("robots file usable again robots={}", robots.size());
      unreadable = false;
      logger("auth")->debug("robots file read file={} robots={}", robots_file.string(), robots.size());
    } catch (Error const& error) {
      // Fail closed: a robot revoked in a file that no longer parses must not come back.
      robots.clear();
      unreadable = true;
      logger("auth")->error("robots file unusable, refusing every robot until it is fixed error=\"{}\"", error.what());
    }
  }

  // Called with the mutex held; a failure to record is logged, never a failed sign-in.
  void flush_last_use(bool force) {
    if (last_use_file.empty() || !last_use_dirty) return;
    auto const now = std::chrono::steady_clock::now();
    if (!force && last_flush && now - *last_flush < last_use_flush_interval) return;
    last_flush = now;
    last_use_dirty = false;
    auto merged = read_robot_last_use(last_use_file);
    for (auto const& [name, time] : last_use) merged[name] = time;
    std::string text;
    for (auto const& [name, time] : merged)
      if (robots.contains(name)) text += name + " " + format_robot_time(time) + "\n";
    try {
      write_file_atomically(last_use_file, text, false);
    } catch (Error const& error) {
      logger("auth")->warn("cannot record when robots last signed in error=\"{}\"", error.what());
    }
  }
};

RobotChecker::RobotChecker(fs::path robots_file, fs::path last_use_file) : state_(std::make_unique<State>()) {
  state_->robots_file = std::move(robots_file);
  state_->last_use_file = std::move(last_use_file);
  std::lock_guard lock(state_->mutex);
  state_->refresh();
}

RobotChecker::~RobotChecker() {
  std::lock_guard lock(state_->mutex);
  state_->flush_last_use(true);
}

RobotCheck RobotChecker::check(std::string_view name, std::string_view secret) const {
  auto const presented = robot_secret_hash(secret);
  auto const now = RobotClock::now();
  std::lock_guard lock(state_->mutex);
  state_->refresh();
  auto const found = state_->robots.find(name);
  // Compare against something even for an unknown robot, so that the answer takes the same time.
  std::string const expected = found == state_->robots.end() ? std::string(64, '0') : found->second.secret_sha256;
  bool const matches = CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
  if (!matches || found == state_->robots.end()) return RobotCheck::wrong_secret;
  switch (found->second.state_at(now)) {
    case RobotState::revoked: return RobotCheck::revoked;
    case RobotState::expired: return RobotCheck::expired;
    case RobotState::active: break;
  }
  state_->last_use[found->first] = std::chrono::floor<std::chrono::seconds>(now);
  state_->last_use_dirty = true;
  state_->flush_last_use(false);
  return RobotCheck::ok;
}

bool RobotChecker::token_stands(std::string_view name, RobotClock::time_point issued_at) const {
  auto const now = RobotClock::now();
  std::lock_guard lock(state_->mutex);
  state_->refresh();
  auto const found = state_->robots.find(name);
  if (found == state_->robots.end()) return false;
  return found->second.state_at(now) == RobotState::active && issued_at >= found->second.secret_created;
}

std::vector<std::string> RobotChecker::groups_of(std::string_view name) const {
  std::lock_guard lock(state_->mutex);
  state_->refresh();
  auto const found = state_->robots.find(name);
  return found == state_->robots.end() ? std::vector<std::string>{} : found->second.groups;
}

std::vector<std::string> RobotChecker::names() const {
  std::lock_guard lock(state_->mutex);
  state_->refresh();
  std::vector<std::string> names;
  for (auto const& [name, robot] : state_->robots) names.push_back(name);
  return names;
}

}  // namespace berth::proxy
