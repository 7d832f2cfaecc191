// The unprivileged OS user the PostgreSQL server runs as, and what running as it takes when berth
// is root: ownership of the directories the server writes, every directory on the way traversable,
// and a Boost.Process initializer that drops to the user in the child between fork and exec.
#pragma once

#include <grp.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <boost/process/extend.hpp>

namespace berth::postgres::detail {

struct OsUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  ///< supplementary groups, resolved before fork (getgrouplist is not fork-safe)
  bool switch_user = false;   ///< berth is root and the server must run as `name`
};

/// Resolves `configured` (empty: the current user, or "postgres" when root). Throws Error when the
/// user does not exist, is root, or differs from the current user while berth is not root.
OsUser resolve_os_user(std::string const& configured);

/// chown `path` to the user when berth switches users; no-op otherwise. Throws Error.
void give_to(OsUser const& user, std::filesystem::path const& path);

/// Throws Error naming the first directory from / down to `path` (exclusive) that `user` cannot
/// search, with the fix. Only checks mode bits (no ACLs); no-op when not switching users.
void check_traversable(OsUser const& user, std::filesystem::path const& path);

/// Boost.Process initializer: in the child, setgroups/setgid/setuid to `user` before exec (a
/// failure makes the parent's spawn throw), in a process group of its own, with SIGINT
/// (PostgreSQL's fast shutdown) as parent-death signal, so a kill -9 of berth leaves no server
/// behind holding the data directory.
struct RunAs : boost::process::extend::handler {
  OsUser const* user;
  pid_t parent = ::getpid();
  explicit RunAs(OsUser const* u) : user(u) {}

  template <class Executor>
  void on_exec_setup(Executor& exec) const {
    // Only async-signal-safe calls here: the parent may have other threads.
    // A process group of its own: a Ctrl-C on berth's terminal must not stop the server behind
    // berth's back (berth stops it in order, after the front door).
    if (::setpgid(0, 0) != 0) fail(exec, "setpgid");
    if (user && user->switch_user) {
      if (::setgroups(user->groups.size(), user->groups.data()) != 0) fail(exec, "setgroups");
      if (::setgid(user->gid) != 0) fail(exec, "setgid");
      if (::setuid(user->uid) != 0) fail(exec, "setuid");
    }
    // After setuid, which clears the parent-death signal. The check closes the race with a
    // parent that died before prctl.
    if (::prctl(PR_SET_PDEATHSIG, SIGINT) != 0) fail(exec, "prctl");
    if (::getppid() != parent) ::_exit(EXIT_FAILURE);
  }

private:
  template <class Executor>
  static void fail(Executor& exec, char const* what) {
    // In the child, set_error only reports through the executor's pipe; it does not stop exec.
    exec.set_error(std::error_code(errno, std::system_category()), what);
    ::_exit(EXIT_FAILURE);
  }
};

}  // namespace berth::postgres::detail
