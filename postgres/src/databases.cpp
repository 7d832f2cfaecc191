#include "berth/postgres/databases.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <set>

#include <pqxx/pqxx>

#include "berth/core/error.hpp"
#include "berth/core/log.hpp"
#include "berth/core/random.hpp"
#include "files.hpp"
#include "scram.hpp"

namespace berth::postgres {

namespace fs = std::filesystem;

namespace {

constexpr std::array<char const*, 4> reserved = {"postgres", "template0", "template1", "berth"};

std::string identifier_problem(std::string const& what, std::string const& name) {
  auto const bad = [&](std::string const& why) { return what + " \"" + name + "\" " + why; };
  if (name.empty() || name.size() > 63) return bad("must be 1 to 63 characters long");
  if (!std::all_of(name.begin(), name.end(),
                   [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }))
    return bad("may only hold lowercase letters a-z, digits and _");
  if (name.front() >= '0' && name.front() <= '9') return bad("must not start with a digit");
  if (name.starts_with("pg_")) return bad("must not start with pg_ (reserved by PostgreSQL)");
  if (std::find(reserved.begin(), reserved.end(), name) != reserved.end()) return bad("is reserved");
  return {};
}

// Extension names are the file names of their control files: "uuid-ossp" has a hyphen.
bool is_extension_name(std::string const& name) {
  return !name.empty() && name.size() <= 63 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

fs::path password_file(fs::path const& secrets_dir, std::string const& role) {
  return secrets_dir / ("postgres-role-" + role);
}

std::string percent_encoded(std::string const& text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += hex[c >> 4];
      encoded += hex[c & 15];
    }
  }
  return encoded;
}

// Swaps the dbname of a libpq keyword/value connection string.
std::string with_database(std::string const& conninfo, std::string const& database) {
  return conninfo + " dbname='" + database + "'";  // a later keyword wins; names are checked identifiers
}

}  // namespace

void check_identifier(std::string const& what, std::string const& name) {
  if (auto const problem = identifier_problem(what, name); !problem.empty())
    throw Error("invalid " + problem + "\nHINT: use a name like shop or billing_v2");
}

void check_databases(std::vector<Database> const& databases) {
  std::vector<std::string> problems;
  std::set<std::string> seen;
  for (auto const& database : databases) {
    if (auto problem = identifier_problem("database", database.name); !problem.empty())
      problems.push_back(problem);
    else if (!seen.insert(database.name).second)
      problems.push_back("database \"" + database.name + "\" is declared twice");
    if (!database.owner.empty())
      if (auto problem = identifier_problem("owner of " + database.name, database.owner); !problem.empty())
        problems.push_back(problem);
    for (auto const& extension : database.extensions)
      if (!is_extension_name(extension))
        problems.push_back("extension \"" + extension + "\" of " + database.name + " is not an extension name");
    if (database.connection_limit < -1)
      problems.push_back("connection_limit of " + database.name + " must be -1 (none) or more");
  }
  if (problems.empty()) return;
  std::string message = "invalid databases:";
  for (auto const& problem : problems) message += "\n  " + problem;
  throw Error(message + "\nHINT: names are lowercase letters, digits and _, like shop or billing_v2");
}

std::vector<std::string> converge(std::string const& superuser, std::vector<Database> const& databases,
                                  fs::path const& secrets_dir) {
  check_databases(databases);
  auto log = logger("postgres");
  std::vector<std::string> changes;
  try {
    pqxx::connection connection(superuser);
    {
      // Check that every extension exists before creating anything.
      pqxx::nontransaction query(connection);
      std::set<std::string> available;
      for (auto const& row : query.exec("SELECT name FROM pg_available_extensions"))
        available.insert(row[0].as<std::string>());
      std::vector<std::string> missing;
      for (auto const& database : databases)
        for (auto const& extension : database.extensions)
          if (!available.contains(extension)) missing.push_back(extension + " (for " + database.name + ")");
      if (!missing.empty()) {
        std::string list;
        for (auto const& name : missing) list += (list.empty() ? "" : ", ") + name;
        throw Error("cannot create databases: PostgreSQL has no extension " + list +
                    "\nHINT: check the spelling (SELECT name FROM pg_available_extensions), or install the "
                    "package that provides it (most are in postgresql-contrib); nothing was created");
      }
    }

    for (auto const& database : databases) {
      auto const role = database.owner_role();
      pqxx::nontransaction work(connection);
      if (work.exec("SELECT 1 FROM pg_roles WHERE rolname = " + work.quote(role)).empty()) {
        // The password is stored before the role exists, so a crash in between loses nothing.
        auto const file = password_file(secrets_dir, role);
        if (!fs::exists(file)) {
          fs::create_directories(secrets_dir);
          detail::write_private_file(file, random_hex(24) + "\n");
        }
        work.exec("CREATE ROLE " + work.quote_name(role) + " LOGIN PASSWORD " +
                  work.quote(detail::scram_verifier(detail::read_trimmed(file))));
        changes.push_back("created role " + role);
      }
      auto const existing = work.exec("SELECT datconnlimit FROM pg_database WHERE datname = " + work.quote(database.name));
      if (existing.empty()) {
        work.exec("CREATE DATABASE " + work.quote_name(database.name) + " OWNER " + work.quote_name(role) +
                  " CONNECTION LIMIT " + std::to_string(database.connection_limit));
        work.exec("REVOKE CONNECT, TEMPORARY ON DATABASE " + work.quote_name(database.name) + " FROM PUBLIC");
        changes.push_back("created database " + database.name + " owned by " + role);
      } else if (existing[0][0].as<int>() != database.connection_limit) {
        work.exec("ALTER DATABASE " + work.quote_name(database.name) + " CONNECTION LIMIT " +
                  std::to_string(database.connection_limit));
        changes.push_back("set connection limit of " + database.name + " to " +
                          std::to_string(database.connection_limit));
      }
      if (database.extensions.empty()) continue;
      pqxx::connection in_database(with_database(superuser, database.name));
      pqxx::nontransaction extensions(in_database);
      for (auto const& extension : database.extensions) {
        if (!extensions.exec("SELECT 1 FROM pg_extension WHERE extname = " + extensions.quote(extension)).empty()) continue;
        extensions.exec("CREATE EXTENSION IF NOT EXISTS " + extensions.quote_name(extension));
        changes.push_back("installed extension " + extension + " in " + database.name);
      }
    }
  } catch (pqxx::failure const& error) {
    std::string what = error.what();
    what.erase(what.find_last_not_of(" \n") + 1);
    throw Error("cannot create databases: " + what +
                (changes.empty() ? std::string()
                                 : "\n(done before the failure: " + std::to_string(changes.size()) +
                                       " changes; running again continues from there)"));
  }
  for (auto const& change : changes) log->info("{}", change);
  return changes;
}

