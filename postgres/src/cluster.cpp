#include "berth/postgres/cluster.hpp"
#include "berth/postgres/databases.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/process/args.hpp>
#include <boost/process/async.hpp>
#include <boost/process/async_pipe.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/environment.hpp>
#include <boost/process/io.hpp>
#include <boost/process/start_dir.hpp>
#include <pqxx/pqxx>

#include "berth/core/log.hpp"
#include "berth/core/random.hpp"
#include "command.hpp"
#include "files.hpp"
#include "os_user.hpp"
#include "server_settings.hpp"

namespace berth::postgres {

namespace fs = std::filesystem;
namespace bp = boost::process;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using detail::fsync_path;
using detail::read_trimmed;
using detail::write_private_file;

namespace {

constexpr char superuser[] = "berth";
constexpr char password_file[] = "postgres-superuser";
constexpr std::size_t kept_lines = 20;  // printed when the server dies unexpectedly

std::string describe_status(int status) {
  if (WIFSIGNALED(status))
    return "signal=" + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  if (WIFEXITED(status)) return "code=" + std::to_string(WEXITSTATUS(status));
  return "status=" + std::to_string(status);
}

// What the archiver prints while archive_command fails: berth archive-wal's reason, then the
// server's own lines about it. It retries every few seconds for as long as the failure lasts.
bool is_archive_failure(std::string const& line) {
  for (char const* marker : {"berth archive-wal:", "archive command failed", "failed archive command",
                             "archiving write-ahead log file"})
    if (line.find(marker) != std::string::npos) return true;
  return false;
}

spdlog::level::level_enum level_of(std::string const& line) {
  // wait_ready()'s own early connection attempts make the server print these; they are expected.
  for (char const* probe : {"the database system is starting up", "the database system is not yet accepting"})
    if (line.find(probe) != std::string::npos) return spdlog::level::debug;
  for (char const* marker : {"PANIC:", "FATAL:", "ERROR:"})
    if (line.find(marker) != std::string::npos) return spdlog::level::err;
  if (line.find("WARNING:") != std::string::npos) return spdlog::level::warn;
  return spdlog::level::info;
}

}  // namespace

// One spawned postmaster, its output pipes and what it last printed. Lives on the io thread;
// the handlers that may outlive it hold a shared_ptr.
struct Server {
  explicit Server(asio::io_context& ioc) : out(ioc), err(ioc), linger(ioc) {}
  bp::async_pipe out;
  bp::async_pipe err;
  asio::streambuf out_buffer;
  asio::streambuf err_buffer;
  bp::child child;
  pid_t pid = 0;
  Clock::time_point started = Clock::now();
  std::deque<std::string> last_lines;
  int open_streams = 2;
  bool exited = false;
  bool finished = false;
  int status = 0;
  asio::steady_timer linger;  // bounds the wait for pipe EOF after exit (orphaned backends keep them open)
};

struct Cluster::Impl {
  Config config;
  Installation installation;
  detail::OsUser user;
  std::shared_ptr<spdlog::logger> log = berth::logger("postgres");
  Clock::time_point last_archive_warning{};  // on the io thread, as log_line
  static constexpr auto archive_warning_interval = std::chrono::minutes(5);

  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
  asio::steady_timer restart_timer{ioc};
  std::thread io_thread;

  // io thread only
  std::shared_ptr<Server> server;
  bool wanted = false;  // the server should be running: an exit is unexpected
  std::chrono::milliseconds backoff{0};

  mutable std::mutex mutex;  // guards the fields below
  std::condition_variable changed;
  std::optional<pid_t> pid;
  bool alive = false;    // a spawned server has not finished yet
  bool started = false;  // between start() and stop()
  std::atomic<unsigned> restarts{0};

  fs::path password_path() const { return config.secrets_dir / password_file; }

  // Runs `task` on the io thread and waits for it, rethrowing what it throws.
  template <class Task>
  void run_on_io(Task task) {
    std::promise<void> done;
    asio::post(ioc, [&] {
      try {
        task();
        done.set_value();
      } catch (...) {
        done.set_exception(std::current_exception());
      }
    });
    done.get_future().get();
  }

