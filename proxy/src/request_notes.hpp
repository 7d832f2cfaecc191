// What the layers above the server learn about a request while routing it (who sent it, which
// repository and action it concerns), handed back to the server for the access log, the metrics
// and the per-user rate limit. The server points current_request_notes at the request's notes
// only around Router::dispatch, which runs synchronously on the connection's thread, so no lock
// is needed and a coroutine switch can never see another request's notes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace berth::proxy {

class RateLimiter;

struct RequestNotes {
  std::optional<std::string> user;  ///< set once authentication has verified who sent it
  std::string repository;
  std::string_view action;         ///< "pull", "push", ... (static strings)
  RateLimiter* limiter = nullptr;  ///< charged with the user's request when it is known
};

/// The notes of the request being dispatched on this thread, or nullptr.
inline thread_local RequestNotes* current_request_notes = nullptr;

/// Authentication calls this once it has verified who sent the request. Charges the user's rate
/// limit bucket: throws HttpError 429 (TOOMANYREQUESTS, Retry-After) when it is empty.
void note_user(std::string const& user);

/// Records the repository and action a request needs (for the access log).
void note_access(std::string_view repository, std::string_view action);

}  // namespace berth::proxy
