#include "health.hpp"

#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "berth/core/log.hpp"
#include "berth/postgres/cluster.hpp"

namespace berth::appliance {

namespace fs = std::filesystem;

struct Health::State {
  fs::path registry_root;
  bool postgres = false;
  std::chrono::milliseconds interval;
  std::mutex probing;  // held for a whole probe: watch_postgres() waits for it
  postgres::Cluster const* cluster = nullptr;  // under `probing`
  mutable std::mutex mutex;  // the results and `stopping`
  std::condition_variable wake;
  bool stopping = false;
  std::vector<HealthPart> parts;
  std::thread thread;

  HealthPart probe_registry() const {
    // The storage directory must be there and writable: a volume unmounted or remounted
    // read-only under a running berth fails every push.
    std::error_code ec;
    if (!fs::is_directory(registry_root, ec))
      return {"registry", false, "storage directory " + registry_root.string() + " is missing"};
    if (::access(registry_root.c_str(), W_OK | X_OK) != 0)
      return {"registry", false, "storage directory " + registry_root.string() + " is not writable"};
    return {"registry", true, {}};
  }

  HealthPart probe_postgres() const {
    if (!cluster) return {"postgres", false, "starting"};
    if (auto why = cluster->probe()) return {"postgres", false, *why};
    return {"postgres", true, {}};
  }

  void probe() {
    std::lock_guard probe_lock(probing);
    std::vector<HealthPart> now{probe_registry()};
    if (postgres) now.push_back(probe_postgres());
    std::lock_guard lock(mutex);
    // Changes are logged once, not every probe: the first failure as a warning, the recovery too.
    for (std::size_t i = 0; i < now.size(); ++i) {
      bool const was_ok = i < parts.size() ? parts[i].ok : true;
      if (now[i].detail == "starting") continue;
      if (was_ok && !now[i].ok)
        logger("berth")->warn("health {} unhealthy: {}", now[i].name, now[i].detail);
      else if (!was_ok && now[i].ok)
        logger("berth")->warn("health {} healthy again", now[i].name);
    }
    parts = std::move(now);
  }

  void run() {
    std::unique_lock lock(mutex);
    while (!wake.wait_for(lock, interval, [this] { return stopping; })) {
      lock.unlock();
      probe();
      lock.lock();
    }
  }
};

Health::Health(fs::path registry_root, bool postgres, std::chrono::milliseconds interval)
    : state_(std::make_unique<State>()) {
  state_->registry_root = std::move(registry_root);
  state_->postgres = postgres;
  state_->interval = interval;
  state_->probe();
  state_->thread = std::thread([state = state_.get()] { state->run(); });
}

Health::~Health() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  state_->thread.join();
}

void Health::watch_postgres(postgres::Cluster const* cluster) {
  {
    std::lock_guard probe_lock(state_->probing);
    state_->cluster = cluster;
  }
  if (cluster) state_->probe();
}

std::vector<HealthPart> Health::parts() const {
  std::lock_guard lock(state_->mutex);
  return state_->parts;
}

}  // namespace berth::appliance
