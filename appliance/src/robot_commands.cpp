// The robot commands: edits of the robots file, each written atomically. Secrets are printed
// once and never written anywhere; the file holds their SHA-256 hashes.
#include "robot_commands.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

#include <nlohmann/json.hpp>

#include "berth/proxy/htpasswd.hpp"
#include "berth/proxy/robots.hpp"

namespace berth::appliance {
namespace {

using proxy::RobotClock;

void check_name(std::string const& name, std::string_view what) {
  if (!proxy::is_valid_account_name(name))
    throw Error("invalid " + std::string(what) + " name \"" + name +
                "\"\nHINT: use 1 to 64 letters, digits, . _ @ - (not starting with -)");
}

std::string joined(std::vector<std::string> const& words, std::string const& none) {
  std::string text;
  for (auto const& word : words) text += (text.empty() ? "" : ",") + word;
  return text.empty() ? none : text;
}

RobotClock::time_point now_in_seconds() {
  return std::chrono::floor<std::chrono::seconds>(RobotClock::now());
}

std::string expiry_text(std::optional<RobotClock::time_point> const& expires) {
  return expires ? proxy::format_robot_time(*expires) : std::string("never");
}

// Reads the file and finds the robot, or says how to see which robots there are.
proxy::Robot& robot_in(proxy::RobotsFile& robots, Config const& config, std::string const& name) {
  auto* robot = robots.find(name);
  if (robot == nullptr)
    throw Error("no robot " + name + " in " + robots_file(config).string() +
                "\nHINT: `berth robot list` shows the robots");
  return *robot;
}

void print_secret(proxy::Robot const& robot, std::string const& secret, std::ostream& out, std::ostream& err) {
  err << "sign in with the user name " << proxy::robot_login(robot.name)
      << " and this token as the password; it is shown only now and cannot be recovered:\n"
      << std::flush;
  out << secret << "\n" << std::flush;
}

}  // namespace

std::optional<std::chrono::seconds> parse_robot_lifetime(std::string_view text) {
  static constexpr std::array<std::pair<char, std::int64_t>, 5> units{
      {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}}};
  if (text.size() < 2) return std::nullopt;
  std::int64_t number = 0;
  auto const [end, problem] = std::from_chars(text.data(), text.data() + text.size() - 1, number);
  if (problem != std::errc() || end != text.data() + text.size() - 1 || number <= 0) return std::nullopt;
  for (auto const& [unit, factor] : units) {
    if (text.back() != unit) continue;
    if (number > 3650 * 86400 / factor) return std::nullopt;
    return std::chrono::seconds(number * factor);
  }
  return std::nullopt;
}

int robot_add(Config const& config, RobotAddOptions const& options, std::ostream& out, std::ostream& err) {
  check_name(options.name, "robot");
  for (auto const& group : options.groups) check_name(group, "group");
  if (options.description.find_first_of("\r\n\t") != std::string::npos)
    throw Error("the robot's description has a line break or tab\nHINT: give it as one line of text");
  auto const file = robots_file(config);
  auto robots = proxy::RobotsFile::read(file);
  if (robots.find(options.name) != nullptr)
    throw Error("robot " + options.name + " already exists in " + file.string() +
                "\nHINT: give it a new token with `berth robot rotate " + options.name + "`, or remove it with " +
                "`berth robot del " + options.name + "`");
  // Without users or robots, the server started with authentication off; a first robot turns it
  // on only when the server next starts.
  bool const first_account =
      robots.robots().empty() && proxy::HtpasswdFile::read(htpasswd_file(config)).users().empty();

  auto const secret = proxy::make_robot_secret();
  proxy::Robot robot;
  robot.name = options.name;
  robot.groups = options.groups;
  std::sort(robot.groups.begin(), robot.groups.end());
  robot.groups.erase(std::unique(robot.groups.begin(), robot.groups.end()), robot.groups.end());
  robot.description = options.description;
  robot.secret_sha256 = proxy::robot_secret_hash(secret);
  robot.created = robot.secret_created = now_in_seconds();
  if (options.lifetime) robot.expires = robot.created + *options.lifetime;
  robots.set(robot);
  robots.write(file);

  err << "robot " << robot.name << " added to " << file.string() << " (login " << proxy::robot_login(robot.name)
      << ", groups: " << joined(robot.groups, "none") << ", expires: " << expiry_text(robot.expires) << ")\n";
  if (first_account)
    err << "berth serve turns authentication on when it next starts: restart it (systemctl restart berth)\n";
  print_secret(robot, secret, out, err);
  return 0;
}

