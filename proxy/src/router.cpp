#include "berth/proxy/router.hpp"

#include <string>

namespace berth::proxy {

void Router::add(Method method, std::string path, Handler handler) {
  auto& by_method = exact_[path];
  if (!by_method.emplace(method, std::move(handler)).second)
    throw Error("route " + std::string(to_string(method)) + " " + path + " is registered twice");
}

void Router::add_prefix(std::string prefix, Handler handler) {
  if (!prefixes_.emplace(prefix, std::move(handler)).second)
    throw Error("route prefix " + prefix + " is registered twice");
}

void Router::add_guard(std::string prefix, std::function<void(Request const&)> guard) {
  guards_.emplace_back(std::move(prefix), std::move(guard));
}

Reply Router::dispatch(Request const& request) const {
  for (auto const& [prefix, guard] : guards_)
    if (request.path.starts_with(prefix)) guard(request);
  if (auto path = exact_.find(request.path); path != exact_.end()) {
    auto const& by_method = path->second;
    auto handler = by_method.find(request.method);
    if (handler == by_method.end() && request.method == Method::head) handler = by_method.find(Method::get);
    if (handler != by_method.end()) return handler->second(request);
    std::string allow;
    for (auto const& [method, ignored] : by_method) {
      if (!allow.empty()) allow += ", ";
      allow += to_string(method);
      if (method == Method::get && !by_method.contains(Method::head)) allow += ", HEAD";
    }
    HttpError error(405, "UNSUPPORTED", "method " + request.method_name + " is not allowed on " + request.path);
    error.headers.set("Allow", allow);
    throw error;
  }
  for (auto const& [prefix, handler] : prefixes_)
    if (request.path.starts_with(prefix)) return handler(request);
  throw HttpError(404, "NOT_FOUND", "no route for " + request.method_name + " " + request.path);
}

}  // namespace berth::proxy
