// The one exception base of berth. Modules derive a few subclasses of their own; messages are
// for the operator: lowercase, naming the object that failed, with "HINT:" lines when the fix
// is known.
#pragma once

#include <stdexcept>
#include <string>

namespace berth {

/// Base of every exception berth throws on purpose. Catch it at a boundary (a connection,
/// a job, main) and log it once.
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

}  // namespace berth
