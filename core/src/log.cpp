#include "berth/core/log.hpp"

#include <mutex>

#include <spdlog/spdlog.h>

namespace berth {

std::shared_ptr<spdlog::logger> logger(std::string const& name) {
  // spdlog's registry is thread-safe per call, but get-then-register is not: serialize it.
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (auto existing = spdlog::get(name)) return existing;
  auto base = spdlog::default_logger();
  auto created = std::make_shared<spdlog::logger>(name, base->sinks().begin(), base->sinks().end());
  created->set_level(base->level());
  spdlog::register_logger(created);
  return created;
}

}  // namespace berth
