// The one exception of the flyway module. Where Flyway has a message for the same failure, the
// text is Flyway's (operators search for it); otherwise it follows berth's lowercase style.
#pragma once

#include "berth/core/error.hpp"

namespace berth::flyway {

/// A migration cannot be resolved, read, checksummed, parsed, prepared or applied, or a command
/// (baseline, clean) refuses to run on this database.
class MigrationError : public berth::Error {
public:
  using berth::Error::Error;
};

}  // namespace berth::flyway
