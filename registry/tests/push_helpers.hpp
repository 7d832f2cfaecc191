// How the registry's unit tests put content into a real Storage: the same calls a push makes.
#pragma once

#include <string>

#include "berth/registry/storage.hpp"

namespace berth::testing {

/// Uploads `content` to `repository` in one session and commits it; returns its digest.
inline registry::Digest put_blob(registry::Storage& storage, std::string const& repository,
                                 std::string const& content) {
  auto id = storage.start_upload(repository);
  auto writer = storage.open_upload(repository, id);
  writer->write(content);
  writer->commit(registry::digest_of(content));
  return registry::digest_of(content);
}

}  // namespace berth::testing
