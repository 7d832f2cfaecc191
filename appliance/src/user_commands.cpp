// The user commands: edits of the htpasswd and group files, each written atomically.
#include "user_commands.hpp"

#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "berth/proxy/htpasswd.hpp"
#include "volume_lock.hpp"

namespace berth::appliance {
namespace {

void check_name(std::string const& name, std::string_view what) {
  if (!proxy::is_valid_account_name(name))
    throw Error("invalid " + std::string(what) + " name \"" + name +
                "\"\nHINT: use 1 to 64 letters, digits, . _ @ - (not starting with -)");
}

// Echo stays off only while the password is typed; restored on every path out.
std::string read_hidden_line(std::string const& prompt) {
  std::cerr << prompt << std::flush;
  termios saved{};
  bool const is_terminal = ::tcgetattr(STDIN_FILENO, &saved) == 0;
  if (is_terminal) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  bool const got = static_cast<bool>(std::getline(std::cin, line));
  if (is_terminal) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
  std::cerr << "\n";
  if (!got) throw Error("no password given (end of input)");
  return line;
}

std::string read_password(PasswordInput const& input, std::string const& name) {
  std::string password;
  if (input.from_stdin) {
    if (!std::getline(*input.in, password))
      throw Error("no password on stdin\nHINT: pipe it in, e.g. printf '%s\\n' \"$PASSWORD\" | berth user add " + name +
                  " --password-stdin");
    if (!password.empty() && password.back() == '\r') password.pop_back();
  } else {
    if (::isatty(STDIN_FILENO) == 0)
      throw Error(
          "stdin is not a terminal, so the password cannot be asked for\nHINT: pass --password-stdin to "
          "read it as one line from stdin");
    password = read_hidden_line("Password for " + name + ": ");
    if (read_hidden_line("Retype the password: ") != password) throw Error("the two passwords differ; nothing changed");
  }
  if (password.empty()) throw Error("empty password refused; nothing changed");
  return password;
}

std::string joined(std::vector<std::string> const& words) {
  std::string text;
  for (auto const& word : words) text += (text.empty() ? "" : ",") + word;
  return text;
}

// The running server reads the user files at start: say how to restart the berth that runs
// here, as it runs (a systemd service, or a serve in some terminal), or that nothing needs doing.
std::string how_to_apply(Config const& config) {
  auto const pid = VolumeLock::holder(config.primary / "run" / "berth.lock");
  if (!pid) return "berth serve reads it when it starts (it is not running on " + config.primary.string() + ")";
  std::ifstream cgroup("/proc/" + std::to_string(*pid) + "/cgroup");
  for (std::string line; std::getline(cgroup, line);) {
    auto const service = line.find(".service");
    if (service == std::string::npos) continue;
    auto const name = line.substr(line.rfind('/', service) + 1, service + 8 - line.rfind('/', service) - 1);
    return "restart berth to apply: sudo systemctl restart " + name;
  }
  return "restart the berth serve running as pid " + std::to_string(*pid) +
         " to apply (Ctrl-C in its terminal, then start it again)";
}

}  // namespace

int user_add(Config const& config, std::string const& name, std::vector<std::string> const& groups,
             PasswordInput const& input, std::ostream& out) {
  check_name(name, "user");
  for (auto const& group : groups) check_name(group, "group");
  auto const file = htpasswd_file(config);
  auto users = proxy::HtpasswdFile::read(file);
  if (users.hash_of(name))
    throw Error("user " + name + " already exists in " + file.string() +
                "\nHINT: change the password with `berth "
                "user passwd " +
                name + "`");
  auto group_file = proxy::GroupFile::read(groups_file(config));
  users.set(name, proxy::hash_password(read_password(input, name)));
  // Groups first: a group line naming a user who cannot sign in yet grants nothing.
  if (!groups.empty()) {
    group_file.set_groups_of(name, groups);
    group_file.write(groups_file(config));
  }
  users.write(file);
  out << "user " << name << " added to " << file.string() << (groups.empty() ? "" : " (groups: " + joined(groups) + ")")
      << "\n" << how_to_apply(config) << "\n";
  return 0;
}

int user_passwd(Config const& config, std::string const& name, PasswordInput const& input, std::ostream& out) {
  auto const file = htpasswd_file(config);
  auto users = proxy::HtpasswdFile::read(file);
  if (!users.hash_of(name))
    throw Error("no user " + name + " in " + file.string() + "\nHINT: add it with `berth user add " + name + "`");
  users.set(name, proxy::hash_password(read_password(input, name)));
  users.write(file);
  out << "password of " << name << " changed\n" << how_to_apply(config) << "\n";
  return 0;
}

int user_del(Config const& config, std::string const& name, std::ostream& out) {
  auto const file = htpasswd_file(config);
  auto users = proxy::HtpasswdFile::read(file);
  if (!users.remove(name))
    throw Error("no user " + name + " in " + file.string() + "\nHINT: `berth user list` shows the users");
  // The password goes first: a leftover group membership without it grants nothing.
  users.write(file);
  auto group_file = proxy::GroupFile::read(groups_file(config));
  if (!group_file.groups_of(name).empty()) {
    group_file.set_groups_of(name, {});
    group_file.write(groups_file(config));
  }
  out << "user " << name << " removed\n" << how_to_apply(config) << "\n";
  return 0;
}

int user_list(Config const& config, bool json, std::ostream& out) {
  auto const users = proxy::HtpasswdFile::read(htpasswd_file(config));
  auto const group_file = proxy::GroupFile::read(groups_file(config));
  if (json) {
    auto list = nlohmann::ordered_json::array();
    for (auto const& user : users.users()) list.push_back({{"name", user}, {"groups", group_file.groups_of(user)}});
    out << list.dump(2) << "\n";
    return 0;
  }
  for (auto const& user : users.users()) {
    auto const groups = group_file.groups_of(user);
    out << user << (groups.empty() ? "" : "  groups: " + joined(groups)) << "\n";
  }
  if (users.users().empty()) out << "no users in " << htpasswd_file(config).string() << "\n";
  return 0;
}

}  // namespace berth::appliance
