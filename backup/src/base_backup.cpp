#include "base_backup.hpp"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <regex>

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/io.hpp>
#include <boost/process/pipe.hpp>
#include <boost/process/start_dir.hpp>

#include "berth/core/log.hpp"
#include "berth/postgres/installation.hpp"
#include "io.hpp"

namespace berth::backup::detail {

namespace bp = boost::process;
namespace fs = std::filesystem;

namespace {

// pg_basebackup must not outlive a killed `berth backup run`: the next run removes its folder.
struct DieWithParent : bp::extend::handler {
  pid_t parent = ::getpid();
  template <class Executor>
  void on_exec_setup(Executor&) const {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(EXIT_FAILURE);
  }
};

// The WAL segment holding `lsn` ("X/Y") on `timeline`, for the default 16 MiB segments.
std::string segment_of(std::string const& lsn, std::string const& timeline) {
  auto const slash = lsn.find('/');
  if (slash == std::string::npos || timeline.empty()) return "";
  unsigned long const high = std::stoul(lsn.substr(0, slash), nullptr, 16);
  unsigned long const low = std::stoul(lsn.substr(slash + 1), nullptr, 16);
  char name[32];
  std::snprintf(name, sizeof name, "%08lX%08lX%08lX", std::stoul(timeline), high, low >> 24);
  return name;
}

}  // namespace

BaseBackup take_base_backup(DatabaseSource const& source, fs::path const& folder) {
  auto const installation = postgres::find_installation(source.bin_dir);
  auto const program = installation.binary("pg_basebackup");
  // zstd at level 1 keeps up with the disk where gzip (the only choice before 15) takes several
  // times longer than the copy itself; restore and verify read either, by the manifest's name.
  bool const zstd = std::atoi(installation.major.c_str()) >= 15;
  auto const file = folder / (zstd ? "postgres.tar.zst" : "postgres.tar.gz");
  std::vector<std::string> const args = {"-D",  "-",
                                         "-Ft", zstd ? "--compress=client-zstd:level=1" : "-z",
                                         "-X",  "fetch",
                                         "-c",  "fast",
                                         "-v",  "-w",
                                         "-h",  source.socket_dir.string(),
                                         "-p",  std::to_string(source.port),
                                         "-U",  source.user};
  std::string output;
  int status = -1;
  try {
    bp::ipstream errors;
    auto environment = boost::this_process::environment();
    environment["PGPASSWORD"] = read_secret(source.password_file);
    bp::child child(program.string(), bp::args(args), bp::std_out > file, bp::std_err > errors, bp::std_in.close(),
                    bp::start_dir("/"), environment, DieWithParent{});
    for (std::string line; std::getline(errors, line);) output += line + "\n";
    child.wait();
    status = child.native_exit_code();
  } catch (bp::process_error const& e) {
    throw Error("cannot run " + program.string() + ": " + e.what());
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error("pg_basebackup failed:\n" + output +
                "HINT: check that PostgreSQL is running and that max_wal_senders allows one more connection");
  BaseBackup result;
  result.file = file.filename().string();
  result.version = installation.version;
  std::smatch match;
  if (std::regex_search(output, match, std::regex(R"(start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+))"))) {
    result.start_lsn = match[1];
    result.timeline = match[2];
  }
  if (std::regex_search(output, match, std::regex(R"(end point: ([0-9A-F]+/[0-9A-F]+))"))) result.stop_lsn = match[1];
  result.start_wal = segment_of(result.start_lsn, result.timeline);
  fsync_path(file);
  logger("backup")->debug("base backup taken start_lsn={} stop_lsn={}", result.start_lsn, result.stop_lsn);
  return result;
}

}  // namespace berth::backup::detail
