// `berth serve`, read top to bottom: each step says why it is there.
#include "serve.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "berth/core/log.hpp"
#include "berth/core/version.hpp"
#include "berth/proxy/https_redirect.hpp"
#include "berth/proxy/server.hpp"
#include "berth/registry/api.hpp"
#include "berth/registry/storage.hpp"
#include "systemd_notify.hpp"
#include "tls_commands.hpp"

namespace berth::appliance {
namespace {

namespace fs = std::filesystem;

void make_volume_directory(fs::path const& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw Error("cannot create directory " + dir.string() + ": " + ec.message() +
                "\nHINT: check the volume is mounted and writable by the user berth runs as");
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec, ec);
}

// An exclusive lock on the primary volume for as long as the process lives: two services on
// one volume would corrupt each other's state.
class VolumeLock {
public:
  explicit VolumeLock(fs::path const& file) {
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd_ < 0) throw Error("cannot open lock file " + file.string() + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char holder[32] = {};
      auto got = ::pread(fd_, holder, sizeof holder - 1, 0);
      ::close(fd_);
      throw Error("another berth serve is already running on this volume (lock " + file.string() +
                  (got > 0 ? ", pid " + std::string(holder, static_cast<std::size_t>(got)) : std::string()) +
                  ")\nHINT: stop it first (systemctl stop berth), or give this one another --data");
    }
    auto pid = std::to_string(::getpid());
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0)
      logger("berth")->warn("cannot record pid in lock file {}", file.string());
  }
  ~VolumeLock() { ::close(fd_); }
  VolumeLock(VolumeLock const&) = delete;
  VolumeLock& operator=(VolumeLock const&) = delete;

private:
  int fd_ = -1;
};

bool is_loopback(std::string const& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

void add_health_route(proxy::Router& router) {
  auto started = std::chrono::steady_clock::now();
  router.add(proxy::Method::get, "/healthz", [started](proxy::Request const&) -> proxy::Reply {
    auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
    nlohmann::json status = {{"status", "ok"}, {"version", berth::version}, {"uptime_seconds", uptime.count()}};
    auto response = proxy::json_response(200, status.dump() + "\n");
    response.headers.set("Cache-Control", "no-store");
    return response;
  });
}

}  // namespace

int serve(Config const& config) {
  auto log = logger("berth");
  log->info("starting berth {} pid={}", berth::version, ::getpid());
  std::istringstream summary(describe(config));
  for (std::string line; std::getline(summary, line);) log->info("config {}", line);

  // Authentication arrives with the front door; until then only loopback may be served.
  if (!is_loopback(config.server.host))
    throw Error("refusing to serve on " + config.server.host + ":" + std::to_string(config.server.port) +
                " without authentication\nHINT: listen on 127.0.0.1 (server.listen or --listen) until users "
                "are configured");
  log->warn("authentication is OFF: anyone who can reach {}:{} can use the registry (dev mode, loopback only)",
            config.server.host, config.server.port);

  // A file size limit (ulimit -f) must fail the write that hits it, not kill the service.
  std::signal(SIGXFSZ, SIG_IGN);

  // The volume layout exists before anything writes to it; the lock keeps a second instance out.
  auto run_dir = config.primary / "run";
  make_volume_directory(config.primary);
  make_volume_directory(run_dir);
  VolumeLock lock(run_dir / "berth.lock");

  // Clear crashed staging files and expired uploads before accepting new ones.
  registry::Storage registry_storage(config.registry);
  registry_storage.recover();

  // Every module registers its routes before the first connection is accepted.
  proxy::Router router;
  add_health_route(router);
  registry::add_routes(router, registry_storage);

  // TLS: the operator's certificate, or one from berth's own CA (made on first start, renewed
  // before it expires). A plain listener beside it answers health checks and sends the rest to https.
  auto server_config = config.server;
  if (server_config.tls.enabled) server_config.tls = prepare_tls(config);
  if (config.http_redirect && !server_config.tls.enabled)
    throw Error(
        "server.http_redirect_listen redirects to https, but server.tls.enabled is false\nHINT: enable TLS "
        "or remove server.http_redirect_listen");

  // Bind before telling systemd we are ready: connections queue in the backlog meanwhile.
  proxy::Server server(server_config, std::move(router));
  if (config.http_redirect) {
    proxy::Router redirect_router;
    add_health_route(redirect_router);
    redirect_router.add_prefix("/", proxy::https_redirect(server.local_port()));
    server.add_plain_listener(config.http_redirect->host, config.http_redirect->port, std::move(redirect_router));
  }
  if (server_config.tls.enabled) {
    // SIGHUP serves a renewed certificate (or re-issues berth's own) without a restart.
    server.on_sighup([&server, &config, log] {
      try {
        server.reload_tls(prepare_tls(config));
      } catch (std::exception const& error) {
        log->error("tls reload failed, keeping the current certificate error=\"{}\"", error.what());
      }
    });
  }
  server.stop_on_signals();
  server.on_stopping([] { notify_systemd("STOPPING=1"); });
  notify_systemd("READY=1\nSTATUS=serving on " + server.local_address());
  server.run();
  log->info("berth stopped");
  return 0;
}

}  // namespace berth::appliance