  void spawn() {
    auto next = std::make_shared<Server>(ioc);
    std::vector<std::string> args{"-D", config.data_dir.string(),   "-k", config.socket_dir.string(),
                                  "-p", std::to_string(config.port)};
    auto const settings = detail::server_arguments(config, detail::physical_memory());
    args.insert(args.end(), settings.begin(), settings.end());
    // The server must not speak systemd's notify protocol for berth: Debian's postgres sends its
    // own READY=1 when it finds NOTIFY_SOCKET, and berth alone answers the watchdog.
    auto environment = boost::this_process::environment();
    for (auto const* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})
      if (environment.find(name) != environment.end()) environment.erase(name);
    try {
      next->child =
          bp::child(installation.binary("postgres").string(), bp::args(args), environment, bp::std_out > next->out,
                    bp::std_err > next->err, bp::std_in.close(), bp::start_dir("/"), ioc,
                    bp::on_exit([this, next](int, std::error_code const&) { on_exit(next); }), detail::RunAs(&user));
    } catch (bp::process_error const& e) {
      throw Error("cannot start " + installation.binary("postgres").string() + ": " + e.what());
    }
    // Boost.Process closed our write ends on success: EOF now means every holder (the postmaster
    // and any backend it forked) has exited.
    next->pid = next->child.id();
    read_lines(next, next->out, next->out_buffer);
    read_lines(next, next->err, next->err_buffer);
    server = next;
    log->info("postgres started pid={} version={} data_dir={}", next->pid, installation.version,
              config.data_dir.string());
    std::lock_guard lock(mutex);
    pid = next->pid;
    alive = true;
  }

  void read_lines(std::shared_ptr<Server> const& s, bp::async_pipe& pipe, asio::streambuf& buffer) {
    asio::async_read_until(pipe, buffer, '\n', [this, s, &pipe, &buffer](boost::system::error_code ec, std::size_t n) {
      if (ec) {
        if (buffer.size() > 0)
          log_line(*s, std::string(asio::buffers_begin(buffer.data()), asio::buffers_end(buffer.data())));
        --s->open_streams;
        maybe_finish(s);
        return;
      }
      std::string line(asio::buffers_begin(buffer.data()), asio::buffers_begin(buffer.data()) + n - 1);
      buffer.consume(n);
      log_line(*s, line);
      read_lines(s, pipe, buffer);
    });
  }

  void log_line(Server& s, std::string const& line) {
    auto level = level_of(line);
    if (is_archive_failure(line)) {
      // A warning for the first line of a failure and then one every five minutes, not one per
      // retry; `berth status` and doctor say since when it fails, /metrics counts the attempts.
      auto const now = Clock::now();
      if (now - last_archive_warning >= archive_warning_interval) {
        level = spdlog::level::warn;
        last_archive_warning = now;
      } else {
        level = spdlog::level::debug;
      }
    }
    log->log(level, "{}", line);
    s.last_lines.push_back(line);
    if (s.last_lines.size() > kept_lines) s.last_lines.pop_front();
  }

  void on_exit(std::shared_ptr<Server> const& s) {
    s->exited = true;
    s->status = s->child.native_exit_code();
    {
      std::lock_guard lock(mutex);
      pid.reset();
    }
    s->linger.expires_after(5s);
    s->linger.async_wait([this, s](boost::system::error_code ec) {
      if (ec) return;
      boost::system::error_code ignored;
      s->out.close(ignored);
      s->err.close(ignored);
    });
    maybe_finish(s);
  }

