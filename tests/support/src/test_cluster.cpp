#include "berth/testing/test_cluster.hpp"

#include <filesystem>

namespace berth::testing {

namespace fs = std::filesystem;

TestCluster::TestCluster() {
  // mkdtemp makes the directory 0700; the server's OS user has to pass through it.
  fs::permissions(dir_.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  postgres::Config config;
  config.data_dir = dir_.path() / "postgres";
  config.socket_dir = dir_.path() / "run";
  config.secrets_dir = dir_.path() / "secrets";
  cluster_ = std::make_unique<postgres::Cluster>(config);
  cluster_->start();
  cluster_->wait_ready();
}

TestCluster::~TestCluster() {
  cluster_.reset();
}  // stops the server before its directory goes

std::string TestCluster::connection_string(std::string const& database) const {
  return cluster_->connection_string(database);
}

}  // namespace berth::testing
