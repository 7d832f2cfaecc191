#include "row_counts.hpp"

#include <pqxx/pqxx>

#include "berth/postgres/databases.hpp"
#include "io.hpp"

namespace berth::backup::detail {

namespace {

std::string quote_identifier(std::string const& name) {
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

char const* const user_tables_query =
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1, 2";

std::string connection_string(DatabaseSource const& source, std::string const& database) {
  return postgres::socket_connection_string(source.socket_dir, source.port, source.user, database,
                                            read_secret(source.password_file));
}

std::string quoted_table(std::string const& schema, std::string const& table) {
  return quote_identifier(schema) + "." + quote_identifier(table);
}

std::uint64_t oldest_running_xid(std::string const& conninfo) {
  pqxx::connection connection(conninfo);
  pqxx::nontransaction query(connection);
  return query.exec("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")[0][0].as<std::uint64_t>();
}

nlohmann::json count_rows(DatabaseSource const& source, std::uint64_t xmin_before) {
  nlohmann::json databases = nlohmann::json::object();
  std::vector<std::string> names;
  {
    pqxx::connection connection(connection_string(source, "postgres"));
    pqxx::nontransaction query(connection);
    for (auto const& row :
         query.exec("SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1"))
      names.push_back(row[0].as<std::string>());
  }
  for (auto const& name : names) {
    pqxx::connection connection(connection_string(source, name));
    // BEGIN by hand: the typed transaction templates differ between libpqxx 6 and 7.
    pqxx::nontransaction query(connection);
    query.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    auto const snapshot = query.exec(
        "SELECT pg_current_snapshot()::text, "
        "pg_snapshot_xmax(pg_current_snapshot())::text::bigint");
    auto const xmax = snapshot[0][1].as<std::uint64_t>();
    nlohmann::json record = {{"snapshot", snapshot[0][0].as<std::string>()}};
    if (xmax >= xmin_before && xmax - xmin_before <= max_tracked_xids) {
      nlohmann::json committed = nlohmann::json::array();
      for (auto const& row : query.exec(
               "SELECT g FROM generate_series(" + std::to_string(xmin_before) + "::bigint, " + std::to_string(xmax) +
               "::bigint - 1) g WHERE pg_xact_status(g::text::xid8) = 'committed' AND NOT (g::text::xid8 = "
               "ANY (ARRAY(SELECT pg_snapshot_xip(pg_current_snapshot()))))"))
        committed.push_back(row[0].as<std::uint64_t>());
      record["committed_xids"] = std::move(committed);
    } else {
      record["committed_xids"] = nullptr;
    }
    nlohmann::json tables = nlohmann::json::object();
    for (auto const& row : query.exec(user_tables_query)) {
      auto const schema = row[0].as<std::string>();
      auto const table = row[1].as<std::string>();
      tables[schema + "." + table] =
          query.exec("SELECT count(*) FROM " + quoted_table(schema, table))[0][0].as<std::uint64_t>();
    }
    query.exec("COMMIT");
    record["tables"] = std::move(tables);
    databases[name] = std::move(record);
  }
  return {{"xmin_before", xmin_before}, {"databases", std::move(databases)}};
}

}  // namespace berth::backup::detail