  // After exit and the end of its output (or the linger timeout): log, then restart if unexpected.
  void maybe_finish(std::shared_ptr<Server> const& s) {
    if (!s->exited || s->open_streams > 0 || s->finished) return;
    s->finished = true;
    s->linger.cancel();
    if (server == s) server.reset();
    if (wanted) {
      auto const uptime = Clock::now() - s->started;
      log->error("postgres exited unexpectedly pid={} {} uptime_ms={}", s->pid, describe_status(s->status),
                 std::chrono::duration_cast<std::chrono::milliseconds>(uptime).count());
      for (auto const& line : s->last_lines) log->error("postgres last output: {}", line);
      // A server that ran for a while earns a fresh, short delay; a crash loop backs off.
      if (uptime > config.restart_backoff_max || backoff.count() == 0)
        backoff = config.restart_backoff_min;
      else
        backoff = std::min(backoff * 2, config.restart_backoff_max);
      schedule_restart();
    } else {
      log->info("postgres stopped pid={} {}", s->pid, describe_status(s->status));
    }
    std::lock_guard lock(mutex);
    alive = false;
    changed.notify_all();
  }

  void schedule_restart() {
    log->warn("postgres restart scheduled delay_ms={}", backoff.count());
    restart_timer.expires_after(backoff);
    restart_timer.async_wait([this](boost::system::error_code ec) {
      if (ec || !wanted) return;
      try {
        spawn();
        ++restarts;
      } catch (Error const& e) {
        log->error("{}", e.what());
        backoff = std::min(backoff * 2, config.restart_backoff_max);
        schedule_restart();
      }
    });
  }

  void signal_server(int signal_number) {
    if (server && !server->exited) ::kill(server->pid, signal_number);
  }

  Initialized initialize();
  void create(fs::path const& pg_version);
  void stop_orphan();
};

namespace {

// Alive and not a zombie waiting for its reaper.
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto const close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

}  // namespace

// A server left behind by a berth that died before it could stop it (the parent-death signal
// covers kill -9, not every crash) still holds the data directory. berth holds the volume lock,
// so such a server is ours: it gets a fast shutdown before the new one starts.
void Cluster::Impl::stop_orphan() {
  std::ifstream pid_file(config.data_dir / "postmaster.pid");
  long pid = 0;
  if (!(pid_file >> pid) || pid <= 0 || !running(static_cast<pid_t>(pid))) return;
  std::error_code ec;
  auto const exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
  if (ec || exe.filename() != "postgres") return;  // a recycled pid: postgres itself sorts out the stale file
  log->warn("stopping a PostgreSQL server left running on {} pid={}", config.data_dir.string(), pid);
  for (int signal_number : {SIGINT, SIGQUIT, SIGKILL}) {
    ::kill(static_cast<pid_t>(pid), signal_number);
    auto const deadline = Clock::now() + (signal_number == SIGINT ? config.stop_timeout : 10s);
    for (auto pause = 5ms; running(static_cast<pid_t>(pid)) && Clock::now() < deadline;
         pause = std::min(pause * 2, 200ms))
      std::this_thread::sleep_for(pause);  // polling an unrelated process's exit; no way to wait on it
    if (!running(static_cast<pid_t>(pid))) return;
  }
  throw Error("cannot stop the PostgreSQL server pid=" + std::to_string(pid) + " running on " +
              config.data_dir.string() + "\nHINT: stop it by hand (kill " + std::to_string(pid) +
              "), then start berth");
}

Cluster::Cluster(Config config) : impl_(std::make_unique<Impl>()) {
  auto& d = *impl_;
  // Absolute paths: postgres runs in "/", and its -D/-k must not depend on berth's cwd.
  config.data_dir = fs::absolute(config.data_dir).lexically_normal();
  config.socket_dir = fs::absolute(config.socket_dir).lexically_normal();
  config.secrets_dir = fs::absolute(config.secrets_dir).lexically_normal();
  if (!config.wal_archive_dir.empty()) {
    config.wal_archive_dir = fs::absolute(config.wal_archive_dir).lexically_normal();
    if (config.archiver_program.empty()) config.archiver_program = fs::read_symlink("/proc/self/exe");
  }
  if (config.data_dir.filename().empty()) config.data_dir = config.data_dir.parent_path();
  d.config = std::move(config);
  d.installation = find_installation_for(d.config.data_dir, d.config.bin_dir);
  d.user = detail::resolve_os_user(d.config.os_user);
  detail::check_settings(d.installation, d.config.settings);
  d.io_thread = std::thread([&d] { d.ioc.run(); });
}

