// The routing table modules register their handlers on. Routes are exact paths with a method
// ("GET /healthz") or path prefixes that take every method ("/v2/", where the registry parses
// repository names containing slashes itself). Unknown paths answer 404 and known paths with
// another method 405 with Allow, both in the JSON error envelope. Guards run before routing on
// the paths they cover (authentication), so they see even requests no route will take.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "berth/proxy/http.hpp"

namespace berth::proxy {

class Router {
public:
  /// Routes `method path` to `handler`. A GET route also answers HEAD (the server drops the
  /// body). Throws berth::Error if the route is already taken.
  void add(Method method, std::string path, Handler handler);
  /// Routes every request whose path starts with `prefix` to `handler`, unless an exact route
  /// matches. The longest matching prefix wins.
  void add_prefix(std::string prefix, Handler handler);
  /// Runs `guard` before routing every request whose path starts with `prefix`; the guard lets
  /// it through by returning, or refuses by throwing HttpError. Guards run in the order added.
  void add_guard(std::string prefix, std::function<void(Request const&)> guard);

  /// Runs the matching handler, or answers 404/405. Call only after all routes are added;
  /// then safe from any thread.
  Reply dispatch(Request const& request) const;

private:
  std::map<std::string, std::map<Method, Handler>> exact_;
  std::map<std::string, Handler, std::greater<>> prefixes_;  // longest first among shared prefixes
  std::vector<std::pair<std::string, std::function<void(Request const&)>>> guards_;
};

}  // namespace berth::proxy
