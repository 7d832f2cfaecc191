// What GET /healthz reports: whether each part of berth can serve right now. A thread of its own
// probes the parts every interval (a real connection to PostgreSQL, the registry's storage
// directory), so a health check costs the load balancer's poll nothing and never blocks the front
// door's threads on a hanging database.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace berth::postgres {
class Cluster;
}

namespace berth::appliance {

struct HealthPart {
  std::string name;    ///< "registry", "postgres"
  bool ok = false;
  std::string detail;  ///< why not, when not ok
};

class Health {
public:
  /// Probes once before returning, then every `interval` until destroyed. With `postgres`, the
  /// PostgreSQL part is "starting" (unhealthy) until watch_postgres() names the cluster.
  Health(std::filesystem::path registry_root, bool postgres,
         std::chrono::milliseconds interval = std::chrono::seconds(5));
  ~Health();
  Health(Health const&) = delete;
  Health& operator=(Health const&) = delete;

  /// Probes `cluster` from now on (nullptr: stops probing it, before the cluster goes). Waits
  /// for a probe in progress, then probes once. Thread-safe.
  void watch_postgres(postgres::Cluster const* cluster);

  /// The latest result of each part. Thread-safe.
  std::vector<HealthPart> parts() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace berth::appliance