Cluster::~Cluster() {
  stop();
  impl_->work.reset();
  impl_->ioc.stop();
  impl_->io_thread.join();
}

Installation const& Cluster::installation() const {
  return impl_->installation;
}

Initialized Cluster::initialize() {
  return impl_->initialize();
}

Initialized Cluster::Impl::initialize() {
  auto const pg_version = config.data_dir / "PG_VERSION";
  if (fs::exists(pg_version)) {
    auto const major = read_trimmed(pg_version);
    if (major != installation.major)
      throw VersionMismatch(
          "cannot start the cluster in " + config.data_dir.string() + ": it was created by PostgreSQL " + major +
          ", but the installed server is PostgreSQL " + installation.major + " (" + installation.bin_dir.string() +
          ")\nHINT: a data directory only runs with its own major version; upgrade it with "
          "pg_upgrade: install the server of PostgreSQL " +
          major + " alongside, stop berth, then run pg_upgradecluster " + major +
          " (Debian/Ubuntu) or pg_upgrade --old-bindir=<" + major +
          " bin> --new-bindir=" + installation.bin_dir.string() + " --old-datadir=" + config.data_dir.string() +
          " --new-datadir=<new dir>, and point berth at the upgraded directory");
    detail::check_traversable(user, config.data_dir);
    detail::check_traversable(user, config.socket_dir);
    return Initialized::existing;
  }
  create(pg_version);
  return Initialized::created;
}

void Cluster::Impl::create(fs::path const& pg_version) {
  auto const& data_dir = config.data_dir;
  if (fs::exists(data_dir) && !fs::is_empty(data_dir))
    throw Error("cannot create a cluster in " + data_dir.string() + ": it is not empty and has no PG_VERSION" +
                "\nHINT: move its content away, or point postgres.data_dir at an empty or missing directory");
  // Refuse before writing anything, so a misplaced data dir leaves no trace.
  detail::check_traversable(user, data_dir);
  detail::check_traversable(user, config.socket_dir);

  auto const began = Clock::now();
  auto const parent = data_dir.parent_path();
  fs::create_directories(parent);
  fs::create_directories(config.secrets_dir);
  fs::permissions(config.secrets_dir, fs::perms::owner_all);
  // 48 hex characters: nothing to quote in a pwfile or a connection string.
  write_private_file(password_path(), random_hex(24) + "\n");

  // initdb writes into a sibling that is renamed into place at the end: a crash or failure in
  // between leaves no directory that looks like a cluster.
  auto const staging = parent / ("." + data_dir.filename().string() + ".initdb");
  auto const pwfile = parent / ("." + data_dir.filename().string() + ".pwfile");
  struct Cleanup {
    fs::path staging, pwfile;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(staging, ignored);
      fs::remove(pwfile, ignored);
    }
  } cleanup{staging, pwfile};
  write_private_file(pwfile, read_trimmed(password_path()) + "\n", &user);

  auto run_initdb = [&](std::string const& locale) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    fs::create_directory(staging);
    fs::permissions(staging, fs::perms::owner_all);
    detail::give_to(user, staging);
    return detail::run_command(
        installation.binary("initdb"),
        {"-D", staging.string(), "--data-checksums", "-E", "UTF8", "--locale=" + locale, "--auth-local=scram-sha-256",
         "--auth-host=scram-sha-256", "-U", superuser, "--pwfile=" + pwfile.string()},
        &user);
  };
  auto result = run_initdb("C.UTF-8");
  if (result.exit_code != 0 && result.output.find("locale") != std::string::npos) {
    log->warn("initdb rejected locale C.UTF-8, using C");
    result = run_initdb("C");
  }
  if (result.exit_code != 0)
    throw Error("cannot create the cluster in " + data_dir.string() + ": initdb exited with code " +
                std::to_string(result.exit_code) + ":\n" + result.output);
  if (fs::exists(data_dir)) fs::remove(data_dir);  // empty (checked above); rename needs the name free
  fs::rename(staging, data_dir);
  fsync_path(parent);
  if (!fs::exists(pg_version)) throw Error("initdb left no " + pg_version.string());
  log->info("cluster created data_dir={} version={} os_user={} ms={}", data_dir.string(), installation.version,
            user.name, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began).count());
}

