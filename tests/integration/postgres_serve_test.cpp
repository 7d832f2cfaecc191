// berth serve with its PostgreSQL cluster, as a user runs it: the first start creates the cluster
// and the declared databases, a restart reuses them, supervision survives kill -9 of the server,
// a kill -9 of berth leaves no server behind, WAL reaches the archive, migrate_on_start closes
// only the database whose migrations fail, and bad declarations fail before anything is created.
#include <signal.h>

#include <fstream>
#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "command_output.hpp"

#include "berth/postgres/wal_archive.hpp"
#include "berth/testing/eventually.hpp"
#include "berth/testing/process.hpp"
#include "berth/testing/raw_http.hpp"
#include "berth_instance.hpp"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string superuser(BerthInstance const& berth) {
  std::ifstream secret(berth.data_dir() / "secrets" / "postgres-superuser");
  std::string password;
  secret >> password;
  return "host=" + (berth.data_dir() / "run" / "postgres").string() +
         " user=berth dbname=postgres password=" + password;
}

std::optional<pid_t> postmaster_pid(BerthInstance const& berth) {
  std::ifstream file(berth.data_dir() / "postgres" / "postmaster.pid");
  long pid = 0;
  if (!(file >> pid)) return std::nullopt;
  return static_cast<pid_t>(pid);
}

bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  return std::getline(stat, line) && line[line.rfind(')') + 2] != 'Z';
}

std::string app_url(BerthInstance const& berth, std::string const& name) {
  auto url = berth.command({"db", "url", name});
  EXPECT_EQ(url.exit_code, 0) << url.output;
  return trimmed(url.output);
}

constexpr char two_apps[] = R"(postgres:
  enabled: true
databases:
  - name: shop
    extensions: [pgcrypto]
  - name: billing
    owner: billing_app
    connection_limit: 10
)";