void allow_connections(std::string const& superuser, std::string const& database, bool allow) {
  check_identifier("database", database);
  try {
    pqxx::connection connection(superuser);
    pqxx::nontransaction work(connection);
    work.exec("ALTER DATABASE " + work.quote_name(database) + " ALLOW_CONNECTIONS " + (allow ? "true" : "false"));
  } catch (pqxx::failure const& error) {
    std::string what = error.what();
    what.erase(what.find_last_not_of(" \n") + 1);
    throw Error("cannot " + std::string(allow ? "open" : "close") + " database " + database + ": " + what);
  }
}

std::vector<DatabaseInfo> list_databases(std::string const& superuser) {
  try {
    pqxx::connection connection(superuser);
    pqxx::nontransaction query(connection);
    std::vector<DatabaseInfo> databases;
    for (auto const& row :
         query.exec("SELECT d.datname, pg_get_userbyid(d.datdba), pg_database_size(d.oid), "
                    "(SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid), d.datconnlimit, d.datallowconn "
                    "FROM pg_database d WHERE NOT d.datistemplate AND d.datname <> 'postgres' ORDER BY d.datname")) {
      databases.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::int64_t>(),
                           row[3].as<int>(), row[4].as<int>(), row[5].as<bool>()});
    }
    return databases;
  } catch (pqxx::failure const& error) {
    std::string what = error.what();
    what.erase(what.find_last_not_of(" \n") + 1);
    throw Error("cannot list databases: " + what);
  }
}

std::string role_password(fs::path const& secrets_dir, std::string const& role) {
  auto const file = password_file(secrets_dir, role);
  if (!fs::exists(file))
    throw Error("no stored password for role " + role + " (" + file.string() + ")" +
                "\nHINT: berth only knows the passwords of roles it created; declare the database under "
                "databases: or create it with berth db create");
  return detail::read_trimmed(file);
}

std::string socket_connection_string(fs::path const& socket_dir, std::uint16_t port, std::string const& user,
                                     std::string const& database, std::string const& password) {
  // libpq keyword values: single-quoted, with \ and ' escaped.
  auto const quote = [](std::string const& value) {
    std::string quoted = "'";
    for (char c : value) {
      if (c == '\\' || c == '\'') quoted += '\\';
      quoted += c;
    }
    return quoted + "'";
  };
  return "host=" + quote(socket_dir.string()) + " port=" + std::to_string(port) + " user=" + quote(user) +
         " dbname=" + quote(database) + " password=" + quote(password);
}

std::string connection_url(Config const& config, std::string const& database, std::string const& role) {
  auto const password = role_password(config.secrets_dir, role);
  auto const credentials = percent_encoded(role) + ":" + percent_encoded(password);
  auto const port = std::to_string(config.port);
  if (!config.listen_addresses.empty()) {
    auto host = config.listen_addresses.front();
    if (host == "*" || host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return "postgresql://" + credentials + "@" + host + ":" + port + "/" + percent_encoded(database);
  }
  return "postgresql://" + credentials + "@/" + percent_encoded(database) +
         "?host=" + percent_encoded(fs::absolute(config.socket_dir).lexically_normal().string()) + "&port=" + port;
}

}  // namespace berth::postgres
