// Per-application databases and roles on a real cluster: converge creates what is declared and
// nothing more, a second run changes nothing, the stored passwords log in, other apps' roles stay
// out, and bad declarations are refused before anything is created.
#include "berth/postgres/databases.hpp"

#include <sys/stat.h>

#include <memory>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "berth/postgres/cluster.hpp"
#include "berth/testing/error_of.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::postgres {
namespace {

namespace fs = std::filesystem;

using testing::error_of;

class DatabasesTest : public ::testing::Test {
protected:
  // One server for the suite: initdb takes seconds, and every test uses its own names.
  static void SetUpTestSuite() {
    temp_ = new testing::TempDir;
    fs::permissions(temp_->path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    config_.data_dir = temp_->path() / "postgres";
    config_.socket_dir = temp_->path() / "run";
    config_.secrets_dir = temp_->path() / "secrets";
    cluster_ = new Cluster(config_);
    cluster_->start();
    cluster_->wait_ready();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete temp_;
  }

  static std::string superuser(std::string const& database = "postgres") {
    return cluster_->connection_string(database);
  }
  static std::string scalar(std::string const& conninfo, std::string const& sql) {
    pqxx::connection connection(conninfo);
    pqxx::nontransaction query(connection);
    auto const result = query.exec(sql);
    return result.empty() || result[0][0].is_null() ? "" : result[0][0].as<std::string>();
  }

  static inline testing::TempDir* temp_ = nullptr;
  static inline Config config_;
  static inline Cluster* cluster_ = nullptr;
};

TEST_F(DatabasesTest, CreatesTwoAppsWhosePasswordsLogInAndASecondRunChangesNothing) {
  std::vector<Database> apps = {{.name = "shop", .extensions = {"pgcrypto", "uuid-ossp"}},
                                {.name = "billing", .owner = "billing_app", .connection_limit = 5}};

  auto const changes = converge(superuser(), apps, config_.secrets_dir);

  EXPECT_EQ(changes,
            (std::vector<std::string>{"created role shop", "created database shop owned by shop",
                                      "installed extension pgcrypto in shop", "installed extension uuid-ossp in shop",
                                      "created role billing_app", "created database billing owned by billing_app"}));
  for (auto const& [database, role] : {std::pair{"shop", "shop"}, {"billing", "billing_app"}}) {
    auto const url = connection_url(config_, database, role);
    EXPECT_EQ(scalar(url, "SELECT current_user || '@' || current_database()"), std::string(role) + "@" + database);
    struct stat secret {};
    ASSERT_EQ(::stat((config_.secrets_dir / ("postgres-role-" + std::string(role))).c_str(), &secret), 0);
    EXPECT_EQ(secret.st_mode & 07777, 0600u);
  }
  EXPECT_EQ(scalar(connection_url(config_, "shop", "shop"), "SELECT gen_random_uuid() IS NOT NULL"), "t");
  EXPECT_EQ(scalar(superuser(), "SELECT datconnlimit FROM pg_database WHERE datname = 'billing'"), "5");
  // The role holds a SCRAM verifier, not the password.
  EXPECT_EQ(scalar(superuser(), "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'shop'"),
            "SCRAM-SHA-256$");

  EXPECT_TRUE(converge(superuser(), apps, config_.secrets_dir).empty());

  apps[1].connection_limit = 7;
  EXPECT_EQ(converge(superuser(), apps, config_.secrets_dir),
            std::vector<std::string>{"set connection limit of billing to 7"});
}

TEST_F(DatabasesTest, AnotherAppsRoleCannotConnect) {
  converge(superuser(), {{.name = "app_a"}, {.name = "app_b"}}, config_.secrets_dir);
  auto url = connection_url(config_, "app_a", "app_b");
  auto const error = error_of([&] { pqxx::connection connection(url); });
  EXPECT_NE(error.find("permission denied for database \"app_a\""), std::string::npos) << error;
}

TEST_F(DatabasesTest, AnUnknownExtensionCreatesNothing) {
  auto const error = error_of([&] {
    converge(superuser(), {{.name = "fine_app"}, {.name = "geo", .extensions = {"no_such_extension"}}},
             config_.secrets_dir);
  });
  EXPECT_EQ(error,
            "cannot create databases: PostgreSQL has no extension no_such_extension (for geo)\nHINT: check the "
            "spelling (SELECT name FROM pg_available_extensions), or install the package that provides it (most are "
            "in postgresql-contrib); nothing was created");
  EXPECT_EQ(scalar(superuser(), "SELECT count(*) FROM pg_database WHERE datname IN ('fine_app', 'geo')"), "0");
  EXPECT_EQ(scalar(superuser(), "SELECT count(*) FROM pg_roles WHERE rolname IN ('fine_app', 'geo')"), "0");
  EXPECT_FALSE(fs::exists(config_.secrets_dir / "postgres-role-fine_app"));
}

TEST_F(DatabasesTest, HostileAndReservedNamesAreRefusedBeforeTheServerIsAsked) {
  auto const error = error_of([&] {
    check_databases({{.name = "a;drop"},
                     {.name = "Shop"},
                     {.name = "ok", .owner = "pg_admin"},
                     {.name = "postgres"},
                     {.name = "ok"},
                     {.name = "x", .extensions = {"bad ext"}},
                     {.name = "y", .connection_limit = -2},
                     {.name = std::string(64, 'a')}});
  });
  EXPECT_EQ(error,
            "invalid databases:\n"
            "  database \"a;drop\" may only hold lowercase letters a-z, digits and _\n"
            "  database \"Shop\" may only hold lowercase letters a-z, digits and _\n"
            "  owner of ok \"pg_admin\" must not start with pg_ (reserved by PostgreSQL)\n"
            "  database \"postgres\" is reserved\n"
            "  database \"ok\" is declared twice\n"
            "  extension \"bad ext\" of x is not an extension name\n"
            "  connection_limit of y must be -1 (none) or more\n"
            "  database \"" +
                std::string(64, 'a') +
                "\" must be 1 to 63 characters long\n"
                "HINT: names are lowercase letters, digits and _, like shop or billing_v2");
  // converge() checks first too: the hostile name never reaches SQL.
  EXPECT_NE(error_of([&] {
              converge(superuser(), {{.name = "a\"; DROP DATABASE shop; --"}}, config_.secrets_dir);
            }).find("may only hold"),
            std::string::npos);
}

TEST_F(DatabasesTest, ListShowsOwnerSizeAndConnections) {
  converge(superuser(), {{.name = "listed", .owner = "lister"}}, config_.secrets_dir);
  pqxx::connection open(connection_url(config_, "listed", "lister"));

  auto const databases = list_databases(superuser());

  auto const found = std::find_if(databases.begin(), databases.end(), [](auto const& d) { return d.name == "listed"; });
  ASSERT_NE(found, databases.end());
  EXPECT_EQ(found->owner, "lister");
  EXPECT_GT(found->size_bytes, 1'000'000);
  EXPECT_EQ(found->connections, 1);
  EXPECT_EQ(found->connection_limit, -1);
  EXPECT_TRUE(std::none_of(databases.begin(), databases.end(),
                           [](auto const& d) { return d.name == "postgres" || d.name.starts_with("template"); }));
}

TEST_F(DatabasesTest, UrlWithoutAStoredPasswordSaysWhy) {
  EXPECT_EQ(error_of([&] { connection_url(config_, "nothing", "nobody"); }),
            "no stored password for role nobody (" + (config_.secrets_dir / "postgres-role-nobody").string() +
                ")\nHINT: berth only knows the passwords of roles it created; declare the database under databases: "
                "or create it with berth db create");
}

}  // namespace
}  // namespace berth::postgres