TEST(PostgresServe, FirstStartCreatesClusterAndAppsAndARestartReusesThem) {
  BerthInstance berth(two_apps);
  EXPECT_TRUE(contains(berth.process().output(), "cluster created")) << berth.process().output();
  EXPECT_TRUE(contains(berth.process().output(), "created database billing owned by billing_app"));

  auto const shop = app_url(berth, "shop");
  EXPECT_EQ(trimmed(psql(shop, "SELECT current_user || ' ' || current_database()").output), "shop shop");
  ASSERT_EQ(psql(shop,
                 "CREATE TABLE orders (id serial PRIMARY KEY, token uuid DEFAULT gen_random_uuid()); "
                 "INSERT INTO orders DEFAULT VALUES")
                .exit_code,
            0);
  EXPECT_EQ(trimmed(psql(app_url(berth, "billing"), "SELECT current_user").output), "billing_app");

  // A new database: its URL, without the password, and the command that prints it whole.
  auto const created = berth.command({"db", "create", "ledger"});
  ASSERT_EQ(created.exit_code, 0) << created.output;
  auto const ledger = app_url(berth, "ledger");
  auto const password_at = ledger.find(':', ledger.find("://") + 3) + 1;
  auto const password = ledger.substr(password_at, ledger.find('@') - password_at);
  ASSERT_GE(password.size(), 16u) << ledger;
  EXPECT_TRUE(contains(created.output, "connection URL: " + ledger.substr(0, password_at) + "****@")) << created.output;
  EXPECT_TRUE(contains(created.output, "`berth db url ledger` prints it with the password")) << created.output;
  EXPECT_FALSE(contains(created.output, password)) << created.output;

  auto list = berth.command({"db", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_TRUE(std::regex_search(list.output, std::regex(R"(\nbilling +billing_app +[0-9.]+ [KM]iB +0 +10 +yes +open)")))
      << list.output;
  auto const listed = nlohmann::json::parse(berth.command({"db", "list", "--json"}).output);
  auto const billing = std::find_if(listed.begin(), listed.end(), [](auto const& d) { return d["name"] == "billing"; });
  ASSERT_NE(billing, listed.end()) << listed.dump();
  EXPECT_EQ((*billing)["owner"], "billing_app");
  EXPECT_EQ((*billing)["connection_limit"], 10);
  EXPECT_EQ((*billing)["declared"], true);
  EXPECT_EQ((*billing)["open"], true);
  auto status = berth.command({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_TRUE(contains(status.output, "postgres: running, PostgreSQL ")) << status.output;
  EXPECT_TRUE(contains(status.output, "database shop: ")) << status.output;

  auto const first_pid = postmaster_pid(berth);
  ASSERT_TRUE(first_pid);
  berth.process().send_signal(SIGTERM);
  EXPECT_EQ(berth.process().wait_exit(60s), 0);
  EXPECT_FALSE(alive(*first_pid));
  EXPECT_FALSE(fs::exists(berth.data_dir() / "postgres" / "postmaster.pid"));  // a clean shutdown
  EXPECT_EQ(berth.command({"status"}).exit_code, 3);

  berth.start();
  EXPECT_FALSE(contains(berth.process().output(), "cluster created")) << berth.process().output();
  EXPECT_FALSE(contains(berth.process().output(), "created role")) << berth.process().output();
  EXPECT_EQ(trimmed(psql(shop, "SELECT count(*) FROM orders").output), "1");
}

TEST(PostgresServe, RestartsAKilledServerAndClientsReconnect) {
  BerthInstance berth(two_apps);
  auto const url = app_url(berth, "shop");
  auto const first = postmaster_pid(berth);
  ASSERT_TRUE(first);

  ASSERT_EQ(::kill(*first, SIGKILL), 0);

  EXPECT_TRUE(eventually(60s, [&] {
    auto const now = postmaster_pid(berth);
    return now && *now != *first && psql(url, "SELECT 1").exit_code == 0;
  })) << berth.process().output();
  EXPECT_TRUE(contains(berth.process().output(), "postgres exited unexpectedly"));
  EXPECT_TRUE(contains(berth.process().output(), "signal=9"));
}

// /healthz tells the truth: a PostgreSQL that cannot serve (here its data directory damaged
// under it, as a restore --force over it once did) is a 503 naming the part and why.
TEST(PostgresServe, HealthzIs503WhilePostgresCannotServe) {
  BerthInstance berth(two_apps);
  auto health = [&] {
    auto const response = http_request("127.0.0.1", berth.port(), "GET", "/healthz");
    return response ? std::pair(response->status, nlohmann::json::parse(response->body)) : std::pair(0, nlohmann::json());
  };
  auto const [status, body] = health();
  EXPECT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["parts"]["postgres"]["status"], "ok") << body.dump();
  EXPECT_EQ(body["parts"]["registry"]["status"], "ok") << body.dump();

  auto const global = berth.data_dir() / "postgres" / "global";
  fs::rename(global, global.string() + ".moved");
  nlohmann::json unhealthy;
  EXPECT_TRUE(eventually(30s, [&] {
    auto const [now, reply] = health();
    unhealthy = reply;
    return now == 503;
  })) << unhealthy.dump();
  EXPECT_EQ(unhealthy["status"], "unhealthy");
  EXPECT_EQ(unhealthy["parts"]["postgres"]["status"], "unhealthy");
  EXPECT_TRUE(contains(unhealthy["parts"]["postgres"]["error"].get<std::string>(), "pg_filenode.map"))
      << unhealthy.dump();
  EXPECT_EQ(unhealthy["parts"]["registry"]["status"], "ok");
  EXPECT_TRUE(eventually(10s, [&] { return contains(berth.process().output(), "health postgres unhealthy"); }));

  fs::rename(global.string() + ".moved", global);
  EXPECT_TRUE(eventually(30s, [&] { return health().first == 200; }));
}

TEST(PostgresServe, KillNineOfBerthLeavesNoServerBehindAndTheNextStartServes) {
  BerthInstance berth(two_apps);
  auto const pid = postmaster_pid(berth);
  ASSERT_TRUE(pid);

  berth.kill_hard();

  EXPECT_TRUE(eventually(60s, [&] { return !alive(*pid); })) << "postgres outlived berth";
  berth.start();
  EXPECT_EQ(trimmed(psql(app_url(berth, "shop"), "SELECT 1").output), "1");
}

TEST(PostgresServe, ArchivesWalSegmentsOnTheBackupVolume) {
  BerthInstance berth("postgres:\n  enabled: true\n");
  auto const admin = superuser(berth);
  ASSERT_EQ(psql(admin, "CREATE TABLE filler AS SELECT generate_series(1, 10000) AS n").exit_code, 0);
  auto const switched = psql(admin, "SELECT pg_walfile_name(pg_switch_wal())");
  ASSERT_EQ(switched.exit_code, 0) << switched.output;
  auto const segment = trimmed(switched.output);

  EXPECT_TRUE(eventually(60s, [&] { return fs::exists(berth.backup_dir() / "wal" / segment); }))
      << berth.process().output();
  EXPECT_EQ(fs::file_size(berth.backup_dir() / "wal" / segment), 16u << 20);
  EXPECT_TRUE(eventually(30s, [&] { return contains(berth.command({"status"}).output, "last segment " + segment); }))
      << berth.command({"status"}).output;
}

// A failing archive is loud but not noisy: one warning (not one per retry), `berth status` and
// doctor say since when and why, /metrics counts the attempts; all of it clears once it works.
TEST(PostgresServe, AFailingWalArchiveIsOneWarningAndStatusSaysSinceWhen) {
  BerthInstance berth("postgres:\n  enabled: true\n");
  auto const admin = superuser(berth);
  auto const wal = berth.backup_dir() / "wal";
  ASSERT_TRUE(eventually(30s, [&] { return fs::exists(wal); }));
  fs::permissions(wal, fs::perms::owner_write, fs::perm_options::remove);  // the archiver is never root
  ASSERT_EQ(psql(admin, "CREATE TABLE t AS SELECT 1 AS x; SELECT pg_switch_wal()").exit_code, 0);

  auto const state = berth.data_dir() / "run" / "postgres" / "wal-archive-failure";
  EXPECT_TRUE(eventually(60s, [&] {
    auto const failing = postgres::read_archive_failure(state);
    return failing && failing->attempts >= 3;
  })) << berth.process().output();
  auto const status = berth.command({"status"});
  EXPECT_TRUE(contains(status.output, "wal archive: WAL archiving failing since ")) << status.output;
  EXPECT_TRUE(contains(status.output, "Permission denied")) << status.output;
  auto const doctor = berth.command({"doctor"});
  EXPECT_EQ(doctor.exit_code, 1) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "WAL archiving failing since")) << doctor.output;
  auto const metrics = http_request("127.0.0.1", berth.port(), "GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_TRUE(std::regex_search(metrics->body, std::regex(R"(\nberth_wal_archive_failing_attempts [1-9])")))
      << metrics->body;
  auto const log = berth.process().output();
  std::size_t reasons = 0;
  for (auto at = log.find("berth archive-wal:"); at != std::string::npos; at = log.find("berth archive-wal:", at + 1))
    ++reasons;
  EXPECT_EQ(reasons, 1u) << log;  // three attempts or more, one warning

  fs::permissions(wal, fs::perms::owner_write, fs::perm_options::add);
  // A new segment wakes the archiver, which otherwise waits a minute after three failures.
  ASSERT_EQ(psql(admin, "INSERT INTO t VALUES (2); SELECT pg_switch_wal()").exit_code, 0);
  EXPECT_TRUE(eventually(120s, [&] { return !fs::exists(state); })) << berth.process().output();
  EXPECT_FALSE(contains(berth.command({"status"}).output, "failing since"));
}

TEST(PostgresServe, MigrateOnStartClosesOnlyTheDatabaseWhoseMigrationsFail) {
  TempDir migrations;
  migrations.write("good/V1__orders.sql", "CREATE TABLE orders (id int PRIMARY KEY);\n");
  migrations.write("bad/V1__broken.sql", "CREATE TABLE fine (id int);\nCREATE TABLE broken (id nosuchtype);\n");
  BerthInstance berth(
      std::string("postgres:\n  enabled: true\ndatabases:\n") +
      "  - name: good\n    migrations: " + (migrations.path() / "good").string() + "\n    migrate_on_start: true\n" +
      "  - name: bad\n    migrations: " + (migrations.path() / "bad").string() + "\n    migrate_on_start: true\n");

  EXPECT_EQ(trimmed(psql(app_url(berth, "good"), "SELECT count(*) FROM orders").output), "0");
  auto const refused = psql(app_url(berth, "bad"), "SELECT 1");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(contains(refused.output, "is not currently accepting connections")) << refused.output;
  EXPECT_TRUE(contains(berth.process().output(), "database bad is closed: its migrations in"))
      << berth.process().output();
  EXPECT_TRUE(contains(berth.process().output(), "nosuchtype")) << berth.process().output();
  EXPECT_TRUE(contains(berth.command({"db", "list"}).output, "closed (migrations failed)"));
  auto const doctor = berth.command({"doctor"});
  EXPECT_EQ(doctor.exit_code, 1) << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "database bad is closed to connections: its migrations failed at start"))
      << doctor.output;
  EXPECT_TRUE(contains(doctor.output, "then `berth db migrate bad`")) << doctor.output;

  // berth db APP works on the declared database with its owner role and folder; a failed migrate
  // leaves it closed, a successful one opens it.
  auto const info = berth.command({"db", "info", "good"});
  EXPECT_EQ(info.exit_code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "| Success |")) << info.output;
  EXPECT_NE(berth.command({"db", "migrate", "bad"}).exit_code, 0);
  EXPECT_NE(psql(app_url(berth, "bad"), "SELECT 1").exit_code, 0);
  migrations.write("bad/V1__broken.sql", "CREATE TABLE fine (id int);\nCREATE TABLE broken (id int);\n");
  auto const fixed = berth.command({"db", "migrate", "bad"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.output;
  EXPECT_EQ(trimmed(psql(app_url(berth, "bad"), "SELECT count(*) FROM broken").output), "0");
  EXPECT_EQ(trimmed(psql(app_url(berth, "bad"), "SELECT tableowner FROM pg_tables WHERE tablename = 'broken'").output),
            "bad");

  // The service is not needed: with it stopped, berth db starts the cluster for the command.
  berth.process().send_signal(SIGTERM);
  ASSERT_EQ(berth.process().wait_exit(60s), 0);
  auto const offline = berth.command({"db", "validate", "good"});
  EXPECT_EQ(offline.exit_code, 0) << offline.output;
  auto const no_folder = berth.command({"db", "info", "undeclared"});
  EXPECT_EQ(no_folder.exit_code, 1);
  EXPECT_TRUE(contains(no_folder.output, "database undeclared has no migrations folder")) << no_folder.output;
}

TEST(PostgresServe, AnUnknownExtensionStopsTheStartAndCreatesNoDatabase) {
  TempDir dir;
  fs::permissions(dir.path(), fs::perms::others_exec, fs::perm_options::add);
  auto const config =
      dir.write("berth.yaml",
                "postgres:\n  enabled: true\ndatabases:\n  - name: shop\n  - name: geo\n"
                "    extensions: [postgis_nonexistent]\nvolumes:\n  primary: " +
                    (dir.path() / "var").string() + "\n  backup: " + (dir.path() / "backup").string() + "\n");

  auto const served = run({BERTH_BINARY, "--config", config.string(), "serve", "--listen", "127.0.0.1:0"});

  EXPECT_EQ(served.exit_code, 1);
  EXPECT_TRUE(contains(served.output, "PostgreSQL has no extension postgis_nonexistent (for geo)")) << served.output;
  auto const list = run({BERTH_BINARY, "--config", config.string(), "db", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_FALSE(contains(list.output, "\nshop ")) << list.output;
  EXPECT_TRUE(contains(list.output, "shop: declared but not created yet")) << list.output;
}

TEST(PostgresServe, HostileDatabaseNamesAreRefusedWithTheirLine) {
  TempDir dir;
  auto const config = dir.write("berth.yaml", "databases:\n  - name: shop\n  - name: \"a;drop\"\n");
  auto const checked = run({BERTH_BINARY, "config", "check", config.string()});
  EXPECT_EQ(checked.exit_code, 1);
  EXPECT_TRUE(contains(checked.output, config.string() + ":3:5: databases[1]: database \"a;drop\" may only hold "
                                                         "lowercase letters a-z, digits and _"))
      << checked.output;
  auto const created = run(
      {BERTH_BINARY, "--config", dir.write("good.yaml", "log:\n  level: warn\n").string(), "db", "create", "x;drop"});
  EXPECT_EQ(created.exit_code, 1);
  EXPECT_TRUE(contains(created.output, "invalid database \"x;drop\" may only hold")) << created.output;
}

TEST(PostgresServe, RefusesADataDirectoryOfAnotherMajorVersion) {
  TempDir dir;
  fs::create_directories(dir.path() / "var" / "postgres");
  std::ofstream(dir.path() / "var" / "postgres" / "PG_VERSION") << "9.6\n";
  auto const config = dir.write("berth.yaml", "postgres:\n  enabled: true\n");
  auto const served = run({BERTH_BINARY, "--config", config.string(), "serve", "--listen", "127.0.0.1:0", "--data",
                           (dir.path() / "var").string(), "--backup", (dir.path() / "backup").string()});
  EXPECT_EQ(served.exit_code, 1);
  EXPECT_TRUE(contains(served.output, "it was created by PostgreSQL 9.6")) << served.output;
  EXPECT_TRUE(contains(served.output, "pg_upgrade")) << served.output;
}

}  // namespace
}  // namespace berth::testing