void Cluster::start() {
  auto& d = *impl_;
  {
    std::lock_guard lock(d.mutex);
    if (d.started) return;
  }
  d.initialize();
  d.stop_orphan();
  write_private_file(detail::hba_file(d.config), detail::hba_rules(d.config), &d.user);
  fs::create_directories(d.config.socket_dir);
  detail::give_to(d.user, d.config.socket_dir);
  if (!d.config.wal_archive_dir.empty()) {
    // The archiver runs as the server's OS user: it must reach berth and write the archive.
    detail::check_traversable(d.user, d.config.archiver_program);
    detail::check_traversable(d.user, d.config.wal_archive_dir);
    fs::create_directories(d.config.wal_archive_dir);
    detail::give_to(d.user, d.config.wal_archive_dir);
  }
  d.run_on_io([&d] {
    d.backoff = 0ms;
    d.spawn();
    d.wanted = true;
  });
  std::lock_guard lock(d.mutex);
  d.started = true;
}

void Cluster::wait_ready() {
  wait_ready(Clock::now() + impl_->config.start_timeout);
}

void Cluster::wait_ready(Clock::time_point deadline) {
  auto const began = Clock::now();
  auto const conninfo = connection_string() + " connect_timeout=2";
  std::string last_error;
  for (auto pause = 2ms;; pause = std::min(pause * 2, 20ms)) {  // connecting to a starting server is cheap
    try {
      pqxx::connection connection(conninfo);
      impl_->log->info("postgres ready socket_dir={} ms={}", impl_->config.socket_dir.string(),
                       std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began).count());
      return;
    } catch (std::exception const& e) {
      last_error = e.what();
    }
    if (Clock::now() + pause >= deadline) break;
    std::this_thread::sleep_for(pause);  // polling interval between connection attempts
  }
  last_error.erase(last_error.find_last_not_of(" \n") + 1);
  throw Error("postgres did not accept connections on " + impl_->config.socket_dir.string() + " within " +
              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began).count()) +
              " ms: " + last_error + "\nHINT: the postgres log lines above say why");
}

std::optional<std::string> Cluster::probe() const {
  if (!pid()) return "not running (restart " + std::to_string(restart_count()) + " pending)";
  try {
    pqxx::connection connection(connection_string() + " connect_timeout=2");
    pqxx::nontransaction query(connection);
    query.exec("SELECT 1");
    return std::nullopt;
  } catch (std::exception const& e) {
    std::string why = e.what();
    why.erase(why.find_last_not_of(" \n") + 1);
    return why;
  }
}

void Cluster::stop() noexcept {
  auto& d = *impl_;
  {
    std::lock_guard lock(d.mutex);
    if (!d.started) return;
  }
  try {
    d.run_on_io([&d] {
      d.wanted = false;
      d.restart_timer.cancel();
      d.signal_server(SIGINT);  // fast shutdown: abort transactions, checkpoint, exit
    });
    std::unique_lock lock(d.mutex);
    if (!d.changed.wait_for(lock, d.config.stop_timeout, [&d] { return !d.alive; })) {
      d.log->warn("postgres did not stop within {} s, sending SIGKILL", d.config.stop_timeout.count());
      lock.unlock();
      d.run_on_io([&d] { d.signal_server(SIGKILL); });
      lock.lock();
      if (!d.changed.wait_for(lock, 10s, [&d] { return !d.alive; }))
        d.log->error("postgres pid={} did not exit after SIGKILL", d.pid.value_or(0));
    }
    d.started = false;
  } catch (std::exception const& e) {
    d.log->error("cannot stop postgres: {}", e.what());
  }
}

std::optional<pid_t> Cluster::pid() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->pid;
}

unsigned Cluster::restart_count() const {
  return impl_->restarts.load();
}

std::string Cluster::connection_string(std::string const& database) const {
  auto const& config = impl_->config;
  return socket_connection_string(config.socket_dir, config.port, superuser, database,
                                  read_trimmed(impl_->password_path()));
}

}  // namespace berth::postgres
