// A real PostgreSQL cluster for a test suite, made through berth's own postgres module in a temp
// dir that the server's OS user can enter, started, and stopped when the object goes.
#pragma once

#include <memory>
#include <string>

#include "berth/postgres/cluster.hpp"
#include "berth/testing/temp_dir.hpp"

namespace berth::testing {

class TestCluster {
public:
  /// Creates, starts and waits (with a deadline) until the server accepts connections.
  TestCluster();
  ~TestCluster();
  postgres::Cluster& cluster() { return *cluster_; }
  /// The superuser's libpq connection string for `database`.
  std::string connection_string(std::string const& database = "postgres") const;

private:
  TempDir dir_;
  std::unique_ptr<postgres::Cluster> cluster_;
};

}  // namespace berth::testing
