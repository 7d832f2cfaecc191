// A client of another OCI registry (a second berth, ECR, any Distribution-API registry), for
// pushing what promotion copies: HEAD and upload of blobs, GET/HEAD/PUT of manifests. It does
// the Docker auth handshake (a 401 challenge answered with Basic, or with a Bearer token fetched
// from the realm with Basic credentials), and retries with exponential backoff and jitter on
// 5xx, 429 and broken connections. A blob always goes in ONE request (POST, then one PUT with
// the streamed content): ECR loses data when a blob is split across several PATCHes.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "berth/core/error.hpp"
#include "berth/registry/digest.hpp"
#include "berth/registry/http_client.hpp"

namespace berth::registry {

/// The target registry refused a request (after any retries): status and OCI error code.
class RegistryError : public Error {
public:
  RegistryError(std::string const& message, int status, std::string code)
      : Error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  std::string const& code() const { return code_; }  ///< e.g. "UNAUTHORIZED"; "" when not given

private:
  int status_;
  std::string code_;
};

/// The target keeps its tags immutable and the tag already names another manifest (ECR's
/// TAG_INVALID / ImageTagAlreadyExistsException).
class TagImmutableError : public RegistryError {
public:
  using RegistryError::RegistryError;
};

struct RetryPolicy {
  int attempts = 5;                            ///< tries per request, the first included
  std::chrono::milliseconds first_delay{200};  ///< doubled after each failure, with jitter
  std::chrono::milliseconds max_delay{10 * 1000};
};

struct RegistryTarget {
  std::string url;         ///< "https://host[:port]" (or http for tests and local registries)
  std::string username{};  ///< empty: anonymous
  std::string password{};  ///< never logged
  http::ClientConfig http{};
  RetryPolicy retry{};
};

/// A manifest at the target: what HEAD or GET tells.
struct RemoteManifest {
  Digest digest;
  std::string media_type;
  std::uint64_t size = 0;
  std::string bytes{};  ///< empty after HEAD
};

/// Talks to one registry. Thread-safe: calls from several threads share the connection pool
/// and the token cache. Every call blocks.
class RegistryClient {
public:
  explicit RegistryClient(RegistryTarget target);
  ~RegistryClient();
  RegistryClient(RegistryClient const&) = delete;
  RegistryClient& operator=(RegistryClient const&) = delete;

  /// Checks that the registry answers and the credentials work (GET /v2/). Throws
  /// RegistryError (401: wrong credentials) or http::TransportError.
  void check_access();

  /// The blob's size if `repository` holds it (HEAD), else nullopt.
  std::optional<std::uint64_t> blob_size(std::string const& repository, Digest const& digest);

  /// Uploads the file `content` (whose digest is `digest`) in one request. Throws RegistryError
  /// when the registry refuses it, http::TransportError when it stays unreachable.
  void upload_blob(std::string const& repository, Digest const& digest, std::filesystem::path const& content);

  /// HEAD of a manifest by tag or digest; nullopt when absent.
  std::optional<RemoteManifest> head_manifest(std::string const& repository, std::string const& reference);
  /// GET of a manifest by tag or digest (bytes as stored); nullopt when absent.
  std::optional<RemoteManifest> get_manifest(std::string const& repository, std::string const& reference);
  /// PUT of `bytes` (sent unchanged) under `reference` (a tag or its digest). Returns the digest
  /// the registry reports. Throws TagImmutableError when an immutable tag refuses it.
  std::string put_manifest(std::string const& repository, std::string const& reference, std::string const& media_type,
                           std::string const& bytes);

  /// Bytes of blob content sent so far (uploads that completed or not). Thread-safe.
  std::uint64_t bytes_sent() const;
  std::string const& url() const;

  struct State;

private:
  std::unique_ptr<State> state_;
};

}  // namespace berth::registry