int robot_list(Config const& config, bool json, std::ostream& out) {
  auto const robots = proxy::RobotsFile::read(robots_file(config));
  if (json) {
    auto const last_use = proxy::read_robot_last_use(robot_last_use_file(config));
    auto const now = RobotClock::now();
    auto const time_or_null = [](std::optional<RobotClock::time_point> const& when) {
      return when ? nlohmann::ordered_json(proxy::format_robot_time(*when)) : nlohmann::ordered_json(nullptr);
    };
    auto list = nlohmann::ordered_json::array();
    for (auto const& robot : robots.robots()) {
      auto const used = last_use.find(robot.name);
      list.push_back({{"name", robot.name},
                      {"login", proxy::robot_login(robot.name)},
                      {"state", std::string(to_string(robot.state_at(now)))},
                      {"groups", robot.groups},
                      {"description", robot.description},
                      {"created", proxy::format_robot_time(robot.created)},
                      {"expires", time_or_null(robot.expires)},
                      {"last_used", time_or_null(used == last_use.end() ? std::nullopt
                                                                        : std::optional(used->second))}});
    }
    out << list.dump(2) << "\n";
    return 0;
  }
  if (robots.robots().empty()) {
    out << "no robots in " << robots_file(config).string() << "\n";
    return 0;
  }
  auto const last_use = proxy::read_robot_last_use(robot_last_use_file(config));
  auto const now = RobotClock::now();
  std::vector<std::array<std::string, 8>> rows = {
      {"NAME", "LOGIN", "STATE", "GROUPS", "CREATED", "EXPIRES", "LAST USED", "DESCRIPTION"}};
  for (auto const& robot : robots.robots()) {
    auto const used = last_use.find(robot.name);
    rows.push_back({robot.name, proxy::robot_login(robot.name), std::string(to_string(robot.state_at(now))),
                    joined(robot.groups, "-"), proxy::format_robot_time(robot.created), expiry_text(robot.expires),
                    used == last_use.end() ? std::string("never") : proxy::format_robot_time(used->second),
                    robot.description});
  }
  std::array<std::size_t, 8> widths{};
  for (auto const& row : rows)
    for (std::size_t column = 0; column < row.size(); ++column)
      widths[column] = std::max(widths[column], row[column].size());
  for (auto const& row : rows) {
    std::string line;
    for (std::size_t column = 0; column < row.size(); ++column) {
      line += row[column];
      if (column + 1 < row.size()) line += std::string(widths[column] - row[column].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
  return 0;
}

int robot_revoke(Config const& config, std::string const& name, std::ostream& out) {
  auto const file = robots_file(config);
  auto robots = proxy::RobotsFile::read(file);
  auto& robot = robot_in(robots, config, name);
  if (robot.revoked) {
    out << "robot " << name << " was already revoked at " << proxy::format_robot_time(*robot.revoked) << "\n";
    return 0;
  }
  robot.revoked = now_in_seconds();
  robots.write(file);
  out << "robot " << name << " revoked: it can no longer sign in, and its tokens stop working now\n";
  return 0;
}

int robot_rotate(Config const& config, std::string const& name, std::optional<std::chrono::seconds> lifetime,
                 std::ostream& out, std::ostream& err) {
  auto const file = robots_file(config);
  auto robots = proxy::RobotsFile::read(file);
  auto& robot = robot_in(robots, config, name);
  if (robot.revoked)
    throw Error("robot " + name + " is revoked; a revoked robot stays revoked\nHINT: remove it with `berth robot del " +
                name + "` and add it again");
  auto const now = now_in_seconds();
  if (lifetime)
    robot.expires = now + *lifetime;
  else if (robot.expires && *robot.expires <= now)
    throw Error("robot " + name + " expired at " + proxy::format_robot_time(*robot.expires) +
                "\nHINT: give it a new expiry too, e.g. `berth robot rotate " + name + " --expires 90d`");
  auto const secret = proxy::make_robot_secret();
  robot.secret_sha256 = proxy::robot_secret_hash(secret);
  robot.secret_created = now;
  robots.write(file);
  err << "robot " << name << " has a new token (expires: " << expiry_text(robot.expires)
      << "); the old one and the bearer tokens issued with it stop working now\n";
  print_secret(robot, secret, out, err);
  return 0;
}

int robot_del(Config const& config, std::string const& name, std::ostream& out) {
  auto const file = robots_file(config);
  auto robots = proxy::RobotsFile::read(file);
  if (!robots.remove(name))
    throw Error("no robot " + name + " in " + file.string() + "\nHINT: `berth robot list` shows the robots");
  robots.write(file);
  out << "robot " << name << " removed\n";
  return 0;
}

}  // namespace berth::appliance
