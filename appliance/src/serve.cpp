// `berth serve`, read top to bottom: each step says why it is there.
#include "serve.hpp"

#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <nlohmann/json.hpp>

#include "applications.hpp"
#include "health.hpp"
#include "berth/core/log.hpp"
#include "berth/core/version.hpp"
#include "berth/postgres/cluster.hpp"
#include "berth/postgres/wal_archive.hpp"
#include "berth/proxy/access.hpp"
#include "berth/proxy/auth.hpp"
#include "berth/proxy/https_redirect.hpp"
#include "berth/proxy/metrics.hpp"
#include "berth/proxy/robots.hpp"
#include "berth/proxy/server.hpp"
#include "berth/registry/access.hpp"
#include "berth/registry/api.hpp"
#include "berth/registry/gc.hpp"
#include "berth/registry/storage.hpp"
#include "registry_commands.hpp"
#include "systemd_notify.hpp"
#include "tls_commands.hpp"
#include "volume_identity.hpp"
#include "volume_lock.hpp"

namespace berth::appliance {
namespace {

namespace fs = std::filesystem;

void make_volume_directory(fs::path const& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw Error("cannot create directory " + dir.string() + ": " + ec.message() +
                "\nHINT: check the volume is mounted and writable by the user berth runs as");
  auto perms = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec;
  // As root, PostgreSQL runs as another OS user that must pass through to its data directory.
  if (::geteuid() == 0) perms |= fs::perms::others_exec;
  fs::permissions(dir, perms, ec);
}

// PostgreSQL comes up before the front door, so READY means every part serves.
std::unique_ptr<postgres::Cluster> start_postgres(Config const& config) {
  auto cluster = std::make_unique<postgres::Cluster>(config.postgres);
  cluster->start();
  cluster->wait_ready();
  auto const closed = prepare_applications(config, *cluster);
  if (!closed.empty())
    notify_systemd("STATUS=migrations failed for " + std::to_string(closed.size()) + " database(s); see the log");
  return cluster;
}

bool is_loopback(std::string const& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

// 200 when every part serves, else 503 naming the part and why: what a load balancer, a
// monitoring probe or an operator's curl needs to see.
void add_health_route(proxy::Router& router, std::shared_ptr<Health const> health) {
  auto started = std::chrono::steady_clock::now();
  router.add(proxy::Method::get, "/healthz", [started, health](proxy::Request const&) -> proxy::Reply {
    auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
    bool healthy = true;
    auto parts = nlohmann::json::object();
    for (auto const& part : health->parts()) {
      healthy = healthy && part.ok;
      parts[part.name] = part.ok ? nlohmann::json{{"status", "ok"}}
                                 : nlohmann::json{{"status", "unhealthy"}, {"error", part.detail}};
    }
    nlohmann::json status = {{"status", healthy ? "ok" : "unhealthy"},
                             {"version", berth::version},
                             {"uptime_seconds", uptime.count()},
                             {"parts", parts}};
    auto response = proxy::json_response(healthy ? 200 : 503, status.dump() + "\n");
    response.headers.set("Cache-Control", "no-store");
    return response;
  });
}

// Access lines are JSON objects carrying their own time: no level or logger name in front, so
// each line parses as it is (journald adds its own timestamp anyway).
void use_json_access_log() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_pattern("%v");
  logger("access")->sinks() = {sink};
}

// GET /metrics for Prometheus, loopback only unless server.metrics says otherwise.
void add_metrics_route(proxy::Router& router, std::shared_ptr<proxy::Metrics const> metrics,
                       proxy::MetricsAccess access, std::shared_ptr<proxy::Authenticator const> const& authenticator) {
  if (access == proxy::MetricsAccess::off) return;
  router.add(proxy::Method::get, "/metrics", proxy::metrics_handler(std::move(metrics), access));
  if (access == proxy::MetricsAccess::authenticated && authenticator)
    router.add_guard("/metrics", [authenticator](proxy::Request const& request) {
      authenticator->authorize(request, std::nullopt);  // any signed-in user
    });
}

// Users in the htpasswd file or robots in the robots file turn authentication on; nullptr when
// there are neither.
std::shared_ptr<proxy::Authenticator const> make_authenticator(Config const& config) {
  auto const users = proxy::HtpasswdFile::read(htpasswd_file(config));
  // Read here too so that a robots file berth cannot use stops the start, as the htpasswd does.
  auto const robots = proxy::RobotsFile::read(robots_file(config));
  if (users.users().empty() && robots.robots().empty()) return nullptr;
  std::map<std::string, std::string> hash_by_user;
  for (auto const& user : users.users()) hash_by_user[user] = *users.hash_of(user);
  auto groups = proxy::GroupFile::read(groups_file(config)).groups();
  auto log = logger("berth");
  log->info("authentication is on users={} grants={} robots={} htpasswd={} robots_file={}", hash_by_user.size(),
            config.auth.access.size(), robots.robots().size(), htpasswd_file(config).string(),
            robots_file(config).string());
  // A grant naming someone who does not exist is likely a typo that silently grants nothing.
  // Robots may be added later without a restart, so a missing one is only worth a note.
  for (auto const& grant : config.auth.access) {
    for (auto const& user : grant.users) {
      if (auto const robot = proxy::robot_name_of(user)) {
        if (robots.find(*robot) == nullptr)
          log->info("access: robot {} is not in {} (yet)", *robot, robots_file(config).string());
      } else if (!hash_by_user.contains(user)) {
        log->warn("access: user {} is not in {}", user, htpasswd_file(config).string());
      }
    }
    for (auto const& group : grant.groups)
      if (!groups.contains(group) && std::none_of(robots.robots().begin(), robots.robots().end(), [&](auto& robot) {
            return std::find(robot.groups.begin(), robot.groups.end(), group) != robot.groups.end();
          }))
        log->warn("access: group {} is not in {}", group, groups_file(config).string());
  }
  // A user no grant names, directly or through a group, signs in and then may do nothing: every
  // push and pull of theirs is refused. Say so now, with the grant that would help.
  auto const named = [&](std::string const& user) {
    return std::any_of(config.auth.access.begin(), config.auth.access.end(), [&](proxy::Grant const& grant) {
      if (std::find(grant.users.begin(), grant.users.end(), user) != grant.users.end()) return true;
      return std::any_of(grant.groups.begin(), grant.groups.end(), [&](std::string const& group) {
        auto const members = groups.find(group);
        return members != groups.end() &&
               std::find(members->second.begin(), members->second.end(), user) != members->second.end();
      });
    });
  };
  std::string namespaces;
  for (auto const& name : config.registry.namespaces) namespaces += (namespaces.empty() ? "" : ", ") + name;
  for (auto const& [user, hash] : hash_by_user)
    if (!named(user))
      log->warn("access: user {} has no grant, so every request of theirs is refused; give one under access: in "
                "{} (e.g. - users: [{}]  actions: [pull, push]  repositories: [{}]) and restart berth",
                user, config.source.empty() ? std::string("the configuration") : config.source.string(), user,
                namespaces);
  auto tokens = config.auth.tokens;
  if (config.server.tls.enabled) tokens.scheme = "https";  // the realm clients fetch tokens from
  // The robots file is followed while serving: `berth robot` changes apply without a restart.
  auto robot_checker = std::make_shared<proxy::RobotChecker const>(robots_file(config), robot_last_use_file(config));
  return std::make_shared<proxy::Authenticator const>(
      tokens, std::make_shared<proxy::PasswordChecker const>(std::move(hash_by_user)),
      proxy::AccessPolicy(config.auth.access, std::move(groups)),
      proxy::TokenKey::load_or_create(token_key_file(config)), std::move(robot_checker));
}

}  // namespace

int serve(Config const& given) {
  auto config = given;
  auto log = logger("berth");
  log->info("starting berth {} pid={}", berth::version, ::getpid());
  std::istringstream summary(describe(config));
  for (std::string line; std::getline(summary, line);) log->info("config {}", line);

  // Without users only loopback may be served (dev mode); a bad user file stops the start.
  auto authenticator = make_authenticator(config);
  if (!authenticator && !is_loopback(config.server.host))
    throw Error("refusing to serve on " + config.server.host + ":" + std::to_string(config.server.port) +
                " without authentication\nHINT: add users with `berth user add NAME` (file " +
                htpasswd_file(config).string() + "), or listen on 127.0.0.1 (server.listen or --listen)");
  if (!authenticator)
    log->warn("authentication is OFF: anyone who can reach {}:{} can use the registry (dev mode, loopback only)",
              config.server.host, config.server.port);

  // A file size limit (ulimit -f) must fail the write that hits it, not kill the service.
  std::signal(SIGXFSZ, SIG_IGN);

  // The volume layout exists before anything writes to it; the lock keeps a second instance out.
  auto run_dir = config.primary / "run";
  make_volume_directory(config.primary);
  make_volume_directory(run_dir);
  VolumeLock lock(run_dir / "berth.lock");

  // A restored copy served on the original's backup volume must not archive into the original's
  // WAL archive: only the owner of the backup volume archives there. The first start makes this
  // volume's identity and claims a backup volume nobody owns yet.
  // A backup volume that cannot be read or written (a disk not mounted) does not keep the
  // registry from serving: archiving then fails, and says so, as it would anyway.
  try {
    if (!owns_backup_volume(config.primary, config.backup)) {
      log->error("{}", foreign_backup_volume_problem(config.primary, config.backup));
      config.postgres.wal_archive_dir.clear();
    }
  } catch (std::exception const& error) {
    log->error("cannot check who owns the backup volume {}: {}", config.backup.string(), error.what());
  }

  // Clear crashed staging files and expired uploads before accepting new ones.
  registry::Storage registry_storage(config.registry);
  registry_storage.recover();
  if (auto put_back = registry::recover_interrupted_gc(registry_storage))
    log->warn("put back {} registry objects an interrupted garbage collection had moved aside", put_back);
  auto gc_job = schedule_gc(config, registry_storage);  // these stop before the storage goes
  auto scrub_job = schedule_scrub(config, registry_storage);

  // Every module registers its routes before the first connection is accepted.
  proxy::Router router;
  auto health = std::make_shared<Health>(config.registry.root, config.postgres_enabled);
  add_health_route(router, health);
  if (authenticator) proxy::add_authentication(router, authenticator, "/v2/", registry::required_access);
  registry::add_routes(router, registry_storage);
  auto metrics = std::make_shared<proxy::Metrics>();
  if (config.postgres_enabled && !config.postgres.wal_archive_dir.empty())
    metrics->add_gauge("berth_wal_archive_failing_attempts",
                       "Failed attempts to archive WAL since archiving last worked (0: it works).",
                       [file = postgres::archive_failure_file(config.postgres.socket_dir)] {
                         auto const failing = postgres::read_archive_failure(file);
                         return failing ? static_cast<double>(failing->attempts) : 0.0;
                       });
  add_metrics_route(router, metrics, config.server.metrics, authenticator);
  if (config.server.access_log) use_json_access_log();

  // TLS: the operator's certificate, or one from berth's own CA (made on first start, renewed
  // before it expires). A plain listener beside it answers health checks and sends the rest to https.
  auto server_config = config.server;
  if (server_config.tls.enabled) server_config.tls = prepare_tls(config);
  if (config.http_redirect && !server_config.tls.enabled)
    throw Error(
        "server.http_redirect_listen redirects to https, but server.tls.enabled is false\nHINT: enable TLS "
        "or remove server.http_redirect_listen");

  // Routes to the team's other apps are served by the front door before berth's own paths;
  // config loading has made sure none takes the registry's paths on berth's own names.
  for (auto const& route : config.server.routes)
    log->info("route host={} path_prefix={} upstream={} strip_prefix={} timeout={}s", route.host, route.path_prefix,
              route.upstream_url(), route.strip_prefix, route.timeout.count());

  // Bind before telling systemd we are ready: connections queue in the backlog meanwhile.
  proxy::Server server(server_config, std::move(router), metrics);
  if (config.http_redirect) {
    proxy::Router redirect_router;
    add_health_route(redirect_router, health);
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
  // systemd's watchdog (WatchdogSec=): keepalives come from the event loop, so a wedged loop
  // gets the service restarted rather than left hanging.
  if (auto interval = watchdog_interval()) {
    log->info("systemd watchdog on ping_interval_ms={}", interval->count());
    server.on_heartbeat(*interval, [] { notify_systemd("WATCHDOG=1"); });
  }

  // After the bind, so a taken port fails fast; clients queue in the backlog meanwhile.
  std::unique_ptr<postgres::Cluster> cluster;  // stopped (fast shutdown) after the front door
  // Declared after the cluster, so gone before it however serve ends: no probe reaches a
  // cluster that is stopping or gone.
  struct Unwatch {
    Health& health;
    ~Unwatch() { health.watch_postgres(nullptr); }
  } const unwatch{*health};
  if (config.postgres_enabled) {
    cluster = start_postgres(config);
    health->watch_postgres(cluster.get());
  } else {
    log->info("postgres disabled (postgres.enabled: false)");
  }
  notify_systemd("READY=1\nSTATUS=serving on " + server.local_address());
  server.run();
  health->watch_postgres(nullptr);
  cluster.reset();
  log->info("berth stopped");
  return 0;
}

}  // namespace berth::appliance
