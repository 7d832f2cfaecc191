#include "os_user.hpp"

#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "berth/core/error.hpp"

namespace berth::postgres::detail {

namespace fs = std::filesystem;

OsUser resolve_os_user(std::string const& configured) {
  bool const root = ::geteuid() == 0;
  std::string name = configured;
  if (name.empty()) {
    if (root) {
      name = "postgres";
    } else {
      OsUser self;
      self.uid = ::geteuid();
      self.gid = ::getegid();
      if (passwd const* entry = ::getpwuid(self.uid)) self.name = entry->pw_name;
      return self;
    }
  }
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  int const rc = ::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (rc != 0 || !found)
    throw Error("cannot run postgres as OS user " + name +
                ": no such user\nHINT: create it (apt-get install "
                "postgresql creates \"postgres\") or set postgres.os_user");
  OsUser user;
  user.name = name;
  user.uid = entry.pw_uid;
  user.gid = entry.pw_gid;
  if (user.uid == 0)
    throw Error("cannot run postgres as OS user " + name + ": it is root, and postgres refuses to run as root");
  if (!root) {
    if (user.uid != ::geteuid())
      throw Error("cannot run postgres as OS user " + name + ": berth runs as uid " + std::to_string(::geteuid()) +
                  " and only root can switch users\nHINT: leave postgres.os_user empty to use berth's own user");
    return user;
  }
  int count = 32;
  user.groups.resize(count);
  while (::getgrouplist(name.c_str(), user.gid, user.groups.data(), &count) < 0) user.groups.resize(count);
  user.groups.resize(count);
  user.switch_user = true;
  return user;
}

void give_to(OsUser const& user, fs::path const& path) {
  if (!user.switch_user) return;
  if (::chown(path.c_str(), user.uid, user.gid) != 0)
    throw Error("cannot give " + path.string() + " to OS user " + user.name + ": " + std::strerror(errno));
}

void check_traversable(OsUser const& user, fs::path const& path) {
  if (!user.switch_user) return;
  fs::path dir;
  for (auto const& part : path.parent_path()) {
    dir /= part;
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return;  // not created yet: berth creates it (0755) later
    mode_t bit = S_IXOTH;
    if (st.st_uid == user.uid) {
      bit = S_IXUSR;
    } else if (st.st_gid == user.gid ||
               std::find(user.groups.begin(), user.groups.end(), st.st_gid) != user.groups.end()) {
      bit = S_IXGRP;
    }
    if ((st.st_mode & bit) == 0)
      throw Error("OS user " + user.name + " cannot reach " + path.string() + ": directory " + dir.string() +
                  " is not searchable by it (mode " +
                  [&] {
                    char mode[8];
                    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
                    return std::string(mode);
                  }() +
                  ")\nHINT: chmod o+x " + dir.string() + ", or move the data directory to a path " + user.name +
                  " can reach");
  }
}

}  // namespace berth::postgres::detail
